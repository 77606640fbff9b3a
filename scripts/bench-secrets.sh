#!/bin/sh
# Benchmark of cracin's secrets scan (docs/bench-secrets.md): the search of a checkpoint's memory
# pages for secret values that runs before every checkpoint is sealed. Target: at most 1 s per
# 100 MB of images. Two inputs: 1 GiB of random bytes (no page cache effects: read once
# beforehand) and, when given, the images directory of a real checkpoint.
# Usage: scripts/bench-secrets.sh [IMAGES_DIR_OF_A_REAL_CHECKPOINT]
set -eu
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
cargo build -q --release -p cracin-core --example secrets_scan
bin=target/release/examples/secrets_scan
work=$(mktemp -d "${TMPDIR:-/tmp}/cracin-bench-secrets-XXXXXX")
trap 'rm -rf "$work"' EXIT
head -c 1073741824 /dev/urandom >"$work/pages-1.img"
cat "$work/pages-1.img" >/dev/null
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -sr), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "## 1 GiB of random bytes, 20 values"
"$bin" "$work" 20 5
echo "## 1 GiB of random bytes, 200 values"
"$bin" "$work" 200 5
if [ $# -ge 1 ]; then
    echo "## real checkpoint images: $1, 20 values"
    "$bin" "$1" 20 5
fi
