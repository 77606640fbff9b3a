#!/usr/bin/env bash
# The whole test suite, as CI runs it (as root, on Debian 12): installs what is missing
# (scripts/setup.sh --containers: Debian packages, CRIU 4.2.1 from Debian's source, podman,
# Docker 26, the base images), starts cracin's private Docker daemon, then runs the formatting
# and lint checks, the Maven build of the reference OSGi application (with its tests), and every
# Rust test: unit, snapshot and end-to-end (real CRIU on real JVMs, real podman and docker).
# CRACIN_REQUIRE_E2E=1 turns every "SKIPPED" of a missing prerequisite into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:/usr/local/sbin:/usr/sbin:/sbin:$PATH"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# cracin's private dockerd is started by the set-up when needed; stop it at the end if this run
# started it, so the suite leaves nothing running.
stop_docker=1
if [ -x scripts/dockerd.sh ] && scripts/dockerd.sh status >/dev/null 2>&1; then stop_docker=0; fi
cleanup() { if [ "$stop_docker" = 1 ]; then scripts/dockerd.sh stop >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT

step "set-up (idempotent)"
bash scripts/setup.sh --containers
scripts/dockerd.sh start

step "formatting and lints"
if cargo fmt --version >/dev/null 2>&1; then cargo fmt --all -- --check; else echo "rustfmt missing: skipped"; fi
if cargo clippy --version >/dev/null 2>&1; then cargo clippy --workspace --all-targets -- -D warnings; else echo "clippy missing: skipped"; fi

step "reference OSGi application (Maven, bnd)"
bash scripts/build-examples.sh

step "Rust tests: unit, snapshot, end to end"
export CRACIN_REQUIRE_E2E=1
# Two at a time: end-to-end tests start JVMs and containers on a 2-core machine.
cargo test --workspace --no-fail-fast -- --test-threads=2
