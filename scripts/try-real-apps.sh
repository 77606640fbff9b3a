#!/usr/bin/env bash
# cracin on real server applications we did not write, used as a new user would: each app is
# started with its own normal start command under `cracin checkpoint`, restored three times
# (state from before the checkpoint must be there; changes made after a restore must not leak
# into the next one), restored once more with --foreground and stopped with SIGTERM, and a
# second restore while one runs must be refused. Prints PASS/FAIL per app; exits 1 if any failed.
#
#   scripts/try-real-apps.sh [--bench] [wiremock|h2|tomcat|jetty]...   (default: all four)
#
# --bench also runs `cracin bench --runs 3` per app (slow; numbers are for docs/real-apps.md).
# Downloads (Maven Central only) are cached in /var/cache/cracin/apps; the script is idempotent.
# Everything else lives in a private temp dir that is removed at the end, and every process the
# script started is stopped. Needs root, CRIU 4.2.1 (scripts/setup.sh), java, mvn, curl.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:/usr/local/sbin:/usr/sbin:/sbin:$PATH"

WIREMOCK_V=3.13.2
H2_V=2.3.232
TOMCAT_V=10.1.59
JETTY_V=12.0.16
CACHE=/var/cache/cracin/apps

BENCH=0
APPS=()
for a in "$@"; do
  case $a in
    --bench) BENCH=1 ;;
    wiremock|h2|tomcat|jetty) APPS+=("$a") ;;
    *) echo "usage: $0 [--bench] [wiremock|h2|tomcat|jetty]..." >&2; exit 2 ;;
  esac
done
[ ${#APPS[@]} -eq 0 ] && APPS=(wiremock h2 tomcat jetty)

if [ -z "${CRACIN:-}" ]; then
  cargo build --release --quiet || { echo "FAIL: cargo build" >&2; exit 1; }
  CRACIN=$PWD/target/release/cracin
fi

WORK=$(mktemp -d /tmp/cracin-real-apps.XXXXXX)
PIDS=()   # every process this script may have left: restored apps, helpers
cleanup() {
  for p in "${PIDS[@]}"; do
    kill "$p" 2>/dev/null
  done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 200); do [ -e "/proc/$p" ] || break; sleep 0.05; done
    kill -9 "$p" 2>/dev/null
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "--- $*" >&2; }

# A TCP port nobody listens on (20000-40000).
port() {
  while :; do
    local p=$((20000 + RANDOM % 20000))
    ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }
  done
}

# Stops a process and waits until it is gone (reaped, not just signalled).
stop() {
  local pid=$1
  kill "$pid" 2>/dev/null
  for _ in $(seq 400); do [ -e "/proc/$pid" ] || return 0; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null
  echo "pid $pid ignored SIGTERM for 20 s" >&2
  return 1
}

# `cracin restore DIR ARGS... --json`; sets RPID to the restored PID and remembers it for the
# cleanup (no command substitution: a subshell could not add to PIDS).
RPID=
restore() {
  local dir=$1; shift
  local out
  RPID=
  out=$("$CRACIN" restore "$dir" "$@" --json 2>"$WORK/restore.err") || {
    echo "cracin restore $dir $* failed (exit $?): $(cat "$WORK/restore.err")" >&2
    return 1
  }
  RPID=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' <<<"$out")
  local ms
  ms=$(sed -n 's/.*"ready_ms":\([0-9]*\).*/\1/p' <<<"$out")
  PIDS+=("$RPID")
  log "restored $(basename "$(dirname "$dir")"): pid $RPID, ready in ${ms} ms"
}

