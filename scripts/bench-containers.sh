#!/usr/bin/env bash
# Container start-up benchmark of `cracin build`, written to docs/bench-containers.md (one section
# per engine; rerunning an engine replaces its section) with date and machine:
#   - for each application, an application image (FROM localhost/cracin-base:jdkN, the jar, and
#     a plain `java` CMD: what a cold start is) and its restore image made by
#     `cracin build --image APP_IMAGE` (release build of cracin);
#   - `run -d` → first HTTP 200 on the published port, restore image vs application image, runs
#     interleaved, medians (the machine is shared and noisy), plus the engine's own floor (`run -d`
#     of a container that only sleeps) and the in-container restore time cracin logs;
#   - the sizes of the base, application and restore images and of the checkpoint files (the
#     seed's "size w/o / with checkpoint" table).
# Applications: the test application Counter started with --boot (loads ~15,000 JDK classes
# before listening, as frameworks do) and, when built (scripts/build-examples.sh), the reference
# OSGi application examples/osgi-jakartars/target/app.jar.
#
#   scripts/bench-containers.sh podman|docker [--runs N (default 7)] [--jdk 17|21|25 (default 21)]
#                               [--out FILE (default docs/bench-containers.md)]
#
# Root; podman needs scripts/setup-containers.sh, docker also `scripts/dockerd.sh start`; the
# base image must exist in that engine (`cracin base --jdk 21 --engine ENGINE`). The engine, its
# options and the restore flags are cracin's (read from `cracin build --dry-run`), so the restore
# containers run exactly as `cracin build` says to run them. Every container and image the script
# makes is removed at exit.
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"

ENGINE=${1:?usage: scripts/bench-containers.sh podman|docker [--runs N] [--jdk N] [--out FILE]}
shift
RUNS=7 JDK=21 OUT=docs/bench-containers.md
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --jdk) JDK=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

case $ENGINE in
  podman|docker) ;;
  *) echo "engine must be podman or docker" >&2; exit 2 ;;
esac
BASE=localhost/cracin-base:jdk$JDK

build_cracin

# The engine command, its `run` options and the restore containers' flags come from cracin's own
# plan for a restore image of BASE (`cracin build --dry-run`): the ones `cracin build` uses and
# prints in its `run it with:` line, for the engine cracin picks (`cracin doctor --engine ENGINE`).
plan=$("$CRACIN" build --dry-run --engine "$ENGINE" --image "$BASE" --tag cracin-bench-probe \
  --verify 1 -- java -version) || { echo "no $BASE in $ENGINE? cracin base --jdk $JDK --engine $ENGINE" >&2; exit 1; }
# The engine's environment (`export K=V ...`, shell-quoted by cracin).
eval "$(printf '%s\n' "$plan" | sed -n '/^export /p')"
# The first verification container: ENGINE [GLOBAL...] run [RUN_ARGS...] -d --name NAME
# [RESTORE_FLAGS...] -p ADDR IMAGE
eval "verify=($(printf '%s\n' "$plan" | awk '/^# [0-9]+\. verify-1-run:/ {getline; print; exit}'))"
E=() RUN_ARGS=() RESTORE_FLAGS=()
i=0
while [ "${verify[$i]}" != run ]; do E+=("${verify[$i]}"); i=$((i + 1)); done
i=$((i + 1))
while [ "${verify[$i]}" != -d ]; do RUN_ARGS+=("${verify[$i]}"); i=$((i + 1)); done
i=$((i + 3))
while [ "${verify[$i]}" != -p ]; do RESTORE_FLAGS+=("${verify[$i]}"); i=$((i + 1)); done

