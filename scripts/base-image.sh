#!/usr/bin/env bash
# Provisions a cracin base image without any registry: runs `cracin base` (a Debian minbase rootfs
# made with debootstrap, a headless OpenJDK JRE, CRIU 4.2.1 and setpriv, imported into podman or
# docker; see `cracin base --help` and docs/containers.md), building cracin first if needed.
#
#   scripts/base-image.sh --jdk 17|21|25 [--engine podman|docker] [--tag TAG] [--criu PATH] [--rebuild]
#
#   --jdk 17   Debian bookworm + openjdk-17-jre-headless
#   --jdk 21   Debian trixie   + openjdk-21-jre-headless
#   --jdk 25   Debian trixie   + openjdk-25-jre-headless
#   --tag      default localhost/cracin-base:jdkN
#   --criu     the CRIU binary to put in /usr/local/sbin/criu (default /opt/cracin/criu-4.2.1/criu,
#              built on bookworm by scripts/setup.sh)
#   --rebuild  debootstrap again, and import even if the image is there
#
# Safe to run again: an image that already holds the same CRIU is left alone (`cracin base
# --if-missing`), and the debootstrapped rootfs is cached in /var/cache/cracin. The engines are
# the ones scripts/setup-containers.sh installs: podman with /opt/cracin/containers.conf (unless
# CONTAINERS_CONF is set), docker through cracin's private daemon (scripts/dockerd.sh; unless
# CRACIN_DOCKER_HOST is set).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:/usr/local/sbin:/usr/sbin:/sbin:$PATH"

JDK="" ENGINE=podman ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --jdk) JDK=$2; shift 2 ;;
    --engine) ENGINE=$2; shift 2 ;;
    --tag|--criu) ARGS+=("$1" "$2"); shift 2 ;;
    --rebuild) ARGS+=(--rebuild); shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "base-image.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
[ -n "$JDK" ] || { echo "base-image.sh: --jdk 17, 21 or 25 is required" >&2; exit 2; }

case "$ENGINE" in
  podman) export CONTAINERS_CONF=${CONTAINERS_CONF:-/opt/cracin/containers.conf} ;;
  docker) export CRACIN_DOCKER_HOST=${CRACIN_DOCKER_HOST:-unix:///run/cracin/docker.sock} ;;
  *) echo "base-image.sh: --engine must be podman or docker" >&2; exit 2 ;;
esac

if [ -z "${CRACIN:-}" ]; then
  cargo build --quiet -p cracin
  CRACIN=$PWD/target/debug/cracin
fi
exec "$CRACIN" base --if-missing --jdk "$JDK" --engine "$ENGINE" ${ARGS[@]+"${ARGS[@]}"}
