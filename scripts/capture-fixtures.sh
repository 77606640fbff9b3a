#!/usr/bin/env bash
# Captures the real logs under tests/fixtures/logs/ that the diagnosis rules are tested against,
# by provoking each failure for real on this machine (root, Linux >= 6.16, CRIU 4.2.1 in
# /usr/local/sbin, the old CRIUs unpacked privately under /opt/cracin, see
# tests/fixtures/logs/README.md). Not run in CI: it needs root and changes nothing outside a
# private temp dir except the fixture files it writes.
#
#   scripts/capture-fixtures.sh            # every scenario
#   scripts/capture-fixtures.sh NAME...    # only these (names: see `scenarios` at the bottom)
set -uo pipefail

REPO=${REPO:-$(cd "$(dirname "$0")/.." && pwd)}
FIX=${FIX:-$REPO/tests/fixtures/logs}   # where fixtures go (FIX=DIR to capture elsewhere)
CRIU=${CRIU:-/usr/local/sbin/criu}
CRIU317=${CRIU317:-/opt/cracin/criu-3.17/criu}
CRIU41=${CRIU41:-/opt/cracin/criu-4.1.1/criu}
JAVA=${JAVA:-java}
W=$(mktemp -d /tmp/cracin-capture.XXXXXX)
PIDS=()
NOT_CAPTURED=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    for m in $(awk -v w="$W" '$2 ~ "^"w {print $2}' /proc/mounts | sort -r); do umount -l "$m"; done
    rm -rf "$W"
}
trap cleanup EXIT

say() { echo "== $*" >&2; }

# Tiny, compiled once.
mkdir -p "$W/tiny"
javac -d "$W/tiny" "$REPO/tests/fixtures/apps/tiny-http/Tiny.java" || exit 1

free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 20000))
        ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
    done
}

wait_http() { # PORT: wait up to 20 s for GET / to answer
    for _ in $(seq 200); do curl -fs "http://127.0.0.1:$1/" >/dev/null && return 0; sleep 0.1; done
    say "port $1 never answered"; return 1
}

# launch MODE DIR PORT [Tiny args...]: starts Tiny the way cracin does (MODE=ns: PID 1 of a new
# PID namespace and a session leader, stdio on private files, every inherited fd above 2 closed),
# or deliberately wrong (MODE=nons: no PID namespace; MODE=nosetsid: not a session leader;
# MODE=strayfd: fd 9 left open on a detached mount). Prints the host PID of java.
launch() {
    local mode=$1 dir=$2 port=$3; shift 3
    mkdir -p "$dir"
    local inner='for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done; exec "$@" </dev/null >"$OUT" 2>"$ERR"'
    local jargs=(-XX:-UsePerfData -XX:+UseSerialGC -Xmx64m -Xms16m -cp "$W/tiny" Tiny "$port" "$@")
    export OUT=$dir/java.out ERR=$dir/java.err
    case $mode in
    ns) unshare --pid --fork setsid /bin/bash -c "$inner" sh ${WRAP:-} "$JAVA" "${jargs[@]}" >/dev/null 2>&1 &;;
    nons) setsid /bin/bash -c "$inner" sh ${WRAP:-} "$JAVA" "${jargs[@]}" >/dev/null 2>&1 &;;
    nosetsid) unshare --pid --fork /bin/bash -c "$inner" sh ${WRAP:-} "$JAVA" "${jargs[@]}" >/dev/null 2>&1 &;;
    strayfd)
        # fd 9 stays open on a file of a tmpfs that is then detached (umount -l), the way an fd
        # inherited from another mount namespace looks to CRIU.
        mkdir -p "$dir/stray" && mount -t tmpfs cracin-stray "$dir/stray" && echo x > "$dir/stray/f"
        export STRAY=$dir/stray
        unshare --pid --fork setsid /bin/bash -c 'exec 9<"$STRAY/f"; umount -l "$STRAY"; exec "$@" </dev/null >"$OUT" 2>"$ERR"' sh ${WRAP:-} "$JAVA" "${jargs[@]}" >/dev/null 2>&1 &;;
    esac
    local outer=$!
    PIDS+=("$outer")
    wait_http "$port" || return 1
    local jp
    case $mode in
    nons) jp=$(pgrep -f "Tiny $port" | head -1);;
    *) jp=$(pgrep -P "$outer" | head -1); [ -n "$jp" ] && [ "$(cat /proc/$jp/comm)" != java ] && jp=$(pgrep -P "$jp" | head -1);;
    esac
    PIDS+=("$jp")
    echo "$jp"
}