# Waits until HOST:PORT accepts connections or gives up after $2 seconds.
wait_tcp() {
  local p=$1 secs=${2:-60}
  for _ in $(seq $((secs * 10))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

fail() { echo "  check failed: $*" >&2; return 1; }

# `restore` once more while the previous restore still runs: must be refused (port in use).
second_restore_refused() {
  local dir=$1; shift
  local rc=0
  "$CRACIN" restore "$dir" "$@" >"$WORK/second.out" 2>&1 || rc=$?
  if [ $rc -eq 0 ]; then
    local pid
    pid=$(sed -n 's/.*(pid \([0-9]*\)).*/\1/p' "$WORK/second.out")
    [ -n "$pid" ] && { PIDS+=("$pid"); stop "$pid"; }
    fail "a second restore while the first runs was not refused"
    return 1
  fi
  grep -q "already in use" "$WORK/second.out" || { cat "$WORK/second.out" >&2; fail "second restore: unexpected message"; return 1; }
  log "second restore while one runs refused (exit $rc)"
}

# --foreground, then SIGTERM: cracin must exit, the app must be gone, the port free.
foreground_sigterm() {
  local dir=$1 check_port=$2; shift 2
  "$CRACIN" restore "$dir" --foreground "$@" >"$WORK/fg.out" 2>&1 &
  local cp=$!
  PIDS+=("$cp")
  local app=""
  for _ in $(seq 600); do
    app=$(sed -n 's/.*(pid \([0-9]*\)).*/\1/p' "$WORK/fg.out")
    [ -n "$app" ] && break
    kill -0 $cp 2>/dev/null || break
    sleep 0.05
  done
  [ -n "$app" ] || { kill $cp; cat "$WORK/fg.out" >&2; fail "--foreground restore never said ready"; return 1; }
  PIDS+=("$app")
  wait_tcp "$check_port" 5 || { kill $cp; fail "--foreground restore does not listen on $check_port"; return 1; }
  kill -TERM $cp
  local rc=0
  wait $cp || rc=$?
  if [ -n "$app" ] && [ -e "/proc/$app" ]; then fail "app pid $app still runs after SIGTERM to cracin --foreground"; return 1; fi
  if ss -Htln "sport = :$check_port" | grep -q .; then fail "port $check_port still open after --foreground SIGTERM"; return 1; fi
  log "--foreground + SIGTERM: cracin exited $rc, nothing left"
}

bench() {
  [ $BENCH -eq 1 ] || return 0
  log "cracin bench --runs 3 $*"
  "$CRACIN" bench --runs 3 "$@" 2>"$WORK/bench.err" | sed 's/^/    /'
}

fetch() { # G:A:V[:packaging[:classifier]] FILE
  [ -s "$CACHE/$2" ] && return 0
  mkdir -p "$CACHE"
  log "fetching $1 from Maven Central"
  mvn -B -q dependency:copy -Dartifact="$1" -DoutputDirectory="$CACHE" >&2
}

# ---------------------------------------------------------------------------------------------
# WireMock: a stub created over the admin API before the checkpoint (readiness waits for it),
# warm-up on the stub, then: stub still there, request journal still counts the warm-up.
app_wiremock() {
  fetch org.wiremock:wiremock-standalone:$WIREMOCK_V wiremock-standalone-$WIREMOCK_V.jar || return 1
  local jar=$CACHE/wiremock-standalone-$WIREMOCK_V.jar d=$WORK/wiremock P
  P=$(port)
  mkdir -p "$d/root/mappings"
  echo '{"request":{"method":"GET","url":"/file"},"response":{"status":200,"body":"from file"}}' >"$d/root/mappings/file.json"
  # The stub lives only in memory: it is POSTed as soon as the admin API answers.
  (for _ in $(seq 600); do curl -sf -o /dev/null "http://127.0.0.1:$P/__admin/health" && break; sleep 0.1; done
   curl -sf -o /dev/null -X POST "http://127.0.0.1:$P/__admin/mappings" \
     -d '{"request":{"method":"GET","url":"/hello"},"response":{"status":200,"body":"hello from stub"}}') &
  local helper=$!
  PIDS+=("$helper")
  "$CRACIN" checkpoint --out "$d/ckpt" --ready "http://127.0.0.1:$P/hello" \
    --warmup "http://127.0.0.1:$P/hello" --warmup "http://127.0.0.1:$P/file" --warmup-requests 1000 \
    -- java -jar "$jar" --port "$P" --root-dir "$d/root" >&2 || { fail "checkpoint"; return 1; }
  wait $helper
  local i pid
  for i in 1 2 3; do
    restore "$d/ckpt" || return 1
    pid=$RPID
    [ "$(curl -s "http://127.0.0.1:$P/hello")" = "hello from stub" ] || fail "in-memory stub lost" || return 1
    [ "$(curl -s "http://127.0.0.1:$P/file")" = "from file" ] || fail "file stub lost" || return 1
    local n
    n=$(curl -s "http://127.0.0.1:$P/__admin/requests/count" -d '{"method":"GET","urlPattern":"/(hello|file)"}' | tr -dc '0-9\n' | grep -m1 .)
    [ "${n:-0}" -ge 1000 ] || fail "request journal count $n < 1000" || return 1
    # A stub added after a restore must not be there after the next restore.
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P/added")" = 404 ] || fail "/added leaked from an earlier restore" || return 1
    curl -sf -o /dev/null -X POST "http://127.0.0.1:$P/__admin/mappings" \
      -d '{"request":{"method":"GET","url":"/added"},"response":{"status":201}}' || fail "POST stub after restore" || return 1
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P/added")" = 201 ] || fail "new stub not served" || return 1
    [ $i -eq 1 ] && { second_restore_refused "$d/ckpt" || return 1; }
    stop "$pid" || return 1
  done
  foreground_sigterm "$d/ckpt" "$P" || return 1
  # A second checkpoint over the first one needs --force; without it: exit 2, old one kept.
  local rc=0
  "$CRACIN" checkpoint --out "$d/ckpt" --ready "tcp://127.0.0.1:$P" -- java -jar "$jar" --port "$P" >/dev/null 2>&1 || rc=$?
  [ $rc -eq 2 ] || fail "checkpoint over an existing one without --force: exit $rc, expected 2" || return 1
  "$CRACIN" checkpoint --force --out "$d/ckpt" --ready "http://127.0.0.1:$P/__admin/health" \
    --warmup "http://127.0.0.1:$P/file" --warmup-requests 300 \
    -- java -jar "$jar" --port "$P" --root-dir "$d/root" >&2 || { fail "checkpoint --force"; return 1; }
  restore "$d/ckpt" || return 1
  pid=$RPID
  [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P/hello")" = 404 ] || fail "--force did not replace the checkpoint" || return 1
  stop "$pid" || return 1
  bench --ready "http://127.0.0.1:$P/__admin/health" --warmup "http://127.0.0.1:$P/file" \
    --warmup-requests 1000 --latency-url "http://127.0.0.1:$P/file" -- java -jar "$jar" --port "$P" --root-dir "$d/root"
}

# ---------------------------------------------------------------------------------------------
# H2 database server: a table created over JDBC (H2's own Shell, TCP) before the checkpoint; the
# database stays open (DB_CLOSE_DELAY=-1), so the JVM holds a POSIX lock on the database file at
# dump time. After each restore: the row is there, the lock is held again, a write works.
h2_sql() { # PORT SQL
  java -cp "$CACHE/h2-$H2_V.jar" org.h2.tools.Shell -url "jdbc:h2:tcp://127.0.0.1:$1/test;DB_CLOSE_DELAY=-1" \
    -user sa -password sa -sql "$2"
}
app_h2() {
  fetch com.h2database:h2:$H2_V h2-$H2_V.jar || return 1
  local jar=$CACHE/h2-$H2_V.jar d=$WORK/h2 T W
  T=$(port); W=$(port)
  mkdir -p "$d/db"
  (wait_tcp "$T" 60 && h2_sql "$T" "CREATE TABLE t(id INT PRIMARY KEY, v VARCHAR); INSERT INTO t VALUES(1, 'before-checkpoint')" >"$d/create.out" 2>&1) &
  local helper=$!
  PIDS+=("$helper")
  # Ready once the Shell's session has connected and gone (-trace prints both), warm-up on the
  # web console.
  "$CRACIN" checkpoint --out "$d/ckpt" --ready 'log:(?s)Connected.*Disconnect' \
    --warmup "http://127.0.0.1:$W/" --warmup-requests 1000 --snapshot "$d/db" \
    -- java -cp "$jar" org.h2.tools.Server -tcp -tcpPort "$T" -web -webPort "$W" -ifNotExists -baseDir "$d/db" -trace >&2 \
    || { cat "$d/create.out" >&2; fail "checkpoint"; return 1; }
  wait $helper || { cat "$d/create.out" >&2; fail "CREATE TABLE"; return 1; }
  # A checkpoint holds memory, not files: the database file must be as it was at the dump for
  # the restored H2 to match it (CRIU refuses a file whose size changed: "bad size").
  # --snapshot made the database part of the checkpoint: cracin puts it back before each
  # restore (docs/files.md).
  # The recorded log: probe cannot match again after a restore (the output is new and empty),
  # so restores name a TCP probe.
  local i pid rows
  for i in 1 2 3; do
    restore "$d/ckpt" --ready "tcp://127.0.0.1:$T" || return 1
    pid=$RPID
    grep -q "POSIX .* $pid " /proc/locks || fail "restored H2 holds no POSIX lock" || return 1
    rows=$(h2_sql "$T" "SELECT v FROM t ORDER BY id") || fail "SELECT over JDBC" || return 1
    grep -q before-checkpoint <<<"$rows" || fail "row from before the checkpoint missing: $rows" || return 1
    grep -q after-restore <<<"$rows" && { fail "row of an earlier restore visible: $rows"; return 1; }
    # Enough data that the database file surely grows.
    h2_sql "$T" "INSERT INTO t SELECT X + $((i * 100000)), 'after-restore-$i ' || SPACE(200) FROM SYSTEM_RANGE(1, 5000)" >/dev/null \
      || fail "INSERT after restore" || return 1
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$W/")" = 200 ] || fail "web console" || return 1
    [ $i -eq 1 ] && { second_restore_refused "$d/ckpt" --ready "tcp://127.0.0.1:$T" || return 1; }
    stop "$pid" || return 1
  done
  foreground_sigterm "$d/ckpt" "$T" --ready "tcp://127.0.0.1:$T" || return 1
  bench --ready "http://127.0.0.1:$W/" --warmup "http://127.0.0.1:$W/" --warmup-requests 1000 \
    -- java -cp "$jar" org.h2.tools.Server -tcp -tcpPort "$T" -web -webPort "$W" -ifNotExists -baseDir "$d/db"
}

# ---------------------------------------------------------------------------------------------
# Tomcat through its own start script (`catalina.sh run` ends in exec java), a private
# CATALINA_BASE with ROOT, examples and manager; warm-up creates 1000 HTTP sessions (examples'
# SessionExample), the manager must list them after every restore.
app_tomcat() {
  fetch org.apache.tomcat:tomcat:$TOMCAT_V:tar.gz tomcat-$TOMCAT_V.tar.gz || return 1
  local home=$CACHE/apache-tomcat-$TOMCAT_V
  [ -x "$home/bin/catalina.sh" ] || tar -C "$CACHE" -xzf "$CACHE/tomcat-$TOMCAT_V.tar.gz" || return 1
  local d=$WORK/tomcat P
  P=$(port)
  local base=$d/base
  mkdir -p "$base"/{logs,temp,webapps,work}
  cp -r "$home/conf" "$base/"
  cp -r "$home"/webapps/{ROOT,examples,manager} "$base/webapps/"
  sed -i -e 's/port="8005"/port="-1"/' -e "s/port=\"8080\"/port=\"$P\"/" "$base/conf/server.xml"
  sed -i 's#</tomcat-users>#<user username="cracin" password="cracin-test" roles="manager-script"/>\n</tomcat-users>#' \
    "$base/conf/tomcat-users.xml"
  CATALINA_HOME=$home CATALINA_BASE=$base "$CRACIN" checkpoint --out "$d/ckpt" --ready "http://127.0.0.1:$P/" \
    --ready-timeout 120 \
    --warmup "http://127.0.0.1:$P/examples/servlets/servlet/SessionExample" \
    --warmup "http://127.0.0.1:$P/examples/jsp/jsp2/el/basic-arithmetic.jsp" --warmup-requests 1000 \
    -- "$home/bin/catalina.sh" run >&2 || { fail "checkpoint"; return 1; }
  local i pid s n
  for i in 1 2 3; do
    restore "$d/ckpt" || return 1
    pid=$RPID
    s=$(curl -s -u cracin:cracin-test "http://127.0.0.1:$P/manager/text/sessions?path=/examples")
    # SessionExample and the JSP both create a session per request: 1000 from the warm-up.
    n=$(sed -n 's/.*\[\([0-9]*\)\] sessions.*/\1/p' <<<"$s" | head -1)
    [ "${n:-0}" -ge 1000 ] || fail "expected >= 1000 sessions from the warm-up: $s" || return 1
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P/examples/jsp/jsp2/el/basic-arithmetic.jsp")" = 200 ] \
      || fail "JSP" || return 1
    [ $i -eq 1 ] && { second_restore_refused "$d/ckpt" || return 1; }
    stop "$pid" || return 1
  done
  foreground_sigterm "$d/ckpt" "$P" || return 1
  CATALINA_HOME=$home CATALINA_BASE=$base bench --ready "http://127.0.0.1:$P/" --ready-timeout 120 \
    --warmup "http://127.0.0.1:$P/examples/jsp/jsp2/el/basic-arithmetic.jsp" --warmup-requests 1000 \
    --latency-url "http://127.0.0.1:$P/examples/jsp/jsp2/el/basic-arithmetic.jsp" -- "$home/bin/catalina.sh" run
}

