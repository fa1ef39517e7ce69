#!/usr/bin/env bash
# wrk, the HTTP load generator of the peer benchmark and the load/fault tests, and
# valgrind, which counts instructions per request for the benchmarks' --instructions
# modes (Debian).
set -euo pipefail
missing=()
for tool in wrk valgrind; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" = 0 ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "${missing[*]} missing and this is not root: apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
command -v wrk valgrind
