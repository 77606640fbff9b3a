#!/usr/bin/env bash
# Benchmarks of the local engine, committed to docs/bench-local.md with date and machine:
#   0. the end-to-end tests' application as it is (tests/fixtures/apps/counter-http, a toy that
#      starts in ~0.4 s) with --compare-untuned: what cracin's heap shrinking does to the image;
#   1. the test application (tests/fixtures/apps/counter-http, started with --boot: it loads and
#      links ~15,000 JDK classes before listening, as frameworks do) with --compare-untuned;
#   2. the reference OSGi application (examples/osgi-jakartars app.jar).
# Each: cold start vs restore to the first HTTP 200 (medians of --runs, default 7), checkpoint
# size, first-100-request latencies. Run as root after scripts/setup.sh.
#   scripts/bench.sh [RUNS]
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
RUNS=${1:-7}
build_cracin examples
OUT=docs/bench-local.md
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
javac -d "$tmp" tests/fixtures/apps/counter-http/Counter.java

{
  echo "# Local engine benchmarks"
  echo
  echo "Made by \`scripts/bench.sh $RUNS\` on $(date -u +%Y-%m-%d) ($(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs, a shared and noisy machine: medians)."
  echo
  P=$(port)
  echo "## The end-to-end tests' application as it is (Counter)"
  echo
  echo '```'
  "$CRACIN" bench --runs "$RUNS" --compare-untuned --ready "http://127.0.0.1:$P/health" \
    --warmup "http://127.0.0.1:$P/work" --warmup-requests 2000 --latency-url "http://127.0.0.1:$P/work" \
    -- java -cp "$tmp" Counter "$P" 2>/dev/null
  echo '```'
  echo
  P=$(port)
  echo "## Test application (Counter --boot)"
  echo
  echo '```'
  "$CRACIN" bench --runs "$RUNS" --compare-untuned --ready "http://127.0.0.1:$P/health" \
    --warmup "http://127.0.0.1:$P/work" --warmup-requests 2000 --latency-url "http://127.0.0.1:$P/work" \
    -- java -cp "$tmp" Counter "$P" --boot 2>/dev/null
  echo '```'
  echo
  P=$(port)
  echo "## Reference OSGi application (app.jar)"
  echo
  echo '```'
  "$CRACIN" bench --runs "$RUNS" --compare-untuned --ready "http://127.0.0.1:$P/health" \
    --warmup "http://127.0.0.1:$P/modify/fubar" --warmup-requests 2000 --latency-url "http://127.0.0.1:$P/modify/fubar" \
    -- java "-Dorg.osgi.service.http.port=$P" -jar examples/osgi-jakartars/target/app.jar 2>/dev/null
  echo '```'
} | tee "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "written to $OUT"