# keep SRC RULE NAME REGEX [BEFORE] [AFTER]: copies the real log SRC to the fixture
# RULE/NAME, trimmed to the lines BEFORE..AFTER around the first line matching REGEX (the lines
# are kept verbatim and in order; only the head and tail outside that window are cut).
keep() {
    local src=$1 rule=$2 name=$3 re=$4 before=${5:-120} after=${6:-60}
    local n
    n=$(grep -n -E -m1 -- "$re" "$src" | cut -d: -f1)
    if [ -z "$n" ]; then
        say "NOT CAPTURED $rule/$name: /$re/ not in $src"; tail -5 "$src" >&2
        NOT_CAPTURED+=("$rule/$name"); return 1
    fi
    mkdir -p "$FIX/$rule"
    local from=$((n > before ? n - before : 1))
    sed -n "${from},$((n + after))p" "$src" > "$FIX/$rule/$name"
    say "captured $rule/$name (lines $from.. of $(basename "$src"), match at $n)"
}

# --- scenarios --------------------------------------------------------------------------------

# CRIU 3.17 (bookworm) on Linux >= 6.13: kerndat fails on the split vvar/vDSO area.
s_vdso() {
    "$CRIU317" check -v4 -o "$W/check-3.17.log" 2>/dev/null
    keep "$W/check-3.17.log" criu-vdso-too-old criu-3.17-check.log 'Unexpected rt vDSO area bounds' 40 20
}

# CRIU 4.1.1 (trixie) on Linux >= 6.16: dumping any TCP socket fails on SO_PASSCRED.
s_passcred() {
    local d=$W/passcred port; port=$(free_port)
    local jp; jp=$(launch ns "$d" "$port") || return 1
    mkdir -p "$d/img"
    "$CRIU41" dump -t "$jp" -D "$d/img" --tcp-close --file-locks -v4 -o dump.log 2>/dev/null
    keep "$d/img/dump.log" criu-so-passcred-too-old criu-4.1.1-dump.log "Can't get 1:16 opt"
    kill -9 "$jp" 2>/dev/null
}

# The kernel lacks soft-dirty tracking: pre-dump aborts.
s_softdirty() {
    local d=$W/softdirty port; port=$(free_port)
    local jp; jp=$(launch ns "$d" "$port") || return 1
    mkdir -p "$d/img"
    # CRIU aborts, and with -o the BUG line never reaches the log file: log to stderr instead.
    "$CRIU" pre-dump -t "$jp" -D "$d/img" --tcp-close -v4 >"$d/pre-dump.log" 2>&1
    keep "$d/pre-dump.log" soft-dirty-missing pre-dump.log 'BUG at criu/mem.c'
    "$CRIU" dump --track-mem -t "$jp" -D "$d/img" --tcp-close -v4 >"$d/track-mem.log" 2>&1
    keep "$d/track-mem.log" soft-dirty-missing dump-track-mem.log 'Tracking memory is not available'
    kill -9 "$jp" 2>/dev/null
}

# java not a session leader: its session is outside the PID namespace.
s_nosetsid() {
    local d=$W/nosetsid port; port=$(free_port)
    local jp; jp=$(launch nosetsid "$d" "$port") || return 1
    mkdir -p "$d/img"
    "$CRIU" dump -t "$jp" -D "$d/img" --tcp-close --file-locks -v4 -o dump.log 2>/dev/null
    keep "$d/img/dump.log" session-outside-pidns dump.log 'session leader .* is outside of its pid namespace|outside of its pid namespace'
    kill -9 "$jp" 2>/dev/null
}