# ---------------------------------------------------------------------------------------------
# Jetty 12 standalone: jetty-home from Maven Central, a private JETTY_BASE made with
# `start.jar --add-modules=http,ee10-deploy`, a static page in webapps/ROOT.
app_jetty() {
  fetch org.eclipse.jetty:jetty-home:$JETTY_V:tar.gz jetty-home-$JETTY_V.tar.gz || return 1
  local home=$CACHE/jetty-home-$JETTY_V
  [ -f "$home/start.jar" ] || tar -C "$CACHE" -xzf "$CACHE/jetty-home-$JETTY_V.tar.gz" || return 1
  local d=$WORK/jetty P
  P=$(port)
  mkdir -p "$d/base/webapps/ROOT"
  (cd "$d/base" && java -jar "$home/start.jar" --add-modules=http,ee10-deploy >"$d/add-modules.log" 2>&1) \
    || { cat "$d/add-modules.log" >&2; fail "start.jar --add-modules"; return 1; }
  echo "<html><body>hello from jetty $P</body></html>" >"$d/base/webapps/ROOT/index.html"
  (cd "$d/base" && "$CRACIN" checkpoint --out "$d/ckpt" --ready "http://127.0.0.1:$P/" \
    --warmup "http://127.0.0.1:$P/index.html" --warmup-requests 1000 \
    -- java -jar "$home/start.jar" "jetty.http.port=$P" >&2) || { fail "checkpoint"; return 1; }
  # The page is changed on disk after the checkpoint: Jetty serves files from disk, so the
  # restored server must show the new content (a restore is not a stale copy of the files).
  echo "<html><body>changed after checkpoint $P</body></html>" >"$d/base/webapps/ROOT/index.html"
  local i pid
  for i in 1 2 3; do
    restore "$d/ckpt" || return 1
    pid=$RPID
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$P/index.html")" = 200 ] || fail "page not served" || return 1
    # Jetty's static content cache revalidates at most once a second of *its* clock, and the
    # restored monotonic clock continues from the dump: the old page may be served for up to
    # ~1 s after the restore. The new one must come within 3 s.
    local t0=$SECONDS
    until grep -q "changed after checkpoint $P" <<<"$(curl -s "http://127.0.0.1:$P/index.html")"; do
      [ $((SECONDS - t0)) -lt 3 ] || { fail "page changed on disk never served"; return 1; }
      sleep 0.1
    done
    [ $i -eq 1 ] && { second_restore_refused "$d/ckpt" || return 1; }
    stop "$pid" || return 1
  done
  foreground_sigterm "$d/ckpt" "$P" || return 1
  (cd "$d/base" && bench --ready "http://127.0.0.1:$P/" --warmup "http://127.0.0.1:$P/index.html" \
    --warmup-requests 1000 -- java -jar "$home/start.jar" "jetty.http.port=$P")
}

"$CRACIN" doctor >&2 || { echo "FAIL: cracin doctor says this machine cannot checkpoint" >&2; exit 1; }
failed=0
for app in "${APPS[@]}"; do
  log "$app"
  start=$(date +%s)
  if "app_$app"; then
    echo "PASS $app ($(($(date +%s) - start)) s)"
  else
    echo "FAIL $app ($(($(date +%s) - start)) s)"
    failed=1
  fi
done
exit $failed
