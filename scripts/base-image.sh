#!/usr/bin/env bash
# Builds a cracin base image without any registry: a Debian minbase rootfs (debootstrap) with a
# headless OpenJDK JRE, CRIU 4.2.1 and setpriv, imported into podman or docker.
#
#   scripts/base-image.sh --jdk 17|21|25 [--engine podman|docker] [--tag TAG] [--criu PATH] [--rebuild]
#
#   --jdk 17   Debian bookworm + openjdk-17-jre-headless
#   --jdk 21   Debian trixie   + openjdk-21-jre-headless
#   --jdk 25   Debian trixie   + openjdk-25-jre-headless
#   --tag      default localhost/cracin-base:jdkN
#   --criu     the CRIU binary to put in /usr/local/sbin/criu (default /opt/cracin/criu-4.2.1/criu,
#              built on bookworm by scripts/setup.sh; its shared libraries come from the suite's
#              own Debian packages, whose sonames match in bookworm and trixie)
#   --rebuild  ignore the cached rootfs tarball
#
# The debootstrapped rootfs is cached as /var/cache/cracin/rootfs-SUITE-jdkN.tar, so a second run
# only appends CRIU and imports (seconds). Distribution CRIU packages are not used: bookworm's 3.17
# and trixie's 4.1 both fail on Linux >= 6.16 (docs/containers.md).
set -euo pipefail

JDK="" ENGINE=podman TAG="" CRIU=/opt/cracin/criu-4.2.1/criu REBUILD=0
while [ $# -gt 0 ]; do
  case "$1" in
    --jdk) JDK=$2; shift 2 ;;
    --engine) ENGINE=$2; shift 2 ;;
    --tag) TAG=$2; shift 2 ;;
    --criu) CRIU=$2; shift 2 ;;
    --rebuild) REBUILD=1; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "base-image.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

log() { printf '\033[1m[base-image]\033[0m %s\n' "$*"; }
die() { echo "base-image.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (debootstrap needs it)"
case "$JDK" in
  17) SUITE=bookworm; GNUTLS=libgnutls30 ;;
  21|25) SUITE=trixie; GNUTLS=libgnutls30t64 ;;
  *) die "--jdk must be 17, 21 or 25" ;;
esac
TAG=${TAG:-localhost/cracin-base:jdk$JDK}
[ -x "$CRIU" ] || die "$CRIU missing: run scripts/setup.sh first, or pass --criu PATH"
"$CRIU" --version | grep -qE 'Version: (4\.([2-9]|[1-9][0-9])|[5-9])' || die "$CRIU is not CRIU >= 4.2"

case "$ENGINE" in
  podman)
    export CONTAINERS_CONF=${CONTAINERS_CONF:-/opt/cracin/containers.conf}
    ENGINE_BIN=podman ;;
  docker)
    export DOCKER_HOST=${DOCKER_HOST:-unix:///run/cracin/docker.sock} DOCKER_CONFIG=${DOCKER_CONFIG:-/opt/cracin/docker-config}
    ENGINE_BIN=/opt/cracin/docker/usr/bin/docker ;;
  *) die "--engine must be podman or docker" ;;
esac
command -v "$ENGINE_BIN" >/dev/null || die "$ENGINE_BIN missing: run scripts/setup-containers.sh"
if [ "$ENGINE" = docker ] && ! timeout 5 "$ENGINE_BIN" version >/dev/null 2>&1; then
  die "docker does not answer on $DOCKER_HOST: start it with scripts/dockerd.sh start"
fi
if [ "$REBUILD" = 0 ] && "$ENGINE_BIN" image inspect "$TAG" >/dev/null 2>&1 &&
   "$ENGINE_BIN" run --rm --network=none "$TAG" /usr/local/sbin/criu --version 2>/dev/null | grep -q "$("$CRIU" --version | head -1)"; then
  log "$TAG on $ENGINE: already there (--rebuild to make it again)"
  exit 0
fi

CACHE=/var/cache/cracin
ROOTFS_TAR=$CACHE/rootfs-$SUITE-jdk$JDK.tar
mkdir -p "$CACHE"
start=$(date +%s.%N)
work=$(mktemp -d /var/tmp/cracin-base.XXXXXX)
trap 'rm -rf "$work"' EXIT

# CRIU's runtime libraries, by package (sonames from `ldd criu`); util-linux brings setpriv.
INCLUDE="openjdk-$JDK-jre-headless,util-linux,libbsd0,$GNUTLS,libnftables1,libprotobuf-c1,libnl-3-200,libnet1,libuuid1"

if [ "$REBUILD" = 1 ] || [ ! -s "$ROOTFS_TAR" ]; then
  log "debootstrap --variant=minbase $SUITE with $INCLUDE"
  t0=$(date +%s.%N)
  debootstrap --variant=minbase --include="$INCLUDE" "$SUITE" "$work/rootfs" http://deb.debian.org/debian \
    >"$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
  log "debootstrap took $(printf '%.0f' "$(echo "$(date +%s.%N) - $t0" | bc)") s"
  # Smaller and reproducible-ish: no package lists, no cached .debs, no man pages.
  chroot "$work/rootfs" apt-get clean
  rm -rf "$work/rootfs"/var/lib/apt/lists/* "$work/rootfs"/var/cache/apt/*.bin \
         "$work/rootfs"/usr/share/man/* "$work/rootfs"/usr/share/info/* \
         "$work/rootfs"/var/log/*.log "$work/rootfs"/var/cache/debconf/*-old \
         "$work/rootfs"/tmp/* "$work/rootfs"/dev/*
  find "$work/rootfs/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
  # JDK 17 takes user.home from the passwd entry; make sure root has one that exists.
  mkdir -p "$work/rootfs/root"
  tar --numeric-owner --xattrs -C "$work/rootfs" -cf "$ROOTFS_TAR.tmp" .
  mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
  rm -rf "$work/rootfs"
else
  log "using cached rootfs $ROOTFS_TAR"
fi

# CRIU goes in as an appended tar member, so the cached rootfs stays independent of the binary.
cp "$ROOTFS_TAR" "$work/rootfs.tar"
mkdir -p "$work/overlay/usr/local/sbin"
install -m 0755 "$CRIU" "$work/overlay/usr/local/sbin/criu"
tar --numeric-owner --owner=0 --group=0 -C "$work/overlay" -rf "$work/rootfs.tar" ./usr/local/sbin/criu

JAVA_HOME=/usr/lib/jvm/java-$JDK-openjdk-amd64
log "importing into $ENGINE as $TAG"
"$ENGINE_BIN" import \
  --change 'CMD ["/bin/bash"]' \
  --change "ENV JAVA_HOME=$JAVA_HOME" \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "LABEL io.cracin.base=jdk$JDK io.cracin.suite=$SUITE io.cracin.criu=4.2.1" \
  "$work/rootfs.tar" "$TAG" >/dev/null

# Check what the image really holds (no capabilities needed for these).
"$ENGINE_BIN" run --rm --network=none "$TAG" sh -c 'java -version 2>&1 | head -1; criu --version | head -1; setpriv --version' \
  | sed 's/^/[base-image]   /'
size=$("$ENGINE_BIN" image inspect --format '{{.Size}}' "$TAG")
log "$TAG: $((size / 1000000)) MB, $(printf '%.1f' "$(echo "$(date +%s.%N) - $start" | bc)") s in total"