# An inherited fd (fd 9 on a detached tmpfs) that CRIU can not resolve.
s_strayfd() {
    local d=$W/strayfd port; port=$(free_port)
    local jp; jp=$(launch strayfd "$d" "$port") || return 1
    mkdir -p "$d/img"
    "$CRIU" dump -t "$jp" -D "$d/img" --tcp-close --file-locks -v4 -o dump.log 2>/dev/null
    keep "$d/img/dump.log" inherited-fd dump.log "Can't lookup mount=[0-9]+ for fd=[0-9]+"
    kill -9 "$jp" 2>/dev/null
}

# A POSIX lock held by the JVM, dumped without --file-locks.
s_filelock() {
    local d=$W/filelock port; port=$(free_port)
    local jp; jp=$(launch ns "$d" "$port" "$W/filelock.lck") || return 1
    mkdir -p "$d/img"
    "$CRIU" dump -t "$jp" -D "$d/img" --tcp-close -v4 -o dump.log 2>/dev/null
    keep "$d/img/dump.log" file-locks dump.log 'file locks are hold'
    kill -9 "$jp" 2>/dev/null
}

# The images directory is on a full file system (a 16 MiB tmpfs).
s_nospace() {
    local d=$W/nospace port; port=$(free_port)
    local jp; jp=$(launch ns "$d" "$port") || return 1
    mkdir -p "$d/img" && mount -t tmpfs -o size=16m cracin-capture "$d/img"
    "$CRIU" dump -t "$jp" -D "$d/img" --tcp-close --file-locks -v4 -o dump.log 2>/dev/null
    keep "$d/img/dump.log" no-space dump.log 'No space left on device'
    umount "$d/img"
    kill -9 "$jp" 2>/dev/null
}

# dump DIR JAVAPID [criu args...]: the recipe's dump (images in DIR/img, log DIR/img/dump.log).
dump() {
    local d=$1 jp=$2; shift 2
    mkdir -p "$d/img"
    "$CRIU" dump -t "$jp" -D "$d/img" --tcp-close --file-locks -v4 -o dump.log "$@" 2>/dev/null
}
# restore DIR LOGNAME [criu args...]: restores DIR/img detached; the restored PID goes to PIDS.
restore() {
    local d=$1 log=$2; shift 2
    rm -f "$d/pidfile"
    "$CRIU" restore -D "$d/img" -d --tcp-close --file-locks -v4 -o "$log" --pidfile "$d/pidfile" "$@" 2>/dev/null
    local rc=$?
    [ -s "$d/pidfile" ] && PIDS+=("$(cat "$d/pidfile")")
    return $rc
}

# No PID namespace: restore wants java's old PID back (clone3 set_tid), but the dumped java is
# still a zombie of this shell (not reaped yet), so the PID is taken. Later restores would find
# the first restored JVM there instead.
s_pidtaken() {
    local d=$W/pidtaken port; port=$(free_port)
    local jp; jp=$(launch nons "$d" "$port") || return 1
    dump "$d" "$jp" || { say "dump failed"; return 1; }
    restore "$d" restore.log || { keep "$d/img/restore.log" pid-taken restore.log "Can't fork for [0-9]+: File exists"; return; }
    restore "$d" restore-2.log
    keep "$d/img/restore-2.log" pid-taken restore.log "Can't fork for [0-9]+: File exists"
}

# The JVM's stdout file grows after the dump: restore finds it with another size.
s_badsize() {
    local d=$W/badsize port; port=$(free_port)
    local jp; jp=$(launch ns "$d" "$port") || return 1
    dump "$d" "$jp" || { say "dump failed"; return 1; }
    echo "a line written after the dump" >> "$d/java.out"
    restore "$d" restore.log
    keep "$d/img/restore.log" file-size-changed restore.log 'has bad size'
}

