#!/usr/bin/env bash
# Installs the container engines `cracin build` uses, idempotently, without changing any system
# container configuration:
#   - podman, buildah, skopeo, umoci, runc, debootstrap from Debian bookworm;
#   - /opt/cracin/containers.conf, the two podman settings this machine needs (used through
#     CONTAINERS_CONF=/opt/cracin/containers.conf; nothing under /etc is written);
#   - Docker 26 (Debian trixie's docker.io, docker-cli, containerd, docker-buildx) unpacked into
#     /opt/cracin/docker, because bookworm's Docker 20.10 rejects --cap-add=CHECKPOINT_RESTORE.
#     The .debs are fetched with a private apt configuration under /opt/cracin/apt-trixie, so the
#     system's apt sources never see trixie. Start the daemon with scripts/dockerd.sh.
#
#   scripts/setup-containers.sh            install (safe to run again)
#   scripts/setup-containers.sh --check    only report what is there
set -euo pipefail

ROOT=/opt/cracin
CONF=$ROOT/containers.conf
DOCKER_DIR=$ROOT/docker
APT_DIR=$ROOT/apt-trixie
CHECK_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --check) CHECK_ONLY=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "setup-containers.sh: unknown argument '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

log() { printf '\033[1m[setup-containers]\033[0m %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
  echo "setup-containers.sh: run as root (it installs Debian packages and writes $ROOT)" >&2
  exit 1
fi

have_docker26() { [ -x "$DOCKER_DIR/usr/bin/docker" ] && [ -x "$DOCKER_DIR/usr/sbin/dockerd" ] && "$DOCKER_DIR/usr/sbin/dockerd" --version 2>/dev/null | grep -qE 'version (2[6-9]|[3-9][0-9])\.'; }

if [ "$CHECK_ONLY" = 1 ]; then
  for p in podman buildah skopeo umoci runc debootstrap; do
    printf '%-12s %s\n' "$p" "$(command -v "$p" >/dev/null && "$p" --version 2>/dev/null | head -1 || echo MISSING)"
  done
  printf '%-12s %s\n' containers.conf "$( [ -f "$CONF" ] && echo "$CONF" || echo MISSING)"
  printf '%-12s %s\n' dockerd "$(have_docker26 && "$DOCKER_DIR/usr/sbin/dockerd" --version || echo MISSING)"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# 1. Bookworm packages. uidmap/slirp4netns/fuse-overlayfs are podman's recommends for rootless use;
#    cracin runs podman as root, so only what root needs is installed. catatonit: the pause
#    binary `podman kube play` builds its infra image from (cracin kube tests).
PACKAGES=(podman buildah skopeo umoci runc debootstrap containernetworking-plugins iptables
          conntrack tini curl ca-certificates xz-utils catatonit)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "bookworm packages: all present"
fi

# 2. Podman settings (environment.md): root cannot raise RLIMIT_NOFILE above 20000 here, and crun
#    does not support the hybrid cgroup layout this kernel boots with, so use runc.
mkdir -p "$ROOT"
cat >"$CONF.tmp" <<'EOF'
# cracin's podman settings; used through CONTAINERS_CONF=/opt/cracin/containers.conf.
# Written by scripts/setup-containers.sh: edits are overwritten.
[containers]
# root lacks CAP_SYS_RESOURCE here: the default nofile=1048576 makes every container fail with
# "setrlimit RLIMIT_NOFILE: Operation not permitted".
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
# crun: "cgroups in hybrid mode not supported"; runc handles the v1 hybrid layout.
runtime = "runc"
EOF
if cmp -s "$CONF.tmp" "$CONF"; then rm "$CONF.tmp"; else mv "$CONF.tmp" "$CONF"; log "wrote $CONF"; fi

# 3. Docker 26 from trixie, unpacked (never installed with dpkg -i).
if have_docker26; then
  log "docker: $("$DOCKER_DIR/usr/sbin/dockerd" --version) already in $DOCKER_DIR"
else
  log "fetching docker.io, docker-cli, containerd, docker-buildx from Debian trixie (private apt config)"
  mkdir -p "$APT_DIR"/{etc/sources.list.d,etc/preferences.d,etc/apt.conf.d,state/lists/partial,cache/archives/partial,debs}
  cat >"$APT_DIR/etc/sources.list" <<'EOF'
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main
EOF
  touch "$APT_DIR/state/status"
  APT_OPTS=(
    -o "Dir::Etc::SourceList=$APT_DIR/etc/sources.list"
    -o "Dir::Etc::SourceParts=$APT_DIR/etc/sources.list.d"
    -o "Dir::Etc::Preferences=$APT_DIR/etc/preferences"
    -o "Dir::Etc::PreferencesParts=$APT_DIR/etc/preferences.d"
    -o "Dir::State=$APT_DIR/state"
    -o "Dir::State::status=$APT_DIR/state/status"
    -o "Dir::Cache=$APT_DIR/cache"
    -o "APT::Architecture=amd64"
    -o "Debug::NoLocking=1"
    -o "APT::Sandbox::User=root"
  )
  apt-get "${APT_OPTS[@]}" update -qq
  (cd "$APT_DIR/debs" && rm -f ./*.deb && apt-get "${APT_OPTS[@]}" download docker.io docker-cli containerd docker-buildx)
  rm -rf "$DOCKER_DIR.new"
  mkdir -p "$DOCKER_DIR.new"
  for deb in "$APT_DIR"/debs/*.deb; do dpkg -x "$deb" "$DOCKER_DIR.new"; done
  # trixie's runc needs glibc 2.38; bookworm's runc (installed above) works with this dockerd.
  rm -f "$DOCKER_DIR.new/usr/sbin/runc" "$DOCKER_DIR.new/usr/bin/runc"
  rm -rf "$DOCKER_DIR"
  mv "$DOCKER_DIR.new" "$DOCKER_DIR"
  log "docker: $("$DOCKER_DIR/usr/sbin/dockerd" --version) unpacked into $DOCKER_DIR"
fi
# The buildx plugin is found through a private client config dir (DOCKER_CONFIG), see dockerd.sh.
mkdir -p "$ROOT/docker-config/cli-plugins"
ln -sf "$DOCKER_DIR/usr/libexec/docker/cli-plugins/docker-buildx" "$ROOT/docker-config/cli-plugins/docker-buildx"
[ -f "$ROOT/docker-config/config.json" ] || echo '{}' >"$ROOT/docker-config/config.json"

log "podman: $(podman --version); runc: $(runc --version | head -1)"
log "start docker with: scripts/dockerd.sh start   (then: eval \"\$(scripts/dockerd.sh env)\")"
log "done"
