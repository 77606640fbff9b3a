#!/usr/bin/env bash
# How much of a restore container's start is the OCI runtime: podman with runc (Debian's and
# cracin's default) against crun (`apt-get install crun`), side by side in one run, interleaved,
# medians; written to docs/bench-runtimes.md (the measured section; the text around it is kept).
# For each runtime and each run:
#   idle      `podman run -d` of a container that only sleeps, with a published port (the floor);
#   restore   `podman run -d` of the restore image of the reference OSGi application (made once
#             by `cracin build`) -> first HTTP 200 on the published port, and the restore's own
#             time inside the container as cracin logs it ("cracin: restored in N ms").
# The target of issue 14: restore <= idle + 100 ms.
#   scripts/bench-runtimes.sh [RUNS (default 7)] [JDK (default 21)]
# Root, after scripts/setup-containers.sh and `cracin base --jdk JDK --engine podman`. Every
# container and image it makes is removed at exit.
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
export CONTAINERS_CONF=/opt/cracin/containers.conf
RUNS=${1:-7}
JDK=${2:-21}
BASE=localhost/cracin-base:jdk$JDK
podman image inspect "$BASE" >/dev/null 2>&1 || { echo "no $BASE: cracin base --jdk $JDK --engine podman" >&2; exit 1; }
# A runtime is measured only where it can start a container at all (crun 1.8 refuses cgroup v1
# "hybrid" hosts such as this one); the table says why one was left out.
runtimes=() refused=()
for r in runc crun; do
  command -v "$r" >/dev/null || { refused+=("$r: not installed"); continue; }
  if err=$(podman --runtime "$r" run --rm "$BASE" true 2>&1); then runtimes+=("$r"); else refused+=("$r: $err"); fi
done
build_cracin
OSGI=examples/osgi-jakartars/target/app.jar
[ -f "$OSGI" ] || bash scripts/build-examples.sh >/dev/null
S=$$
tmp=$(mktemp -d)
containers=() images=()
cleanup() {
  for c in "${containers[@]}"; do podman rm -f "$c" >/dev/null 2>&1 || true; done
  for i in "${images[@]}"; do podman rmi -f "$i" >/dev/null 2>&1 || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
median() { sort -n | awk '{v[NR]=$1} END {m=(NR%2)?v[(NR+1)/2]:int((v[NR/2]+v[NR/2+1])/2); printf "%d", m}'; }

app=localhost/cracin-bench-rt-$S:cold tag=localhost/cracin-bench-rt-$S:instant
images+=("$app" "$tag")
mkdir -p "$tmp/ctx"
cp "$OSGI" "$tmp/ctx/app.jar"
printf 'FROM %s\nCOPY app.jar /app/app.jar\nWORKDIR /app\nEXPOSE 8080\nCMD ["java", "-jar", "/app/app.jar"]\n' "$BASE" >"$tmp/ctx/Containerfile"
podman build -q -f "$tmp/ctx/Containerfile" -t "$app" "$tmp/ctx" >/dev/null
(cd "$tmp/ctx" && "$CRACIN" build --engine podman --image "$app" --tag "$tag" \
  --ready http://127.0.0.1:8080/health --warmup http://127.0.0.1:8080/modify/fubar) >"$tmp/build.log" 2>&1 \
  || { cat "$tmp/build.log" >&2; exit 1; }

idle() { # RUNTIME
  local name=cracin-bench-idle-$S-$RANDOM t0 t1
  containers+=("$name")
  t0=$(now_ms)
  podman --runtime "$1" run -d --name "$name" -p "127.0.0.1:$(port):8080" "$BASE" sleep 60 >/dev/null
  t1=$(now_ms)
  podman rm -f -t 0 "$name" >/dev/null 2>&1
  echo $((t1 - t0)) >>"$tmp/idle-$1"
}
restore() { # RUNTIME
  local name=cracin-bench-rt-$S-$RANDOM p t0 t1
  p=$(port); containers+=("$name")
  t0=$(now_ms)
  podman --runtime "$1" run -d --name "$name" -p "127.0.0.1:$p:8080" --cap-add=CHECKPOINT_RESTORE "$tag" >/dev/null
  until curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$p/health" 2>/dev/null; do
    if [ $(( $(now_ms) - t0 )) -gt 120000 ]; then podman logs "$name" >&2; exit 1; fi
    sleep 0.005
  done
  t1=$(now_ms)
  if podman logs "$name" 2>&1 | grep -q 'cracin: restore failed'; then podman logs "$name" >&2; exit 1; fi
  podman logs "$name" 2>&1 | sed -n 's/.*cracin: restored in \([0-9]*\) ms.*/\1/p' >>"$tmp/inside-$1"
  podman rm -f -t 0 "$name" >/dev/null 2>&1
  echo $((t1 - t0)) >>"$tmp/restore-$1"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for _ in $(seq "$RUNS"); do for r in "${runtimes[@]}"; do idle "$r"; restore "$r"; done; done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
OUT=docs/bench-runtimes.md
{
  echo "<!-- begin bench-runtimes.sh -->"
  echo "\`scripts/bench-runtimes.sh $RUNS $JDK\` on $(date -u '+%Y-%m-%d %H:%M UTC'), podman $(podman --version | awk '{print $3}'), $(nproc) CPUs, load average $load_before before, $load_after after; reference OSGi application, medians of $RUNS, interleaved:"
  echo
  echo "| OCI runtime | \`run -d\` of an idle container | restore image: \`run -d\` → first 200 | restore − idle | restore inside the container (cracin logs) |"
  echo "| --- | ---: | ---: | ---: | ---: |"
  for r in "${runtimes[@]}"; do
    i=$(median <"$tmp/idle-$r"); s=$(median <"$tmp/restore-$r")
    echo "| $r $("$r" --version | head -1 | awk '{print $NF}') | $i ms | $s ms | $((s - i)) ms | $(median <"$tmp/inside-$r") ms |"
  done
  for r in "${refused[@]}"; do echo "| ${r%%:*} | cannot start a container here: ${r#*: } | | | |"; done
  echo "<!-- end bench-runtimes.sh -->"
} >"$tmp/section"
cat "$tmp/section"
if [ -f "$OUT" ] && grep -q '^<!-- begin bench-runtimes.sh -->' "$OUT"; then
  awk -v f="$tmp/section" '/^<!-- begin bench-runtimes.sh -->/ {while ((getline l < f) > 0) print l; skip = 1} !skip {print} /^<!-- end bench-runtimes.sh -->/ {skip = 0}' "$OUT" >"$tmp/out"
  cat "$tmp/out" >"$OUT"
else
  { echo "# Container start: the OCI runtime"; echo; cat "$tmp/section"; } >"$OUT"
fi
echo "written to $OUT" >&2
