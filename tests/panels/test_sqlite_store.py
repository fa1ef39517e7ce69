"""The history in a SQLite file (``OBSERVE_HISTORY_PATH``): processes writing at once
and one API listing them all, the bound on disk, reports read back whole from another
process, two gunicorn workers sharing one history, and a path that cannot work."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import threading
import time
import typing as t
import urllib.request
from pathlib import Path

import pytest

from flask_observe import ConfigError
from tests.support.services import free_port
from tests.support.toolbar import make_toolbar_app
from tests.support.toolbar import PAGE

if t.TYPE_CHECKING:
    from flask import Flask
    from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parents[2]


def history_app(path: str, **config: t.Any) -> Flask:
    """A toolbar app keeping its history in *path*, with a page naming its process."""
    app = make_toolbar_app(OBSERVE_HISTORY_PATH=path, **config)

    @app.get("/from/<name>")
    def from_process(name: str) -> dict[str, object]:
        return {"name": name, "pid": os.getpid()}

    @app.get("/page/<name>")
    def named_page(name: str) -> str:
        return PAGE.format(name)

    return app


def write_requests(path: str, name: str, count: int, size: int) -> None:
    """A process's work: *count* requests to ``/from/<name>-<i>`` (run with spawn)."""
    client = history_app(path, OBSERVE_REPORT_STORE_SIZE=size).test_client()
    for index in range(count):
        client.get(f"/from/{name}-{index}").close()


def run_writers(path: str, count: int, size: int) -> None:
    context = multiprocessing.get_context("spawn")
    writers = [
        context.Process(target=write_requests, args=(path, name, count, size))
        for name in ("left", "right")
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    assert [writer.exitcode for writer in writers] == [0, 0]


def listed(client: FlaskClient) -> list[dict[str, t.Any]]:
    response = client.get("/_observe/api/requests")
    data = response.get_json()
    assert response.status_code == 200 and isinstance(data, dict)
    return t.cast("list[dict[str, t.Any]]", data["requests"])


def test_two_processes_write_and_a_third_lists_both(tmp_path: Path) -> None:
    path = str(tmp_path / "history.sqlite")
    run_writers(path, count=30, size=200)
    client = history_app(
        path, OBSERVE_REPORT_STORE_SIZE=200, OBSERVE_HISTORY_SIZE=200
    ).test_client()
    rows = listed(client)
    paths = {row["path"] for row in rows}
    assert len(rows) == 60 and len({row["id"] for row in rows}) == 60
    assert paths == {f"/from/{name}-{i}" for name in ("left", "right") for i in range(30)}
    for name in ("left", "right"):  # each process's rows, newest first
        own = [row["path"] for row in rows if row["path"].startswith(f"/from/{name}-")]
        assert own == [f"/from/{name}-{i}" for i in reversed(range(30))]
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_bounded_on_disk_as_in_memory(tmp_path: Path) -> None:
    path = str(tmp_path / "history.sqlite")
    run_writers(path, count=30, size=25)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT COUNT(*) FROM observe_reports").fetchone() == (25,)
    client = history_app(path, OBSERVE_REPORT_STORE_SIZE=25, OBSERVE_HISTORY_SIZE=10).test_client()
    rows = listed(client)
    assert len(rows) == 10
    client.get("/from/parent").close()
    assert listed(client)[0]["path"] == "/from/parent"
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT COUNT(*) FROM observe_reports").fetchone() == (25,)


def test_a_report_written_by_another_process_reads_back_whole(tmp_path: Path) -> None:
    path = str(tmp_path / "history.sqlite")
    writer = history_app(path).test_client()
    response = writer.get("/page/north")
    html = response.get_data(as_text=True)
    response.close()
    assert "flDebugHistoryPanel" in html
    reader = history_app(path).test_client()  # another app: nothing in its memory
    (row,) = listed(reader)
    assert (row["method"], row["path"], row["status"]) == ("GET", "/page/north", 200)
    report = reader.get(row["url"]).get_json()
    assert report["summary"] == row and report["timeline"]["toolbar"] is not None
    page = reader.get(row["report_url"]).get_data(as_text=True)
    assert "GET /page/north &rarr; 200" in page and 'id="observe-timeline"' in page
    assert "Flask-DebugToolbar's own work on this page:" in page


def test_the_history_panel_lists_the_file(tmp_path: Path) -> None:
    path = str(tmp_path / "history.sqlite")
    run_writers(path, count=2, size=100)
    html = history_app(path).test_client().get("/page/x").get_data(as_text=True)
    assert ">GET /from/right-1</a>" in html and ">GET /from/left-1</a>" in html


def test_a_path_that_cannot_be_opened_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot use") as info:
        history_app(str(tmp_path / "missing-dir" / "history.sqlite"))
    assert info.value.key == "OBSERVE_HISTORY_PATH"
    not_a_database = tmp_path / "notes.txt"
    not_a_database.write_text("not a database, " * 100)
    with pytest.raises(ConfigError) as info:
        history_app(str(not_a_database))
    assert info.value.key == "OBSERVE_HISTORY_PATH"


# --- two gunicorn workers ---------------------------------------------------------------


def create_app() -> Flask:
    """The app gunicorn serves: the history in the file named by the environment."""
    app = history_app(
        os.environ["OBSERVE_TEST_HISTORY"],
        OBSERVE_REPORT_STORE_SIZE=2000,
        OBSERVE_HISTORY_SIZE=2000,
    )

    @app.get("/slow/<name>")
    def slow(name: str) -> dict[str, object]:
        time.sleep(0.05)  # calls overlap: a busy worker leaves the next to the other
        return {"name": name, "pid": os.getpid()}

    return app


def get_json(url: str) -> t.Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


@pytest.mark.services
def test_two_gunicorn_workers_share_one_history(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OBSERVE_TEST_HISTORY": str(tmp_path / "history.sqlite")}
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        "2",
        "--bind",
        f"127.0.0.1:{port}",
        "tests.panels.test_sqlite_store:create_app()",
    ]
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get_json(f"{base}/from/ready")
                break
            except OSError:
                if server.poll() is not None:
                    raise AssertionError(f"gunicorn exited: {server.communicate()[1]}") from None
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        pids: dict[str, int] = {}
        lock = threading.Lock()

        def ask(index: int) -> None:
            data = get_json(f"{base}/slow/call-{index}")
            with lock:
                pids[data["name"]] = data["pid"]

        index = 0
        deadline = time.monotonic() + 60  # the second worker may boot late on a busy machine
        while len(set(pids.values())) < 2 and time.monotonic() < deadline:
            threads = [threading.Thread(target=ask, args=(index + n,)) for n in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            index += 4
        assert len(set(pids.values())) == 2, "gunicorn never used its second worker"
        answers = [get_json(f"{base}/_observe/api/requests") for _ in range(6)]
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    # Each call was answered by one worker; whichever worker answered the API listed
    # the calls of both, newest first.
    calls = {f"/slow/{name}" for name in pids}
    assert {row["path"] for row in answers[0]["requests"]} >= calls, errors
    assert all(answer == answers[0] for answer in answers)
