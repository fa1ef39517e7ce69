#!/usr/bin/env bash
# wrk, the HTTP load generator of the peer benchmark and the load/fault tests (Debian).
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "wrk is missing and this is not root: apt-get install wrk" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq wrk >/dev/null
command -v wrk