# --leave-running: the original JVM keeps its port, so the restored one can not bind it.
s_portinuse() {
    local d=$W/portinuse port; port=$(free_port)
    local jp; jp=$(launch ns "$d" "$port") || return 1
    dump "$d" "$jp" --leave-running || { say "dump failed"; return 1; }
    restore "$d" restore.log
    keep "$d/img/restore.log" port-in-use restore.log 'Address already in use'
    kill -9 "$jp"
}

# restore --auto-dedup punches the restored pages out of the images: a second restore fails.
s_autodedup() {
    local d=$W/autodedup port; port=$(free_port)
    local jp; jp=$(launch ns "$d" "$port") || return 1
    dump "$d" "$jp" || { say "dump failed"; return 1; }
    restore "$d" restore-1.log --auto-dedup || { say "first restore failed"; return 1; }
    kill -9 "$(cat "$d/pidfile")"; sleep 0.5
    restore "$d" restore-2.log
    keep "$d/img/restore-2.log" images-deduplicated restore-after-auto-dedup.log 'Invalid ELF magic' 120 60
}

# A client keeps an HTTP connection open: dump without a TCP flag refuses the established
# socket; dumped with --tcp-established and restored without it, restore refuses it.
s_tcp() {
    local d=$W/tcp port; port=$(free_port)
    local jp; jp=$(launch ns "$d" "$port") || return 1
    exec 7<>"/dev/tcp/127.0.0.1/$port"
    printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >&7; sleep 0.3
    mkdir -p "$d/img"
    "$CRIU" dump -t "$jp" -D "$d/img" --leave-running --file-locks -v4 -o dump.log 2>/dev/null
    keep "$d/img/dump.log" tcp-established-needed dump.log 'Connected TCP socket'
    "$CRIU" dump -t "$jp" -D "$d/img" --tcp-established --file-locks -v4 -o dump-2.log 2>/dev/null || { say "dump --tcp-established failed"; }
    "$CRIU" restore -D "$d/img" -d --file-locks -v4 -o restore.log 2>/dev/null
    keep "$d/img/restore.log" tcp-established-needed restore.log 'Connected TCP socket in image'
    exec 7>&-
    # The failed restore leaves CRIU's network-lock rules behind: record them, then remove
    # those for this port (and only those).
    iptables-save > "$d/iptables-after.txt" 2>&1
    keep "$d/iptables-after.txt" network-lock-leftover iptables-save.txt "$port" 40 20
    iptables-save | grep -E "^-A .*$port" | sed 's/^-A/-D/' | while read -r r; do eval "iptables $r"; done
    ip6tables-save | grep -E "^-A .*$port" | sed 's/^-A/-D/' | while read -r r; do eval "ip6tables $r"; done
}

# criu run by a user without privileges, and by root with capabilities withheld (the bounding
# set limits what root keeps across exec).
s_privs() {
    local d=$W/privs port; port=$(free_port)
    local jp; jp=$(launch ns "$d" "$port") || return 1
    mkdir -p "$d/img-nobody" "$d/img-nocr" "$d/img-noptrace"; chmod 777 "$d/img-nobody"
    # The capability check happens before the -o log is opened: it goes to stderr.
    setpriv --reuid=nobody --regid=nogroup --clear-groups "$CRIU" dump -t "$jp" -D "$d/img-nobody" --tcp-close -v4 >"$d/nobody.log" 2>&1
    keep "$d/nobody.log" missing-cap-checkpoint-restore dump-as-nobody.log 'CRIU needs to have the CAP_SYS_ADMIN' 40 40
    setpriv --bounding-set=-sys_admin,-checkpoint_restore "$CRIU" dump -t "$jp" -D "$d/img-nocr" --tcp-close --leave-running -v4 >"$d/nocr.log" 2>&1
    keep "$d/nocr.log" missing-cap-checkpoint-restore dump-without-cap.log 'CRIU needs to have the CAP_SYS_ADMIN' 40 40
    # java (root, all capabilities) holds capabilities this criu lacks: ptrace needs SYS_PTRACE.
    setpriv --bounding-set=-sys_ptrace "$CRIU" dump -t "$jp" -D "$d/img-noptrace" --tcp-close --leave-running -v4 -o dump.log 2>/dev/null
    keep "$d/img-noptrace/dump.log" missing-cap-sys-ptrace dump-without-sys-ptrace.log 'Unable to interrupt task' 60 20
    kill -9 "$jp"
}

