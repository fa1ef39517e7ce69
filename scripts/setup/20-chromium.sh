#!/usr/bin/env bash
# Debian's chromium for the real-browser test (tests/panels/test_browser.py), driven by
# the playwright Python package with executable_path=/usr/bin/chromium. Never
# `playwright install`: no browser is downloaded from anywhere but Debian's archive.
# Idempotent: does nothing when /usr/bin/chromium exists.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "chromium is missing and installing it needs root: run 'sudo make services'" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
echo "chromium: $(/usr/bin/chromium --version)"
