#!/usr/bin/env bash
# The real metrics pipeline for the integration tests: the statsd daemon (npm `statsd`
# 0.9) and carbon + whisper + graphite-web 1.1.10 in their own virtualenv (graphite-web
# pins an old Django), all under .cache/ in the repository. Idempotent: a second run
# checks what is there and installs nothing. The tests start and stop the services.
set -euo pipefail
cd "$(dirname "$0")/../.."

CACHE="$PWD/.cache"
GRAPHITE_VERSION=1.1.10
PYTHON="${PYTHON:-python3}"

# graphite-web imports cairocffi, which loads libcairo when it is imported.
if ! ldconfig -p 2>/dev/null | grep -q 'libcairo\.so\.2'; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libcairo2 >/dev/null
    else
        echo "libcairo2 is missing: install it (apt-get install libcairo2)" >&2
        exit 1
    fi
fi

# Debian's python3 makes virtualenvs only with python3-venv installed.
if ! "$PYTHON" -c 'import ensurepip' 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    else
        echo "$PYTHON cannot create virtualenvs: install python3-venv" >&2
        exit 1
    fi
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node and npm are needed for the statsd daemon (apt-get install nodejs npm)" >&2
    exit 1
fi

if [ -f "$CACHE/statsd/node_modules/statsd/stats.js" ]; then
    echo "statsd daemon: present"
else
    echo "statsd daemon: installing statsd@0.9 into .cache/statsd"
    mkdir -p "$CACHE/statsd"
    npm install --prefix "$CACHE/statsd" --no-audit --no-fund --loglevel=error statsd@0.9
fi

VENV="$CACHE/graphite-venv"
check_graphite() {
    [ -x "$VENV/bin/python" ] && [ -f "$VENV/bin/carbon-cache.py" ] &&
        "$VENV/bin/python" -c 'import carbon, whisper, graphite, django' 2>/dev/null
}
if check_graphite; then
    echo "carbon, whisper, graphite-web: present"
else
    echo "carbon, whisper, graphite-web $GRAPHITE_VERSION: installing into .cache/graphite-venv"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip "setuptools<70" wheel
    # Without GRAPHITE_NO_PREFIX the packages would install into /opt/graphite.
    GRAPHITE_NO_PREFIX=1 "$VENV/bin/python" -m pip install --quiet --no-build-isolation \
        "whisper==$GRAPHITE_VERSION" "carbon==$GRAPHITE_VERSION" \
        "graphite-web==$GRAPHITE_VERSION"
    check_graphite || { echo "graphite install is incomplete" >&2; exit 1; }
fi