# The restore host lacks a CPU feature the dump host had: dump with --cpu-cap=cpu, then mark a
# feature this CPU does not have (AVX-512F, word 2 bit 16... chosen from what is absent here) as
# present in cpuinfo.img (edited with pycriu from the CRIU build), and restore with --cpu-cap=cpu.
s_cpu() {
    local d=$W/cpu port; port=$(free_port)
    local jp; jp=$(launch ns "$d" "$port") || return 1
    dump "$d" "$jp" --cpu-cap=cpu || { say "dump failed"; return 1; }
    PYTHONPATH=/opt/cracin/criu-4.2.1/python /usr/bin/python3 - "$d/img/cpuinfo.img" <<'PY' || return 1
import sys, pycriu
p = sys.argv[1]
with open(p, 'rb') as f:
    img = pycriu.images.load(f)
e = img['entries'][0]['x86_entry'][0]
caps = e['capability']
# Set every bit of every capability word: whatever this CPU lacks is now "required".
e['capability'] = [0xffffffff for _ in caps]
with open(p, 'wb') as f:
    pycriu.images.dump(img, f)
PY
    restore "$d" restore.log --cpu-cap=cpu
    keep "$d/img/restore.log" cpu-features-missing restore.log 'capabilities do not match' 40 20
}

# The dumped JVM held every capability (root); the restoring criu runs with only
# CHECKPOINT_RESTORE (as in an unprivileged restore container) and restores in the host PID
# namespace (java without a PID namespace): the restorer can not give the capabilities back.
s_caps() {
    local d=$W/caps port; port=$(free_port)
    local jp; jp=$(launch nons "$d" "$port") || return 1
    dump "$d" "$jp" || { say "dump failed"; return 1; }
    for _ in $(seq 50); do [ -e "/proc/$jp" ] || break; sleep 0.1; done   # until reaped
    # Only CHECKPOINT_RESTORE: dropping the bounding set already fails (that needs SETPCAP).
    restricted_restore "$d" restore.log +checkpoint_restore "$jp"
    keep "$d/img/restore.log" restore-capabilities restore.log 'Unable to drop capability|Unable to restore capabilities' 120 40
    # CHECKPOINT_RESTORE and SETPCAP: the bounding set is dropped, the JVM's capabilities can
    # still not be given back.
    restricted_restore "$d" restore-setpcap.log +checkpoint_restore,+setpcap "$jp"
    keep "$d/img/restore-setpcap.log" restore-capabilities restore-with-setpcap.log 'Unable to restore capabilities' 120 40
}

# restricted_restore DIR LOG CAPS PID: criu restore --unprivileged with only CAPS in its bounding
# set, of images whose JVM had PID.
# The restore hangs after the error: give it 20 s, then kill criu and the tasks it forked.
restricted_restore() {
    local d=$1 log=$2 caps=$3 pid=$4
    rm -f "$d/pidfile"
    setpriv --bounding-set=-all,"$caps" --inh-caps=-all "$CRIU" restore -D "$d/img" -d --unprivileged \
        --tcp-close --file-locks -v4 -o "$log" --pidfile "$d/pidfile" >/dev/null 2>&1 &
    local cp=$!
    for _ in $(seq 200); do [ -e "/proc/$cp" ] || break; sleep 0.1; done
    if [ -e "/proc/$cp" ]; then
        local kids; kids=$(pgrep -P "$cp")
        kill -9 "$cp" $kids; wait "$cp" 2>/dev/null
    fi
    [ -s "$d/pidfile" ] && kill -9 "$(cat "$d/pidfile")" 2>/dev/null
    # The next restore needs the JVM's PID free again.
    for _ in $(seq 100); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
    return 0
}

