#!/usr/bin/env bash
# The Sentry tests (tests/sentry/) against the lowest sentry-sdk that
# pyproject.toml declares and against the newest one the index has: `make sentry-matrix`.
#
# Each version is installed alone (no dependencies: the virtualenv has them) under
# .cache/sentry-sdk-<label>/ with `pip install --target`, and put in front of the
# virtualenv's own copy with PYTHONPATH, which the tests' subprocesses inherit too.
# Nothing in the virtualenv changes. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${BIN:-.venv/bin}"
CACHE="$PWD/.cache"
LOWEST="$(sed -n 's/^sentry = \["sentry-sdk>=\([0-9.]*\)"\]$/\1/p' pyproject.toml)"
if [ -z "$LOWEST" ]; then
    echo "no 'sentry = [\"sentry-sdk>=X\"]' extra in pyproject.toml" >&2
    exit 1
fi

run() {
    local label="$1" requirement="$2" target="$CACHE/sentry-sdk-$1"
    if [ "$label" = newest ] || [ ! -d "$target/sentry_sdk" ]; then
        "$BIN/python" -m pip install --quiet --no-deps --upgrade --target "$target" "$requirement"
    fi
    local version
    version="$(PYTHONPATH="$target" "$BIN/python" -c 'import sentry_sdk; print(sentry_sdk.VERSION)')"
    echo "== sentry-sdk $version ($label)"
    PYTHONPATH="$target" "$BIN/python" -m pytest -q -p no:cacheprovider tests/sentry/ "${@:3}"
}

start=$SECONDS
failed=()
run lowest "sentry-sdk==$LOWEST" "$@" || failed+=(lowest)
run newest "sentry-sdk" "$@" || failed+=(newest)
echo "== both in $((SECONDS - start)) s${failed[*]:+; failed: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
