#!/usr/bin/env bash
# `cracin restore --lazy-pages` against the default restore, measured again now that the rest
# of a restore is fast (issue 14): one checkpoint of the reference OSGi application (JDK 17,
# cracin's defaults), then RUNS restores of it in each mode, in turn. For each restore:
#   ready_ms      cracin's own figure (from the start of cracin to the first 2xx of /health);
#   first 100     100 sequential requests to /modify/fubar right after readiness (with lazy
#                 pages the memory the requests touch is faulted in through the daemon now);
# each instance is killed before the next restore. Medians, min-max, written to
# docs/bench-lazy.md with date, machine and load.
#   scripts/bench-lazy.sh [RUNS (default 9)]      (root, after scripts/setup.sh)
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
RUNS=${1:-9}
build_cracin examples
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
P=$(port)
"$CRACIN" checkpoint --out "$tmp/ck" --ready "http://127.0.0.1:$P/health" \
  --warmup "http://127.0.0.1:$P/modify/fubar" --warmup-requests 2000 \
  -- java -Dorg.osgi.service.http.port="$P" -jar examples/osgi-jakartars/target/app.jar >"$tmp/ck.log" 2>&1 \
  || { cat "$tmp/ck.log" >&2; exit 1; }
OUT=docs/bench-lazy.md
{
  echo "# \`restore --lazy-pages\` against the default restore"
  echo
  echo "Made by \`scripts/bench-lazy.sh $RUNS\` on $(date -u '+%Y-%m-%d %H:%M UTC') ($(uname -r),"
  echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GiB, $(criu --version | head -1));"
  echo "reference OSGi application on $(java -version 2>&1 | head -1), checkpoint of $(du -sm "$tmp/ck/images" | cut -f1) MB of images;"
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg) before. $RUNS restores in each mode, in turn."
  echo
  python3 - "$CRACIN" "$tmp/ck" "$P" "$RUNS" <<'PY'
import json, os, signal, statistics, subprocess, sys, time, urllib.request
cracin, ck, port, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
res = {"default": [], "lazy": []}
for _ in range(runs):
    for mode in ("default", "lazy"):
        args = [cracin, "restore", ck, "--json"] + (["--lazy-pages"] if mode == "lazy" else [])
        out = subprocess.run(args, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"restore ({mode}) failed:\n{out.stderr}")
        d = json.loads(out.stdout)
        t = time.perf_counter()
        for _ in range(100):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/modify/fubar", timeout=10).read()
        first100 = (time.perf_counter() - t) * 1000
        res[mode].append((d["ready_ms"], first100))
        os.kill(d["pid"], signal.SIGKILL)
        while os.path.exists(f"/proc/{d['pid']}"):
            time.sleep(0.02)
def col(v):
    return f"{statistics.median(v):.1f} ms ({min(v):.1f}-{max(v):.1f})"
print("| restore | ready_ms, median (min-max) | first 100 requests | ready + first 100 |")
print("| --- | ---: | ---: | ---: |")
for m, label in (("default", "default (all pages before the resume)"), ("lazy", "`--lazy-pages`")):
    v = res[m]
    print(f"| {label} | {col([x[0] for x in v])} | {col([x[1] for x in v])} | {col([x[0] + x[1] for x in v])} |")
r = statistics.median(x[0] + x[1] for x in res["lazy"]) / statistics.median(x[0] + x[1] for x in res["default"])
print()
print(f"ready + first 100, lazy / default: {r:.2f} (ratio of medians)")
PY
  echo
  echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)."
} | tee "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "written to $OUT"
