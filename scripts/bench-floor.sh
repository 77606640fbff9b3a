#!/usr/bin/env bash
# How close `cracin restore` comes to the floor, measured side by side in one run and committed
# to docs/bench-floor.md with date, machine and load average:
#   for the test application (Counter --boot: loads and links ~15,000 JDK classes before
#   listening) and the reference OSGi application (examples/osgi-jakartars app.jar), medians of
#   RUNS each of
#     - cold start (launch -> first HTTP 200) on the default JDK,
#     - cold start on a JDK 25 without and with a Leyden AOT cache (training run first),
#     - `cracin restore` as a command, from its exec -> first 200,
#     - a plain `criu restore` of the same images with the command line cracin runs -> first 200
#       (what a user doing it by hand gets), in turn with each `cracin restore`;
#   then one `cracin restore --timings` of each (where the time goes), and the image size and
#   restore time with the collector cracin now keeps (the JVM's own choice) against Serial GC.
# Run as root after scripts/setup.sh:  scripts/bench-floor.sh [RUNS] [JDK25_HOME]
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
RUNS=${1:-7}
JDK25=${2:-/usr/lib/jvm/temurin-25-jdk-amd64}
build_cracin examples
OUT=docs/bench-floor.md
tmp=$(mktemp -d)
cleanup() {
  # Restored instances of the --timings runs, if any are still there.
  for f in "$tmp"/*.json; do
    [ -f "$f" ] || continue
    pid=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$f" | head -1)
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
# A jar: a JDK 25 AOT cache refuses a class path with a non-empty directory.
mkdir -p "$tmp/classes"
javac -d "$tmp/classes" tests/fixtures/apps/counter-http/Counter.java
jar cfe "$tmp/counter.jar" Counter -C "$tmp/classes" .
aot=()
[ -x "$JDK25/bin/java" ] && aot=(--aot-jdk "$JDK25")

# breakpoints CHECKPOINT: RUNS restores with CRIU's default breakpoints and RUNS without, in
# turn; each instance is killed before the next restore. Medians of ready_ms and of CRIU's last
# phase (from its log), and their ratios.
breakpoints() {
  local ck=$1 i mode pid threads=""
  for i in $(seq "$RUNS"); do
    for mode in breakpoints none; do
      if [ "$mode" = breakpoints ]; then
        CRACIN_CRIU_BREAKPOINTS=1 "$CRACIN" restore "$ck" --json >"$tmp/bp.json" 2>/dev/null
      else
        env -u CRACIN_CRIU_BREAKPOINTS "$CRACIN" restore "$ck" --json >"$tmp/bp.json" 2>/dev/null
      fi
      pid=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$tmp/bp.json" | head -1)
      [ -n "$threads" ] || threads=$(ls "/proc/$pid/task" 2>/dev/null | wc -l)
      echo "$mode $(sed -n 's/.*"ready_ms": *\([0-9.]*\).*/\1/p' "$tmp/bp.json" | head -1)" \
        "$(sed -n 's/.*"log_dir": *"\([^"]*\)".*/\1/p' "$tmp/bp.json" | head -1)/restore.log" >>"$tmp/bp.txt"
      kill -KILL "$pid" 2>/dev/null || true
      while [ -d "/proc/$pid" ]; do sleep 0.05; done
    done
  done
  python3 - "$tmp/bp.txt" "$RUNS" "$threads" <<'PY'
import re, statistics, sys
# CRIU's own clock: from "Unlock network" to "Restore finished" in its -v4 log, the part where
# it stops every restored thread (with or without a breakpoint) and lets them go.
def tail_ms(log):
    t = {}
    for line in open(log, errors="replace"):
        m = re.match(r"\((\d+\.\d+)\)", line)
        if m and "Unlock network" in line:
            t["unlock"] = float(m.group(1))
        if m and "Restore finished" in line:
            t["done"] = float(m.group(1))
    return (t["done"] - t["unlock"]) * 1000
ready, tail = {}, {}
for line in open(sys.argv[1]):
    mode, ms, log = line.split()
    ready.setdefault(mode, []).append(float(ms))
    tail.setdefault(mode, []).append(tail_ms(log))
for name, runs in (("ready_ms", ready), ("CRIU's last phase", tail)):
    med = {m: statistics.median(v) for m, v in runs.items()}
    for m in ("breakpoints", "none"):
        v = sorted(runs[m])
        label = "CRIU's breakpoints" if m == "breakpoints" else "no breakpoints (cracin's default)"
        print(f"{name + ', ' + label:52} min {v[0]:6.1f}  median {med[m]:6.1f}  max {v[-1]:6.1f} ms")
    print(f"{name}: no breakpoints / breakpoints {med['none'] / med['breakpoints']:.2f} (ratio of medians)")
