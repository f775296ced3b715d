#!/usr/bin/env bash
# Installs what the local stack and the test suite need, into the repository's .local/:
#   - the Python environment (uv sync --locked into .local/venv; installs uv if missing),
#   - Apache Kafka's jars from Maven Central (deploy/kafka/pom.xml -> .local/kafka/libs),
#   - redis-server (Debian's package, when missing and running as root),
#   - chromium (Debian's package, when missing and running as root), for the dashboard's test.
# Checks python3 >= 3.11 and java >= 17. Idempotent, and fast when everything is present: every
# make target calls it.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

say() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }
is_root() { [[ "$(id -u)" == 0 ]]; }

# Debian's packages, installed only when missing and only as root; `apt-get update` once per run.
apt_updated=0
apt_install() {
    is_root || return 1
    command -v apt-get >/dev/null || return 1
    if [[ $apt_updated == 0 ]]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        apt_updated=1
    fi
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# --- Python ---------------------------------------------------------------------------------
python=${PYTHON:-python3}
command -v "$python" >/dev/null || die "python3 not found: Switchyard needs Python 3.11+"
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "Python 3.11+ is required; $("$python" --version 2>&1) found ($python)"

if command -v uv >/dev/null; then
    uv=(uv)
elif "$python" -m uv --version >/dev/null 2>&1; then
    uv=("$python" -m uv)
else
    say "installing uv (python3 -m pip install uv)"
    "$python" -m pip install --quiet uv >&2 || die "could not install uv with pip"
    uv=("$python" -m uv)
fi

export UV_PROJECT_ENVIRONMENT="$repo/.local/venv"
# uv sync is itself a no-op when the venv matches uv.lock; --locked refuses a stale lock file
# instead of silently re-resolving it.
"${uv[@]}" sync --locked --quiet --python "$python" >&2 \
    || die "uv sync --locked failed (is uv.lock out of date? run 'uv lock')"

# --- Java and Kafka -------------------------------------------------------------------------
java_bin=java
if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then java_bin="$JAVA_HOME/bin/java"; fi
if ! command -v "$java_bin" >/dev/null; then
    apt_install openjdk-17-jre-headless \
        || die "java not found: Kafka 4 needs Java 17+ (Debian: apt-get install openjdk-17-jre-headless)"
fi
# `java -version` prints e.g. 'openjdk version "17.0.15"' (or "1.8.0_x" for Java 8) on stderr.
java_version=$("$java_bin" -version 2>&1 | sed -n 's/.*version "\([0-9][0-9._]*\).*/\1/p' | head -1)
java_major=${java_version%%.*}
[[ "$java_major" == 1 ]] && java_major=$(cut -d. -f2 <<<"$java_version")
[[ "$java_major" =~ ^[0-9]+$ && "$java_major" -ge 17 ]] \
    || die "Kafka 4 needs Java 17+; found '${java_version:-unknown}' ($java_bin)"

kafka_libs="$repo/.local/kafka/libs"
pom="$repo/deploy/kafka/pom.xml"
stamp="$kafka_libs/.pom.sha256"
pom_sum=$(sha256sum "$pom" | cut -d' ' -f1)
# Re-fetch when the pom changed (a Kafka upgrade), not only when the folder is missing, and
# start from an empty folder so two Kafka versions never share the class path.
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$pom_sum" ]]; then
    command -v mvn >/dev/null || apt_install maven \
        || die "mvn not found: Maven is needed once to fetch Kafka's jars (Debian: apt-get install maven)"
    say "fetching Apache Kafka jars into .local/kafka/libs"
    rm -rf "$kafka_libs"
    mkdir -p "$kafka_libs"
    mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$kafka_libs" >&2 \
        || die "mvn could not fetch Kafka's jars (see the output above)"
    echo "$pom_sum" >"$stamp"
fi

# --- Redis ----------------------------------------------------------------------------------
if ! command -v redis-server >/dev/null; then
    # Debian's package may start a system redis on 6379; the stack uses its own port (6380+),
    # so the two do not meet.
    apt_install redis-server \
        || die "redis-server not found: install Redis 7+ (Debian: apt-get install redis-server; run this script as root to have it done)"
fi

# --- Chromium -------------------------------------------------------------------------------
# The dashboard's end-to-end test drives Debian's chromium with Playwright (a test tool's own
# browser download needs the internet; this needs only Debian's mirror). Only that test needs it,
# so without root this warns rather than stops.
if ! command -v chromium >/dev/null; then
    apt_install chromium \
        || say "warning: chromium not found: tests/e2e/test_dashboard.py needs it (Debian: apt-get install chromium; run this script as root to have it done)"
fi