# The application's own output when the JVM can not start: a wrong command (java not found),
# a wrong class path, a heap that can not be reserved, a class built for a newer Java.
s_app() {
    local d=$W/app; mkdir -p "$d"
    unshare --pid --fork setsid /bin/sh -c 'exec "$@" </dev/null >"$0.out" 2>"$0.err"' "$d/nojava" javaa -jar app.jar
    keep "$d/nojava.err" java-not-found app.stderr 'not found' 5 5
    unshare --pid --fork setsid "$d/nojava2" -jar app.jar 2>"$d/nojava2.err"
    keep "$d/nojava2.err" java-not-found unshare.stderr 'failed to execute' 5 5
    "$JAVA" -XX:+UseSerialGC -cp "$W/nowhere" Tiny 8080 >"$d/nomain.out" 2>"$d/nomain.err"
    keep "$d/nomain.err" app-did-not-start app.stderr 'Could not find or load main class' 5 5
    "$JAVA" -jar "$W/missing.jar" >"$d/nojar.out" 2>"$d/nojar.err"
    keep "$d/nojar.err" app-did-not-start app-jar-missing.stderr 'Unable to access jarfile' 5 5
    "$JAVA" -Xms64g -Xmx64g -XX:+AlwaysPreTouch -version >"$d/heap.out" 2>&1 ||
        "$JAVA" -Xmx100000g -version >"$d/heap.out" 2>&1
    keep "$d/heap.out" jvm-heap-reservation app.stderr 'reserve|insufficient memory|Invalid maximum heap' 5 10
    if [ -x /usr/lib/jvm/temurin-25-jdk-amd64/bin/javac ]; then
        mkdir -p "$d/v25"
        /usr/lib/jvm/temurin-25-jdk-amd64/bin/javac -d "$d/v25" "$REPO/tests/fixtures/apps/tiny-http/Tiny.java"
        "$JAVA" -cp "$d/v25" Tiny 8080 >"$d/v25.out" 2>"$d/v25.err"
        keep "$d/v25.err" class-version-too-new app.stderr 'UnsupportedClassVersionError' 5 10
    fi
}

# criu itself runs under a seccomp filter (as in a container with the default profile) and the
# JVM has one too: the kernel refuses PTRACE_O_SUSPEND_SECCOMP. seccomp-exec installs an
# allow-everything filter and execs its arguments (tests/fixtures/logs/seccomp-exec.c).
s_seccomp() {
    local d=$W/seccomp port; port=$(free_port)
    gcc -O -o "$W/seccomp-exec" "$REPO/tests/fixtures/logs/seccomp-exec.c" || return 1
    local jp; jp=$(WRAP=$W/seccomp-exec launch ns "$d" "$port") || return 1
    mkdir -p "$d/img"
    "$W/seccomp-exec" "$CRIU" dump -t "$jp" -D "$d/img" --tcp-close --file-locks -v4 -o dump.log 2>/dev/null
    keep "$d/img/dump.log" seccomp-blocks-dump dump.log 'suspending seccomp failed' 60 20
    kill -9 "$jp"
}

# A failure no rule knows (for the "unknown failure" test): restoring from an empty directory.
s_unknown() {
    local d=$W/unknown; mkdir -p "$d/img"
    "$CRIU" restore -D "$d/img" -d -v4 -o restore.log 2>/dev/null
    mkdir -p "$FIX/_unknown"
    cp "$d/img/restore.log" "$FIX/_unknown/restore-from-empty-dir.log"
    say "captured _unknown/restore-from-empty-dir.log ($(wc -l < "$d/img/restore.log") lines)"
}

