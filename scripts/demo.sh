#!/usr/bin/env bash
# The demo: on a fresh Debian 12 machine (as root) it installs what is missing, builds cracin and
# the reference OSGi application (Jakarta REST whiteboard on Jetty), checkpoints app.jar with the
# local engine after readiness and a warm-up, restores it, and prints a comparison measured in
# this run: cold start vs restore to the first response, checkpoint size, and the latency of the
# first 100 requests after a cold start vs after a restore.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:/usr/local/sbin:/usr/sbin:/sbin:$PATH"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "set-up (idempotent)"
bash scripts/setup.sh
say "building cracin and the OSGi application"
cargo build --release --quiet
bash scripts/build-examples.sh >/dev/null
CRACIN=$PWD/target/release/cracin
JAR=$PWD/examples/osgi-jakartars/target/app.jar
WORK=$PWD/out/demo
mkdir -p "$WORK"

# A free port, so the demo does not collide with anything on this machine.
while :; do
  PORT=$((20000 + RANDOM % 20000))
  ss -Htln "sport = :$PORT" | grep -q . || break
done
APP=(java "-Dorg.osgi.service.http.port=$PORT" -jar "$JAR")
URL=http://127.0.0.1:$PORT

say "checkpoint: start, wait for $URL/health, 2000 warm-up requests, freeze"
"$CRACIN" checkpoint --out "$WORK/checkpoint" --force --ready "$URL/health" \
  --warmup "$URL/modify/fubar" --warmup-requests 2000 -- "${APP[@]}"

say "restore, then ask it something"
out=$("$CRACIN" restore "$WORK/checkpoint" --json)
pid=$(sed -E 's/.*"pid":([0-9]+).*/\1/' <<<"$out")
echo "restored, ready in $(sed -E 's/.*"ready_ms":([0-9.]+).*/\1/' <<<"$out" | cut -d. -f1) ms (pid $pid)"
echo "GET /modify/fubar -> $(curl -fsS "$URL/modify/fubar" | cut -c1-100)..."
echo "GET /modify/stats -> $(curl -fsS "$URL/modify/stats")"
kill "$pid"
while [ -e "/proc/$pid" ]; do sleep 0.05; done

say "comparison (3 cold starts, 3 restores, first 100 requests; measured now, on this machine)"
"$CRACIN" bench --runs 3 --ready "$URL/health" --warmup "$URL/modify/fubar" --warmup-requests 2000 \
  --latency-url "$URL/modify/fubar" --latency-requests 100 -- "${APP[@]}" 2>/dev/null