SUFFIX=$ENGINE-$$
tmp=$(mktemp -d)
containers=() images=()
cleanup() {
  for c in "${containers[@]}"; do "${E[@]}" rm -f "$c" >/dev/null 2>&1 || true; done
  for i in "${images[@]}"; do "${E[@]}" rmi -f "$i" >/dev/null 2>&1 || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{v[NR]=$1} END {if (NR==0) {print "-"; exit} m=(NR%2)?v[(NR+1)/2]:int((v[NR/2]+v[NR/2+1])/2); printf "%d ms (%d-%d)", m, v[1], v[NR]}'; }
mb() { awk -v b="$1" 'BEGIN {printf "%.0f MB", b/1000000}'; }

# One start: `run -d`, then poll URL_PATH on the published port until it answers 200. Prints the
# milliseconds; the restore's own time ("cracin: restored in N ms") goes to $tmp/restored.
start_ms() { # IMAGE PATH [FLAGS...]
  local img=$1 path=$2; shift 2
  local name=cracin-bench-run-$SUFFIX-$RANDOM p t0 t1
  p=$(port)
  containers+=("$name")
  t0=$(now_ms)
  "${E[@]}" run "${RUN_ARGS[@]}" -d --name "$name" -p "127.0.0.1:$p:8080" "$@" "$img" >/dev/null
  until curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$p$path" 2>/dev/null; do
    if [ $(( $(now_ms) - t0 )) -gt 120000 ]; then echo "no answer from $img" >&2; "${E[@]}" logs "$name" >&2; exit 1; fi
    sleep 0.005
  done
  t1=$(now_ms)
  "${E[@]}" logs "$name" 2>&1 | sed -n 's/.*cracin: restored in \([0-9]*\) ms.*/\1/p' >>"$tmp/restored"
  if "${E[@]}" logs "$name" 2>&1 | grep -q 'cracin: restore failed'; then
    echo "$img fell back to a cold start:" >&2; "${E[@]}" logs "$name" >&2; exit 1
  fi
  "${E[@]}" rm -f "$name" >/dev/null
  echo $((t1 - t0))
}

# The engine's floor: `run -d` of a container that only sleeps, with a published port.
floor_ms() {
  local name=cracin-bench-idle-$SUFFIX-$RANDOM t0 t1
  containers+=("$name")
  t0=$(now_ms)
  "${E[@]}" run "${RUN_ARGS[@]}" -d --name "$name" -p "127.0.0.1:$(port):8080" "$BASE" sleep 60 >/dev/null
  t1=$(now_ms)
  "${E[@]}" rm -f -t 0 "$name" >/dev/null 2>&1 || "${E[@]}" rm -f "$name" >/dev/null
  echo $((t1 - t0))
}

# bench NAME JAR READY_PATH WARMUP_PATH CMD_JSON: prints one row of each table into $tmp/rows-*.
bench() {
  local name=$1 jar=$2 ready=$3 warmup=$4 cmd=$5
  local ctx=$tmp/ctx-$name app=localhost/cracin-bench-$name-$SUFFIX:cold tag=localhost/cracin-bench-$name-$SUFFIX:instant
  mkdir -p "$ctx"
  cp "$jar" "$ctx/app.jar"
  printf 'FROM %s\nCOPY app.jar /app/app.jar\nWORKDIR /app\nEXPOSE 8080\nCMD %s\n' "$BASE" "$cmd" >"$ctx/Containerfile"
  images+=("$app" "$tag")
  echo "== $name: application image" >&2
  "${E[@]}" build "${RUN_ARGS[@]}" -q -f "$ctx/Containerfile" -t "$app" "$ctx" >/dev/null
  echo "== $name: cracin build --image $app" >&2
  local t0 build_ms; t0=$(now_ms)
  (cd "$ctx" && "$CRACIN" build --engine "$ENGINE" --image "$app" --tag "$tag" --verify 1 \
    --ready "http://127.0.0.1:8080$ready" --warmup "http://127.0.0.1:8080$warmup") >"$tmp/build-$name.log" 2>&1 \
    || { cat "$tmp/build-$name.log" >&2; exit 1; }
  build_ms=$(( $(now_ms) - t0 ))
  : >"$tmp/restored"; : >"$tmp/r"; : >"$tmp/c"; : >"$tmp/f"
  for i in $(seq "$RUNS"); do
    echo "== $name: run $i/$RUNS" >&2
    start_ms "$tag" "$ready" "${RESTORE_FLAGS[@]}" >>"$tmp/r"
    start_ms "$app" "$ready" >>"$tmp/c"
    floor_ms >>"$tmp/f"
  done
  local ck
  ck=$("${E[@]}" run "${RUN_ARGS[@]}" --rm --entrypoint du "$tag" -sb /app/checkpoint | awk '{print $1}')
  printf '| %s | %s | %s | %s | %s |\n' "$name" "$(median <"$tmp/r")" "$(median <"$tmp/c")" \
    "$(median <"$tmp/f")" "$(median <"$tmp/restored")" >>"$tmp/rows-start"
  printf '| %s | %s | %s | %s | %s | %.1f s |\n' "$name" \
    "$(mb "$("${E[@]}" image inspect -f '{{.Size}}' "$BASE")")" \
    "$(mb "$("${E[@]}" image inspect -f '{{.Size}}' "$app")")" \
    "$(mb "$("${E[@]}" image inspect -f '{{.Size}}' "$tag")")" \
    "$(mb "$ck")" "$(awk -v m="$build_ms" 'BEGIN {print m/1000}')" >>"$tmp/rows-size"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
javac -d "$tmp/counter" tests/fixtures/apps/counter-http/Counter.java
(cd "$tmp/counter" && jar cfe app.jar Counter Counter.class)
bench counter-boot "$tmp/counter/app.jar" /health /work \
  '["java", "-Dcounter.bind=0.0.0.0", "-jar", "/app/app.jar", "8080", "--boot"]'
OSGI=examples/osgi-jakartars/target/app.jar
if [ -f "$OSGI" ]; then
  bench osgi-jakartars "$OSGI" /health /modify/fubar '["java", "-jar", "/app/app.jar"]'
else
  echo "skipping the OSGi application: $OSGI missing (scripts/build-examples.sh)" >&2
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

version=$("${E[@]}" --version | sed "s/^[^0-9]*//; s/,.*//")
section=$tmp/section.md
{
  echo "<!-- begin $ENGINE -->"
  echo "## $ENGINE $version"
  echo
  echo "Made by \`scripts/bench-containers.sh $ENGINE --runs $RUNS --jdk $JDK\` on $(date -u '+%Y-%m-%d %H:%M UTC'):"
  echo "$(uname -srm), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs;"
  echo "load average $load_before before, $load_after after (a shared machine: medians, min-max in brackets)."
  echo "Base \`$BASE\`; restore flags \`${RESTORE_FLAGS[*]}\`; cracin $("$CRACIN" --version | awk '{print $2}') (release build) in the restore image."
  echo
  echo "Start: from \`$ENGINE run -d\` to the first HTTP 200 on the published port, $RUNS runs each, interleaved."
  echo
  echo '| application | restore image | application image (cold) | `run -d` of an idle container | restore inside the container (cracin logs) |'
  echo '| --- | ---: | ---: | ---: | ---: |'
  cat "$tmp/rows-start"
  echo
  echo 'Sizes (`image inspect` .Size; the seed compares "size w/o checkpoint" and "size with checkpoint"):'
  echo
  echo '| application | base image | application image (w/o checkpoint) | restore image (with checkpoint) | checkpoint files | `cracin build` |'
  echo '| --- | ---: | ---: | ---: | ---: | ---: |'
  cat "$tmp/rows-size"
  echo "<!-- end $ENGINE -->"
} >"$section"
cat "$section"

# Replace this engine's section of OUT (or start OUT) and keep the other engine's.
if [ ! -f "$OUT" ]; then
  {
    echo "# Container benchmarks"
    echo
    echo "Written by \`scripts/bench-containers.sh ENGINE\` (one section per engine; see the script for what"
    echo "is measured). The application image starts the JVM cold with its default options; the restore"
    echo "image is \`cracin build --image\` of it (the checkpointed JVM ran with cracin's heap-shrinking"
    echo "options \`-XX:+UseSerialGC -Xms16m\`, see docs/containers.md)."
    echo
  } >"$OUT"
fi
awk -v e="$ENGINE" '$0 == "<!-- begin " e " -->" {skip=1} !skip {print} $0 == "<!-- end " e " -->" {skip=0}' "$OUT" >"$tmp/out"
cat "$section" >>"$tmp/out"
echo >>"$tmp/out"
cat -s "$tmp/out" >"$OUT"
echo "written to $OUT" >&2