# The JVM's stdio is a terminal (a pty from `script`), dumped with --shell-job. Restored without
# a terminal, CRIU has no tty to give back. Restored by a criu with only CHECKPOINT_RESTORE, it
# can not even recreate the JVM's PID namespace.
s_tty() {
    local d=$W/tty port; port=$(free_port); mkdir -p "$d/img"
    script -qfec "unshare --pid --fork setsid -c $JAVA -XX:-UsePerfData -XX:+UseSerialGC -Xmx64m -cp $W/tiny Tiny $port" /dev/null \
        </dev/null >"$d/script.out" 2>&1 &
    PIDS+=("$!")
    wait_http "$port" || return 1
    local jp p
    for p in $(pgrep -f "Tiny $port"); do [ "$(cat "/proc/$p/comm")" = java ] && jp=$p; done
    "$CRIU" dump -t "$jp" -D "$d/img" --tcp-close --shell-job -v4 -o dump.log 2>/dev/null || { say "dump failed"; return 1; }
    setsid "$CRIU" restore -D "$d/img" -d --tcp-close --shell-job -v4 -o restore.log </dev/null >/dev/null 2>&1
    keep "$d/img/restore.log" tty-params restore-without-terminal.log "Don't have tty to inherit session from" 80 20
    setpriv --bounding-set=-all,+checkpoint_restore --inh-caps=-all "$CRIU" restore -D "$d/img" -d --unprivileged \
        --tcp-close --shell-job -v4 -o restore-unpriv.log </dev/null >/dev/null 2>&1
    keep "$d/img/restore-unpriv.log" restore-namespace-privileges restore-unprivileged.log "Can't fork for [0-9]+: Operation not permitted" 80 20
    for p in $(pgrep -f "Tiny $port"); do kill -9 "$p"; done
}

# CRIU can not choose the PID: clone3 is blocked by a seccomp filter (ENOSYS, as Docker's default
# profile does) and /proc/sys is read-only (as in every container), so ns_last_pid can not be
# written. noclone3-exec installs that filter and execs its arguments
# (tests/fixtures/logs/noclone3-exec.c).
s_pidro() {
    local d=$W/pidro port; port=$(free_port)
    gcc -O -o "$W/noclone3-exec" "$REPO/tests/fixtures/logs/noclone3-exec.c" || return 1
    local jp; jp=$(launch nons "$d" "$port") || return 1
    dump "$d" "$jp" || { say "dump failed"; return 1; }
    for _ in $(seq 50); do [ -e "/proc/$jp" ] || break; sleep 0.1; done   # until reaped
    unshare -m /bin/sh -c 'mount -o bind,ro /proc/sys /proc/sys && exec "$@"' sh "$W/noclone3-exec" \
        "$CRIU" restore -D "$d/img" -d --tcp-close --file-locks -v4 -o restore.log --pidfile "$d/pidfile" 2>/dev/null
    [ -s "$d/pidfile" ] && kill -9 "$(cat "$d/pidfile")"
    keep "$d/img/restore.log" pid-not-settable restore.log 'ns_last_pid on procfs: Read-only file system' 80 20
}

# cracin's own error output when the application never becomes ready, exits first, or the
# command names no JVM (needs a built cracin: CRACIN=path, default target/debug/cracin).
s_cracin() {
    local c=${CRACIN:-$REPO/target/debug/cracin} d=$W/cracin port; port=$(free_port)
    [ -x "$c" ] || { say "no cracin binary at $c (cargo build)"; return 1; }
    mkdir -p "$d" && cd "$d" || return 1
    "$c" checkpoint --out ck1 --ready "http://127.0.0.1:$((port + 1))/" --ready-timeout 5 -- "$JAVA" -cp "$W/tiny" Tiny "$port" >/dev/null 2>ck1.err
    keep ck1.err app-not-ready cracin-checkpoint.stderr 'did not become ready within' 10 10
    "$c" checkpoint --out ck2 --ready "http://127.0.0.1:$port/" --ready-timeout 10 -- "$JAVA" -cp "$W/nowhere" Tiny "$port" >/dev/null 2>ck2.err
    keep ck2.err app-did-not-start cracin-checkpoint.stderr 'before it was ready' 10 10
    "$c" checkpoint --out ck3 --ready "http://127.0.0.1:$port/" -- javaa -cp x Tiny >/dev/null 2>ck3.err
    keep ck3.err java-not-found cracin-checkpoint.stderr 'no JVM found' 10 10
    cd - >/dev/null
}

