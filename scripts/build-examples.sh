#!/usr/bin/env bash
# Builds the cracin example applications and puts the executable jars at stable paths:
#   examples/osgi-jakartars/target/app.jar       (no CRaC code)
#   examples/osgi-jakartars/target/app-crac.jar  (org.crac checkpoint trigger + CRaC-aware Jetty)
# Idempotent and quiet; exits non-zero on failure. Needs Java 17+ and Maven on PATH.
# Extra Maven arguments can be passed through, e.g. scripts/build-examples.sh -o -DskipTests
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EX="$ROOT/examples/osgi-jakartars"

command -v mvn >/dev/null || { echo "build-examples: mvn not found" >&2; exit 1; }
command -v java >/dev/null || { echo "build-examples: java not found" >&2; exit 1; }

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if ! mvn -B -q -f "$EX/pom.xml" verify "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "build-examples: maven build of $EX failed" >&2
    exit 1
fi

mkdir -p "$EX/target"
for jar in app.jar app-crac.jar; do
    src="$EX/app/target/$jar"
    [ -s "$src" ] || { echo "build-examples: missing $src" >&2; exit 1; }
    cp -f "$src" "$EX/target/$jar.tmp"
    mv -f "$EX/target/$jar.tmp" "$EX/target/$jar"
    echo "$EX/target/$jar"
done