print(f"{len(ready['none'])} restores each; the restored JVM has {sys.argv[3]} threads; CRIU's last phase is "
      "\"Unlock network\" to \"Restore finished\" in its log")
PY
  rm -f "$tmp/bp.txt"
}

# bench NAME WARMUP_PATH COMMAND... (the port is substituted for @PORT@)
bench() {
  local name=$1 path=$2; shift 2
  local P; P=$(port)
  local cmd=("${@//@PORT@/$P}")
  echo "## $name"
  echo
  echo '```'
  echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  "$CRACIN" bench --runs "$RUNS" --plain-criu "${aot[@]}" --ready "http://127.0.0.1:$P/health" \
    --warmup "http://127.0.0.1:$P$path" --warmup-requests 2000 --latency-url "http://127.0.0.1:$P$path" \
    -- "${cmd[@]}" 2>/dev/null
  echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo '```'
  echo
  echo "One \`cracin restore --timings\` of a fresh checkpoint (phases from the start of cracin):"
  echo
  echo '```'
  local ck="$tmp/ck-$P"
  "$CRACIN" checkpoint --out "$ck" --ready "http://127.0.0.1:$P/health" \
    --warmup "http://127.0.0.1:$P$path" --warmup-requests 2000 -- "${cmd[@]}" >/dev/null 2>&1
  "$CRACIN" restore "$ck" --timings --json 2>&1 >"$tmp/r-$P.json" | grep -v '^$'
  local rpid; rpid=$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$tmp/r-$P.json" | head -1)
  kill -TERM "$rpid" 2>/dev/null || true
  # Gone (and its port free) before the next restore of the same checkpoint.
  while [ -n "$rpid" ] && [ -d "/proc/$rpid" ]; do sleep 0.05; done
  echo '```'
  echo
  echo "CRIU's hardware breakpoints (\`CRACIN_CRIU_BREAKPOINTS=1\`) against the no-breakpoints restore"
  echo "cracin asks for (\`CRIU_FAULT=130\`): restores of that checkpoint in turn, \`ready_ms\` from --json:"
  echo
  echo '```'
  breakpoints "$ck"
  echo '```'
  echo
  echo "Image size and restore with each collector (cracin keeps the JVM's own choice; Serial only when the command asks for it):"
  echo
  echo '```'
  local java=${cmd[0]} rest=("${cmd[@]:1}")
  for gc in default -XX:+UseSerialGC; do
    local P2; P2=$(port)
    local c2=("$java"); [ "$gc" != default ] && c2+=("$gc")
    c2+=("${rest[@]//$P/$P2}")
    if ! "$CRACIN" bench --runs 3 --latency-requests 1 --ready "http://127.0.0.1:$P2/health" \
      --warmup "http://127.0.0.1:$P2$path" --warmup-requests 2000 -- "${c2[@]}" \
      >"$tmp/gc.out" 2>"$tmp/gc.err"; then
      echo "cracin bench with $gc failed:" >&2
      tail -20 "$tmp/gc.err" >&2
      exit 1
    fi
    awk -v gc="$gc" '/^cracin restore|^checkpoint:/ { print gc ": " $0 }' "$tmp/gc.out"
  done
  echo '```'
  echo
}

{
  echo "# How close restore comes to the floor"
  echo
  echo "Made by \`scripts/bench-floor.sh $RUNS\` on $(date -u '+%Y-%m-%d %H:%M UTC') ($(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GiB)."
  echo "The machine is shared with other sessions running builds and tests at the same time: the"
  echo "load average is printed before and after each table; quote medians and ratios, not single"
  echo "figures. \"cracin restore\" is the command, timed from its exec to the first HTTP 200;"
  echo "\"plain criu restore\" runs the same criu command line on the same images without cracin"
  echo "around it (so without cracin's cached kernel probe: /run is not a tmpfs here)."
  echo
  bench "Test application (Counter --boot)" /work java -jar "$tmp/counter.jar" @PORT@ --boot
  bench "Reference OSGi application (app.jar)" /modify/fubar \
    java -Dorg.osgi.service.http.port=@PORT@ -jar examples/osgi-jakartars/target/app.jar
} | tee "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "written to $OUT"
