#!/bin/sh
# Builds cracin's org.crac provider (package io.cracin.crac) into OUTDIR/cracin-crac.jar with the
# JDK's javac and jar only. Idempotent: does nothing when the jar is newer than every source.
# The jar is reproducible (fixed entry dates), so its SHA-256 names it stably.
# Usage: build.sh OUTDIR        Env: JAVAC, JAR (default: javac and jar on PATH, or $JAVA_HOME/bin)
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
out=$1
mkdir -p "$out"
out=$(cd "$out" && pwd)
jarfile="$out/cracin-crac.jar"

pick() { # NAME: $NAME_ENV, else PATH, else JAVA_HOME/bin
    if command -v "$1" >/dev/null 2>&1; then command -v "$1"
    elif [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/$1" ]; then echo "$JAVA_HOME/bin/$1"
    else echo "build.sh: $1 not found (install a JDK, or set JAVA_HOME)" >&2; exit 3
    fi
}
javac=${JAVAC:-$(pick javac)}
jartool=${JAR:-$(pick jar)}

if [ -f "$jarfile" ] && [ -z "$(find "$here/src" "$here/build.sh" -newer "$jarfile" -print 2>/dev/null | head -n 1)" ]; then
    exit 0
fi

classes="$out/classes"
rm -rf "$classes" "$jarfile.tmp"
mkdir -p "$classes"
# --release 11: the provider uses nothing newer, so applications still on Java 11 work too.
"$javac" --release 11 -nowarn -encoding UTF-8 -d "$classes" $(find "$here/src" -name '*.java' | LC_ALL=C sort)
"$jartool" --create --file "$jarfile.tmp" --date=2024-01-01T00:00:00Z -C "$classes" .
mv "$jarfile.tmp" "$jarfile"
rm -rf "$classes"
