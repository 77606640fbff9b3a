#!/usr/bin/env bash
# Runs cracin's private Docker 26 daemon (unpacked by scripts/setup-containers.sh into
# /opt/cracin/docker) with its own data root, exec root, pidfile, socket and config file, so it
# never touches a system docker (/var/lib/docker, /var/run/docker.sock, /etc/docker).
#
#   scripts/dockerd.sh start     start it (no-op when it already answers)
#   scripts/dockerd.sh stop      stop it (TERM, then waits up to 20 s)
#   scripts/dockerd.sh status    exit 0 when it answers
#   scripts/dockerd.sh env       print the exports a client needs: eval "$(scripts/dockerd.sh env)"
#
# Clients: use /opt/cracin/docker/usr/bin/docker (26.1.5) with DOCKER_HOST and DOCKER_CONFIG as
# printed by `env`. The docker 28 CLI in /usr/local/bin also works against this daemon (it
# negotiates the API down to 1.45), but cracin always runs the 26 client it ships with.
set -euo pipefail

DOCKER_DIR=/opt/cracin/docker
DATA_ROOT=/opt/cracin/docker-data
RUN_DIR=/run/cracin
EXEC_ROOT=$RUN_DIR/docker
PIDFILE=$RUN_DIR/dockerd.pid
SOCK=$RUN_DIR/docker.sock
LOG=$RUN_DIR/dockerd.log
CONFIG=/opt/cracin/daemon.json
CLIENT_CONFIG=/opt/cracin/docker-config

export PATH="$DOCKER_DIR/usr/bin:$DOCKER_DIR/usr/sbin:$PATH"
export DOCKER_HOST="unix://$SOCK" DOCKER_CONFIG="$CLIENT_CONFIG"

answers() { timeout 5 "$DOCKER_DIR/usr/bin/docker" version --format '{{.Server.Version}}' >/dev/null 2>&1; }

case "${1:-}" in
  start)
    [ "$(id -u)" = 0 ] || { echo "dockerd.sh: run as root" >&2; exit 1; }
    [ -x "$DOCKER_DIR/usr/sbin/dockerd" ] || { echo "dockerd.sh: $DOCKER_DIR/usr/sbin/dockerd missing; run scripts/setup-containers.sh" >&2; exit 1; }
    if answers; then echo "dockerd.sh: already running ($SOCK)"; exit 0; fi
    mkdir -p "$RUN_DIR" "$DATA_ROOT"
    # A private config file, so /etc/docker/daemon.json (if any) is never read.
    [ -f "$CONFIG" ] || echo '{ "log-driver": "json-file" }' >"$CONFIG"
    rm -f "$PIDFILE"
    # dockerd starts its own containerd (state under $EXEC_ROOT/containerd, data under
    # $DATA_ROOT/containerd); runc is bookworm's /usr/sbin/runc, found on PATH.
    setsid nohup dockerd \
      --config-file "$CONFIG" \
      --data-root "$DATA_ROOT" \
      --exec-root "$EXEC_ROOT" \
      --pidfile "$PIDFILE" \
      --host "unix://$SOCK" \
      --userland-proxy-path "$DOCKER_DIR/usr/sbin/docker-proxy" \
      </dev/null >"$LOG" 2>&1 &
    for _ in $(seq 150); do
      if answers; then
        echo "dockerd.sh: dockerd $("$DOCKER_DIR/usr/bin/docker" version --format '{{.Server.Version}}') on $SOCK (pid $(cat "$PIDFILE"), log $LOG)"
        exit 0
      fi
      sleep 0.2
    done
    echo "dockerd.sh: dockerd did not answer within 30 s; last lines of $LOG:" >&2
    tail -20 "$LOG" >&2
    exit 1
    ;;
  stop)
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      pid=$(cat "$PIDFILE")
      kill -TERM "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      if kill -0 "$pid" 2>/dev/null; then echo "dockerd.sh: dockerd $pid still running after 20 s" >&2; exit 1; fi
      echo "dockerd.sh: stopped"
    else
      echo "dockerd.sh: not running"
    fi
    ;;
  status)
    if answers; then echo "running on $SOCK"; else echo "not running"; exit 1; fi
    ;;
  env)
    echo "export DOCKER_HOST=unix://$SOCK DOCKER_CONFIG=$CLIENT_CONFIG PATH=$DOCKER_DIR/usr/bin:\$PATH"
    ;;
  *)
    sed -n '2,13p' "$0"; exit 2 ;;
esac
