#!/usr/bin/env bash
# `make constraints`: rewrite constraints/dev.txt from a fresh virtualenv with the newest
# release of everything (the package's dependencies with all extras, the dev tools and
# test-only packages of requirements-dev.txt). Run on purpose, review the diff, run
# `make test` (which installs the same pins in the chroots), commit.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --upgrade pip
"$tmp/venv/bin/python" -m pip install --quiet -e '.[all]' -r requirements-dev.txt
{
    grep '^#' constraints/dev.txt
    "$tmp/venv/bin/python" -m pip freeze --exclude-editable | LC_ALL=C sort -f
} >"$tmp/dev.txt"
mv "$tmp/dev.txt" constraints/dev.txt
git --no-pager diff --stat -- constraints/dev.txt
