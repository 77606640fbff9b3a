# Sourced by the benchmark scripts (scripts/bench*.sh): the repository root as the working
# directory, cargo and CRIU on PATH, and the helpers they share.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:/usr/local/sbin:/usr/sbin:/sbin:$PATH"

# A free loopback TCP port: nothing listens on it now.
port() { while :; do p=$((20000 + RANDOM % 20000)); ss -Htln "sport = :$p" | grep -q . || { echo "$p"; return; }; done; }

# A release build of cracin in $CRACIN; `build_cracin examples` builds the example applications
# too (examples/osgi-jakartars/target/app.jar).
build_cracin() {
  cargo build --release --quiet
  if [ "${1:-}" = examples ]; then bash scripts/build-examples.sh >/dev/null; fi
  CRACIN=$PWD/target/release/cracin
}
