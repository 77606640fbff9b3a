#!/usr/bin/env bash
# What fresh randomness on restore costs (docs/individual.md), committed to
# docs/bench-renew.md with date and machine:
#   1. restore time: the random-kinds app (tests/fixtures/apps/random-kinds) checkpointed with and
#      without renewal, restored RUNS times each: cracin's "renew" step (signal to the agent,
#      renewal, threads resumed, answer read) and restore -> ready, medians;
#   2. steady state: Steady.java (new Random(), SHA1PRNG, HashMap) with and without the agent
#      loaded, RUNS JVMs each (alternating), median of their per-second throughputs;
#   3. start-up: plain `java` of the random-kinds app to its first HTTP 200, with and without the
#      agent (what loading it costs a cold start, i.e. the checkpoint run).
# Run as root after scripts/setup.sh.   scripts/bench-renew.sh [RUNS]
set -euo pipefail
source "$(dirname "$0")/bench-lib.sh"
RUNS=${1:-9}
build_cracin
OUT=docs/bench-renew.md
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
javac --release 17 -d "$tmp" tests/fixtures/apps/random-kinds/Randoms.java tests/fixtures/apps/random-kinds/Steady.java
AGENT=$(ls target/release/build/cracin-core-*/out/libcracin_agent.so | head -1)
median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "-"; else if (NR%2) printf "%.1f\n", a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
wait_http() { for _ in $(seq 3000); do curl -fs -o /dev/null "$1" && return 0; sleep 0.005; done; return 1; }

restores() { # CKPT PORT -> lines "renew_ms ready_ms"
  local i out pid
  for i in $(seq "$RUNS"); do
    out=$("$CRACIN" restore "$1" --json 2>/dev/null)
    pid=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' <<<"$out")
    curl -fs -o /dev/null "http://127.0.0.1:$2/"
    kill -TERM "$pid"; while [ -e /proc/$pid ]; do sleep 0.01; done
    sed -n 's/.*"ready_ms":\([0-9.]*\).*"renew_ms":\([0-9.]*\).*/\2 \1/p;s/.*"renew_ms":\([0-9.]*\).*"ready_ms":\([0-9.]*\).*/\1 \2/p' <<<"$out" | head -1
  done
}

{
  echo "# What fresh randomness on restore costs"
  echo
  echo "Made by \`scripts/bench-renew.sh $RUNS\` on $(date -u +%Y-%m-%dT%H:%MZ) ($(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs, a shared and noisy machine: medians of $RUNS)."
  for JAVA in java /usr/lib/jvm/temurin-25-jdk-amd64/bin/java; do
    command -v "$JAVA" >/dev/null || continue
    echo
    echo "## $("$JAVA" -XshowSettings:properties -version 2>&1 | sed -n 's/.*java.vm.version = //p') ($JAVA)"
    echo
    echo '```'
    P=$(port)
    for mode in renew no-renew; do
      flag=(); [ $mode = no-renew ] && flag=(--no-renew)
      (cd "$tmp" && "$CRACIN" checkpoint "${flag[@]}" --out "$tmp/ck-$mode" --ready "http://127.0.0.1:$P/health" \
        --warmup "http://127.0.0.1:$P/" --warmup-requests 20 -- "$JAVA" -cp . Randoms "$P" >/dev/null 2>&1)
      restores "$tmp/ck-$mode" "$P" >"$tmp/r-$mode"
      printf '%-34s agent step %6s ms   restore -> ready %6s ms\n' "restore, $mode:" \
        "$(cut -d' ' -f1 "$tmp/r-$mode" | median)" "$(cut -d' ' -f2 "$tmp/r-$mode" | median)"
      rm -rf "$tmp/ck-$mode"
    done
    # With and without the agent alternate, so that the machine's load drifts over both alike.
    : >"$tmp/s-without"; : >"$tmp/s-with"; : >"$tmp/c-without"; : >"$tmp/c-with"
    for i in $(seq "$RUNS"); do
      for mode in without with; do
        opt=(); [ $mode = with ] && opt=("-agentpath:$PWD/$AGENT=$tmp")
        "$JAVA" "${opt[@]}" -cp "$tmp" Steady 3 2>/dev/null | sed 's/ops\/ms=//' >>"$tmp/s-$mode"
        P=$(port)
        t0=$(date +%s%N)
        "$JAVA" "${opt[@]}" -cp "$tmp" Randoms "$P" >/dev/null 2>&1 &
        jp=$!
        wait_http "http://127.0.0.1:$P/health"
        echo $(( ($(date +%s%N) - t0) / 1000000 )) >>"$tmp/c-$mode"
        kill "$jp"; wait "$jp" 2>/dev/null || true
      done
    done
    for mode in without with; do
      printf '%-34s %8s ops/ms\n' "steady state, $mode agent:" "$(median <"$tmp/s-$mode")"
    done
    for mode in without with; do
      printf '%-34s %8s ms\n' "cold start, $mode agent:" "$(median <"$tmp/c-$mode")"
    done
    echo '```'
  done
  echo
  echo "\"agent step\" is cracin's renew (or, with --no-renew, resume) step as \`restore --json\` reports it"
  echo "(renew_ms): from the signal to the agent until its answer was read, the threads running again."
} | tee "$OUT"