# The JVM is not a session leader (dumped with --shell-job, as a JVM started from a shell or an
# entrypoint script is); the restoring criu's session id equals the id of one of the JVM's
# threads in the images (ns_last_pid steers the PID setsid gets), so CRIU can not migrate the
# session to it.
s_gidsid() {
    local d=$W/gidsid port; port=$(free_port); mkdir -p "$d/img"
    export OUT=$d/java.out ERR=$d/java.err
    /bin/bash -c 'exec "$@" </dev/null >"$OUT" 2>"$ERR"' sh "$JAVA" -XX:-UsePerfData -XX:+UseSerialGC -Xmx64m \
        -cp "$W/tiny" Tiny "$port" >/dev/null 2>&1 &
    local jp=$!
    PIDS+=("$jp")
    wait_http "$port" || return 1
    local t; t=$(ls "/proc/$jp/task" | sort -n | tail -1)
    "$CRIU" dump -t "$jp" -D "$d/img" --tcp-close --shell-job -v4 -o dump.log 2>/dev/null || { say "dump failed"; return 1; }
    wait "$jp" 2>/dev/null
    echo $((t - 1)) > /proc/sys/kernel/ns_last_pid
    setsid "$CRIU" restore -D "$d/img" -d --tcp-close --shell-job -v4 -o restore.log --pidfile "$d/pidfile" </dev/null >/dev/null 2>&1
    [ -s "$d/pidfile" ] && kill -9 "$(cat "$d/pidfile")"
    keep "$d/img/restore.log" gid-sid-intersects-pid restore.log 'intersects with pid' 70 20
}

# Podman (needs a local image with CRIU 4.2.1 and a JDK: IMAGE, default cracin's base image).
# Without cracin's CONTAINERS_CONF, every container fails to raise RLIMIT_NOFILE (root lacks
# CAP_SYS_RESOURCE here). With it, criu in a container with CHECKPOINT_RESTORE but without
# --unprivileged fails its kernel feature detection (it wants SYS_ADMIN).
s_podman() {
    local img=${IMAGE:-localhost/cracin-base:jdk17} d=$W/podman; mkdir -p "$d"
    command -v podman >/dev/null || { say "no podman"; return 1; }
    env -u CONTAINERS_CONF podman run --rm --network=none "$img" true >"$d/noconf.txt" 2>&1
    keep "$d/noconf.txt" engine-rlimit-nofile podman-run.stderr 'rlimit' 10 10
    CONTAINERS_CONF=${CONTAINERS_CONF:-/opt/cracin/containers.conf} podman run --rm --network=none \
        --cap-add=CHECKPOINT_RESTORE --security-opt seccomp=unconfined "$img" \
        sh -c 'sleep 100 & criu dump -t $! -D /tmp -v4 -o /dev/stderr' >"$d/nosysadmin.txt" 2>&1
    keep "$d/nosysadmin.txt" criu-container-needs-unprivileged criu-dump-in-container.log 'kerndat_has_nftables_concat failed' 40 10
}

# --- main -------------------------------------------------------------------------------------
scenarios=(vdso passcred privs seccomp softdirty nosetsid strayfd filelock tcp nospace cpu caps
    tty gidsid pidtaken pidro badsize portinuse autodedup app cracin podman unknown)
[ "$(id -u)" = 0 ] || { echo "capture-fixtures: must run as root" >&2; exit 1; }
[ $# -gt 0 ] && scenarios=("$@")
for s in "${scenarios[@]}"; do
    say "scenario $s"
    "s_$s" || say "scenario $s reported a failure"
done
# Success means: every fixture the scenarios aim at was captured.
if [ ${#NOT_CAPTURED[@]} -gt 0 ]; then say "not captured: ${NOT_CAPTURED[*]}"; exit 1; fi
say "all fixtures captured into $FIX"
