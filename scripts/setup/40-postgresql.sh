#!/usr/bin/env bash
# Debian's PostgreSQL server for the SQL tests (tests/sql/test_postgres.py). The tests
# make their own throwaway cluster under a temporary directory and start it on a free
# loopback port (tests/support/postgres.py), as the `postgres` user when run as root:
# no cluster of the system is used or started here.
# Idempotent: does nothing when a server is installed under /usr/lib/postgresql.
set -euo pipefail

if compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
    echo "postgresql: $(ls -d /usr/lib/postgresql/*/bin/postgres | tail -n 1)"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "postgresql is missing and installing it needs root: run 'sudo make services'" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# Debian's package makes and starts a "main" cluster unless told not to: the tests
# need none, and a container has no init system to run it.
mkdir -p /etc/postgresql-common/createcluster.d
echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/flask-observe.conf
apt-get update -qq
apt-get install -y -qq postgresql >/dev/null
echo "postgresql: $(ls -d /usr/lib/postgresql/*/bin/postgres | tail -n 1)"
