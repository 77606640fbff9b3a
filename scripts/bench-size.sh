#!/usr/bin/env bash
# What makes the checkpoint of the reference OSGi application (examples/osgi-jakartars app.jar,
# JDK 17) smaller, each lever measured side by side in one run and committed to
# docs/bench-size.md with date, machine and load average. Variants (each checkpointed once,
# then restored RUNS times, round-robin so that the machine's load falls on all alike):
#   before      cracin before this work (CRACIN_BEFORE=path/to/old/cracin; skipped when unset)
#   default     cracin's defaults now (the full GC squeezes the heap to its live data)
#   reloc0      + the JDK's CDS archive mapped at its own address (-XX:ArchiveRelocationMode=0)
#   cds         + `--cds` (a dynamic CDS archive from a training run, mapped at its address)
#   cds-serial  `--cds` with -XX:+UseSerialGC in the command (what the JVM itself picks below
#               2 CPUs or 1792 MB; here G1 is its choice)
# For each: the pages CRIU wrote (images/pages-*.img in MB of 10^6 bytes; median over the checkpoints), `cracin restore` from its exec to
# its return (it returns once the application answered its readiness probe: exec -> first 200),
# and the latency of the first 100 requests after the restore against the 100 after them
# (steady state). Run as root:  [CRACIN_BEFORE=old-cracin] scripts/bench-size.sh [RUNS] [CKPTS]
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
RUNS=${1:-5}
CKPTS=${2:-3}
build_cracin examples
APP=$PWD/examples/osgi-jakartars/target/app.jar
OUT=docs/bench-size.md
tmp=$(mktemp -d)
archives=()
cleanup() {
  for f in "$tmp"/*.pid; do [ -f "$f" ] && kill -TERM "$(cat "$f")" 2>/dev/null || true; done
  rm -rf "$tmp"
  # The archives --cds made for this run only.
  for a in "${archives[@]}"; do rm -f "$a"; done
}
trap cleanup EXIT
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

variants=()
[ -n "${CRACIN_BEFORE:-}" ] && variants+=(before)
variants+=(default reloc0 cds cds-serial)
declare -A PORT
checkpoint() {
  local v=$1 k=$2 P=${PORT[$1]}
  local exe=$CRACIN flags=() jopts=()
  case $v in
    before) exe=$CRACIN_BEFORE ;;
    reloc0) flags=(--java-option=-XX:+UnlockDiagnosticVMOptions --java-option=-XX:ArchiveRelocationMode=0) ;;
    cds) flags=(--cds) ;;
    cds-serial) flags=(--cds); jopts=(-XX:+UseSerialGC) ;;
  esac
  "$exe" checkpoint --out "$tmp/$v-$k" "${flags[@]}" --ready "http://127.0.0.1:$P/health" \
    --warmup "http://127.0.0.1:$P/modify/fubar" --warmup-requests 2000 \
    -- java "${jopts[@]}" -Dorg.osgi.service.http.port=$P -jar "$APP" >"$tmp/$v-$k.ck.log" 2>&1
  local a; a=$(grep -o '/var/lib/cracin/cds/[0-9a-f]*\.jsa' "$tmp/$v-$k.ck.log" | head -1 || true)
  [ -n "$a" ] && archives+=("$a")
  # MB of 10^6 bytes, as cracin prints image sizes.
  du -sb "$tmp/$v-$k"/images/pages-*.img | awk '{s += $1} END {printf "%.1f\n", s / 1e6}' >>"$tmp/$v.mb"
}
# latency URL N: the time_total of N requests on one connection, one per line (ms).
latency() { local args=(); for _ in $(seq "$2"); do args+=(-o /dev/null "$1"); done
  curl -s -w '%{time_total}\n' "${args[@]}" | awk '{printf "%.2f\n", $1 * 1000}'; }
restore_once() {
  local v=$1 k=$2 P=${PORT[$1]} t0; t0=$(date +%s%N)
  "$CRACIN" restore "$tmp/$v-$k" --json >"$tmp/$v.r.json" 2>>"$tmp/$v.r.err"
  ms "$t0" >>"$tmp/$v.restore"
  sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$tmp/$v.r.json" | head -1 >"$tmp/$v.pid"
  latency "http://127.0.0.1:$P/modify/fubar" 100 >"$tmp/lat"
  latency "http://127.0.0.1:$P/modify/fubar" 100 >"$tmp/steady"
  # first request, median of the first 100, median of the next 100
  echo "$(head -1 "$tmp/lat") $(sort -n "$tmp/lat" | sed -n 50p) $(sort -n "$tmp/steady" | sed -n 50p)" >>"$tmp/$v.lat"
  local pid; pid=$(cat "$tmp/$v.pid")
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  rm -f "$tmp/$v.pid"
}
med() { sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for v in "${variants[@]}"; do PORT[$v]=$(port); done
for k in $(seq "$CKPTS"); do for v in "${variants[@]}"; do checkpoint "$v" "$k"; done; done
for i in $(seq "$RUNS"); do for v in "${variants[@]}"; do restore_once "$v" $(( (i - 1) % CKPTS + 1 )); done; done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
base=$(cat "$tmp/default.restore" | med)
section=$tmp/section.md
{
  echo "<!-- begin bench-size.sh -->"
  echo "Made by \`scripts/bench-size.sh $RUNS $CKPTS\` on $(date -u '+%Y-%m-%d %H:%M UTC') ($(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs, $(free -g | awk '/^Mem:/ {print $2}') GiB), $(java -version 2>&1 | head -1), collector G1 (the JVM's own choice here) unless noted."
  echo "Load average before: $load_before; after: $load_after (a shared machine: compare the"
  echo "variants with each other, they were restored in turn in the same minutes)."
  echo
  echo "| variant | pages dumped (median of $CKPTS checkpoints: all) | restore → first 200 (median of $RUNS) | vs default | first request | median of first 100 | median of next 100 (steady) |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  for v in "${variants[@]}"; do
    r=$(med <"$tmp/$v.restore")
    f=$(awk '{print $1}' "$tmp/$v.lat" | med); m=$(awk '{print $2}' "$tmp/$v.lat" | med); s=$(awk '{print $3}' "$tmp/$v.lat" | med)
    echo "| $v | $(med <"$tmp/$v.mb") MB ($(paste -sd/ "$tmp/$v.mb")) | $r ms | $(awk -v a="$r" -v b="$base" 'BEGIN {printf "%.2f", a / b}') | $f ms | $m ms | $s ms |"
  done
  echo
  echo "The first checkpoint of each variant, as cracin reported it:"
  echo
  echo '```'
  for v in "${variants[@]}"; do echo "$v: $(grep -m1 '^checkpoint written' "$tmp/$v-1.ck.log" | sed "s|$tmp/||")"; grep -m1 ' cds  *done' "$tmp/$v-1.ck.log" | sed "s|^|$v: |" || true; done
  echo '```'
  echo "<!-- end bench-size.sh -->"
} >"$section"
cat "$section"
# Replace the measured section of OUT, keep the text around it.
if [ -f "$OUT" ] && grep -q '^<!-- begin bench-size.sh -->' "$OUT"; then
  awk -v f="$section" '/^<!-- begin bench-size.sh -->/ {while ((getline l < f) > 0) print l; skip = 1} !skip {print} /^<!-- end bench-size.sh -->/ {skip = 0}' "$OUT" >"$tmp/out"
else
  { echo "# A smaller checkpoint of the reference OSGi application"; echo; cat "$section"; } >"$tmp/out"
fi
cat "$tmp/out" >"$OUT"
echo "written to $OUT"
