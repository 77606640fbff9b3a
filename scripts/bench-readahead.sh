#!/usr/bin/env bash
# Read-ahead of the pages file on a cold page cache, committed to docs/bench-readahead.md with
# date, machine and load average. One checkpoint of the test application (Counter --boot); then
# RUNS pairs, in turn: the checkpoint's pages file evicted from the page cache (dd
# iflag=nocache: only that file, nothing else of the machine), `cracin restore` with
# CRACIN_NO_READAHEAD=1, evicted again, `cracin restore` with read-ahead. Medians of ready_ms
# (from the start of cracin to the first HTTP 200) and of CRIU's memory phase (--timings).
# Run as root after scripts/setup.sh:  scripts/bench-readahead.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:/usr/local/sbin:/usr/sbin:/sbin:$PATH"
RUNS=${1:-7}
cargo build --release --quiet
CRACIN=$PWD/target/release/cracin
OUT=docs/bench-readahead.md
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
javac -d "$tmp" tests/fixtures/apps/counter-http/Counter.java
P=$((20000 + RANDOM % 20000))
"$CRACIN" checkpoint --out "$tmp/ck" --ready "http://127.0.0.1:$P/health" \
  --warmup "http://127.0.0.1:$P/work" --warmup-requests 2000 -- java -cp "$tmp" Counter "$P" --boot >/dev/null 2>&1
pages=("$tmp"/ck/images/pages-*.img)
evict() { for f in "${pages[@]}"; do dd if="$f" iflag=nocache count=0 status=none; done; }
one() { # restore once, print "ready_ms memory_ms"
  "$CRACIN" restore "$tmp/ck" --timings --json 2>"$tmp/t" >"$tmp/r"
  pid=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$tmp/r" | head -1)
  ready=$(sed -n 's/.*"ready_ms": *\([0-9.]*\).*/\1/p' "$tmp/r" | head -1)
  mem=$(awk '/criu: memory and resume/ {print $1}' "$tmp/t")
  kill -TERM "$pid"; while [ -e "/proc/$pid" ]; do sleep 0.05; done; pid=
  echo "$ready $mem"
}
med() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
off=(); on=()
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for _ in $(seq "$RUNS"); do
  evict; off+=("$(CRACIN_NO_READAHEAD=1 one)")
  evict; on+=("$(one)")
done
{
  echo "# Read-ahead of the pages file, cold page cache"
  echo
  echo "Made by \`scripts/bench-readahead.sh $RUNS\` on $(date -u '+%Y-%m-%d %H:%M UTC') ($(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs), a machine shared with other sessions: load average $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after."
  echo "Test application (Counter --boot), pages file $(du -m "${pages[0]}" | cut -f1) MB, evicted from the page cache before every restore. Medians of $RUNS, in turn."
  echo
  echo "| | ready_ms (start of cracin → first 200) | CRIU memory and resume |"
  echo "| --- | ---: | ---: |"
  echo "| without read-ahead | $(printf '%s\n' "${off[@]}" | cut -d' ' -f1 | med) ms | $(printf '%s\n' "${off[@]}" | cut -d' ' -f2 | med) ms |"
  echo "| with read-ahead | $(printf '%s\n' "${on[@]}" | cut -d' ' -f1 | med) ms | $(printf '%s\n' "${on[@]}" | cut -d' ' -f2 | med) ms |"
  echo
  echo "All runs (ready_ms memory_ms): without: $(printf '%s; ' "${off[@]}")with: $(printf '%s; ' "${on[@]}")"
} | tee "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "written to $OUT"
