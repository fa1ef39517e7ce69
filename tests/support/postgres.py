"""A throwaway PostgreSQL server for the SQL tests, from Debian's packages
(scripts/setup/40-postgresql.sh installs them).

:func:`run_postgres` makes a new cluster in a fresh temporary directory (``initdb``),
starts ``postgres`` on a free loopback port (and a unix socket in that directory) with
``trust`` authentication for the ``observe`` role, and stops it and removes the
directory at the end. PostgreSQL refuses to run as root: under root the server runs as
the ``postgres`` user Debian's package creates. A missing server fails the test loudly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import typing as t
from pathlib import Path

import pytest

from tests.support.services import free_port

if t.TYPE_CHECKING:
    from collections.abc import Iterator

#: The role the tests connect as (the cluster's superuser).
ROLE = "observe"


@dataclasses.dataclass(frozen=True)
class Postgres:
    """A running throwaway server."""

    port: int
    #: The directory of its unix socket.
    socket_dir: Path

    @property
    def url(self) -> str:
        """A SQLAlchemy URL for psycopg 3 over TCP to the ``postgres`` database."""
        return f"postgresql+psycopg://{ROLE}@127.0.0.1:{self.port}/postgres"


def server_bin() -> Path:
    """The directory of Debian's newest installed PostgreSQL server programs."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/postgres"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    if not found:
        pytest.fail(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres). Run "
            "`make services` (scripts/setup/40-postgresql.sh) as root first.",
            pytrace=False,
        )
    return Path(found[-1]).parent


def _as_user() -> dict[str, t.Any]:
    """``subprocess`` arguments that run the server as ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return {}
    user = pwd.getpwnam("postgres")
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


@contextlib.contextmanager
def run_postgres() -> Iterator[Postgres]:
    """Start a throwaway cluster; stop it and remove its files at the end."""
    binaries = server_bin()
    account = _as_user()
    base = Path(tempfile.mkdtemp(prefix="observe-pg-"))
    if account:
        os.chown(base, account["user"], account["group"])
    data = base / "data"
    log = base / "server.log"
    try:
        subprocess.run(
            [binaries / "initdb", "-D", data, "-U", ROLE, "--auth=trust", "-E", "UTF8",
             "--no-sync", "--locale=C"],
            check=True, capture_output=True, **account,
        )  # fmt: skip
        port = free_port()
        with open(log, "wb") as out:
            server = subprocess.Popen(
                [binaries / "postgres", "-D", data, "-p", str(port), "-k", base,
                 "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                stdout=out, stderr=subprocess.STDOUT, **account,
            )  # fmt: skip
        try:
            _wait_ready(binaries, base, port, server, log)
            yield Postgres(port, base)
        finally:
            server.send_signal(signal.SIGINT)  # fast shutdown
            server.wait(timeout=30)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _wait_ready(
    binaries: Path, base: Path, port: int, server: subprocess.Popen[bytes], log: Path
) -> None:
    deadline = time.monotonic() + 30
    ready = [str(binaries / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-U", ROLE]
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"postgres exited: {log.read_text(errors='replace')[-3000:]}")
        if subprocess.run(ready, check=False).returncode == 0:
            return
        time.sleep(0.05)
    pytest.fail(f"postgres did not accept connections on port {port}: {log.read_text()[-3000:]}")
