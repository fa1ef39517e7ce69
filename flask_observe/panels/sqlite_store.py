"""The history and reports in a SQLite file, shared by every process of an app.

With ``OBSERVE_HISTORY_PATH`` set, the reloader's child, several gunicorn workers or
any other processes of the app write their reports to one file and every one of them
lists the same history. Standard library :mod:`sqlite3`, WAL journal (readers never
wait for the writer), one connection per operation (so any thread may call), each
report as JSON text (:mod:`~flask_observe.panels.codec`), bounded on disk like the
memory store: adding a report deletes the oldest beyond the size.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
import typing as t

from ..config import ConfigError
from ..containment import warn_limited
from .codec import dump
from .codec import load

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from .report import Snapshot

#: Seconds a writer waits for another process's write to finish.
BUSY_TIMEOUT = 5.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS observe_reports (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    data TEXT NOT NULL
)
"""


def _refused(path: str, exc: sqlite3.Error) -> ConfigError:
    return ConfigError("OBSERVE_HISTORY_PATH", f"cannot use {path!r} as a SQLite history: {exc}")


class SqliteReports:
    """The last *size* reports in the SQLite file *path*, newest by insertion.

    :param path: the database file (made if missing; its directory must exist).
    :param size: how many reports to keep.
    :raises flask_observe.ConfigError: the file cannot be opened or is not a database.
    """

    def __init__(self, path: str, size: int) -> None:
        self.path = path
        self.size = size
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                with self._connect() as db:
                    # Switching to WAL takes an exclusive lock without waiting for it:
                    # processes starting together retry until the first one is done.
                    if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                        db.execute("PRAGMA journal_mode=WAL")
                    db.execute(_SCHEMA)
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise _refused(path, exc) from exc
                time.sleep(0.01)
            except sqlite3.Error as exc:
                raise _refused(path, exc) from exc

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            yield db
        finally:
            db.close()

    def add(self, item: Snapshot) -> None:
        """Keep *item* (replacing a report of the same id) and delete the oldest
        reports beyond :attr:`size`, in one transaction."""
        data = json.dumps(dump(item), separators=(",", ":"))
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("DELETE FROM observe_reports WHERE id = ?", (item.id,))
                db.execute("INSERT INTO observe_reports (id, data) VALUES (?, ?)", (item.id, data))
                db.execute(
                    "DELETE FROM observe_reports WHERE seq <= (SELECT seq FROM observe_reports"
                    " ORDER BY seq DESC LIMIT 1 OFFSET ?)",
                    (self.size,),
                )
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _read(self, query: str, params: tuple[object, ...]) -> list[Snapshot]:
        """Run a query of ``data`` rows; a failure is logged and reads as no rows."""
        try:
            with self._connect() as db:
                found = db.execute(query, params).fetchall()
        except sqlite3.Error:
            warn_limited(
                "history-sqlite", "Flask-Observe: reading %s failed", self.path, exc_info=True
            )
            return []
        items = []
        for (text,) in found:
            try:
                items.append(load(json.loads(text)))
            except (ValueError, KeyError, TypeError, IndexError):
                continue  # written by another version of Flask-Observe
        return items

    def get(self, report_id: str) -> Snapshot | None:
        """The report stored under *report_id*, or ``None``."""
        items = self._read("SELECT data FROM observe_reports WHERE id = ?", (report_id,))
        return items[0] if items else None

    def recent(self, limit: int) -> list[Snapshot]:
        """The *limit* newest reports, newest first."""
        return self._read("SELECT data FROM observe_reports ORDER BY seq DESC LIMIT ?", (limit,))

    def __len__(self) -> int:
        try:
            with self._connect() as db:
                return int(db.execute("SELECT COUNT(*) FROM observe_reports").fetchone()[0])
        except sqlite3.Error:
            return 0
