#!/usr/bin/env bash
# The floor under CRIU's "memory and resume" phase on this machine: how long it takes to read a
# checkpoint's pages file (from the page cache) into fresh anonymous memory, which is what CRIU's
# restorer does with one preadv per process. A small C program (compiled here with the machine's
# gcc) maps as many bytes as the pages file holds and preads the file into it, RUNS times each:
#   4k     private anonymous memory as a restored JVM's heap, metaspace and code cache are
#          (each 4 KiB page faulted in, zeroed and filled);
#   huge   the same memory with MADV_HUGEPAGE first (2 MiB pages where the kernel finds them;
#          what CRIU would get only for mappings the application itself had advised).
# Output (medians and min-max, with date, machine and load) goes to docs/bench-pagefault.md.
#   scripts/bench-pagefault.sh CHECKPOINT_DIR [RUNS (default 7)]
set -euo pipefail
cd "$(dirname "$0")/.."
CK=${1:?usage: scripts/bench-pagefault.sh CHECKPOINT_DIR [RUNS]}
RUNS=${2:-7}
pages=$(ls -S "$CK"/images/pages-*.img 2>/dev/null | head -1)
[ -n "$pages" ] || { echo "no pages-*.img in $CK/images" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/fill.c" <<'C'
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int huge = strcmp(argv[1], "huge") == 0;
    int fd = open(argv[2], O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) return 1;
    size_t n = st.st_size, align = 2UL << 20;
    char *raw = mmap(NULL, n + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return 1;
    char *p = (char *)(((unsigned long)raw + align - 1) & ~(align - 1));
    if (huge) madvise(p, n, MADV_HUGEPAGE);
    double t = now_ms();
    size_t off = 0;
    while (off < n) {
        ssize_t r = pread(fd, p + off, n - off, off);
        if (r <= 0) return 1;
        off += r;
    }
    printf("%.2f\n", now_ms() - t);
    return 0;
}
C
gcc -O2 -o "$tmp/fill" "$tmp/fill.c"
cat "$pages" >/dev/null # in the page cache, as after the first restore
for i in $(seq "$RUNS"); do
  for mode in 4k huge; do echo "$mode $("$tmp/fill" "$mode" "$pages")"; done
done >"$tmp/runs"
OUT=docs/bench-pagefault.md
{
  echo "# Filling fresh memory from a pages file: the floor under CRIU's memory phase"
  echo
  echo "Made by \`scripts/bench-pagefault.sh CHECKPOINT_DIR $RUNS\` on $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "($(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs,"
  echo "$(free -g | awk '/^Mem:/ {print $2}') GiB; transparent huge pages: $(cat /sys/kernel/mm/transparent_hugepage/enabled));"
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg) after. The pages file: $(basename "$pages") of a"
  echo "checkpoint of the reference OSGi application, $(( $(stat -c %s "$pages") / 1000000 )) MB, read from the page cache."
  echo
  python3 - "$tmp/runs" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    mode, ms = line.split()
    runs.setdefault(mode, []).append(float(ms))
print("| memory | median | min-max |")
print("| --- | ---: | ---: |")
names = {"4k": "private anonymous, 4 KiB pages (as CRIU restores)", "huge": "the same with MADV_HUGEPAGE"}
for m in ("4k", "huge"):
    v = sorted(runs[m])
    print(f"| {names[m]} | {statistics.median(v):.1f} ms | {v[0]:.1f}-{v[-1]:.1f} ms |")
PY
} | tee "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
echo "written to $OUT"
