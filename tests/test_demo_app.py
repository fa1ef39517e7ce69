"""The demo app: its routes answer as documented, in-process and under `flask run`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import typing as t
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from demo_app import create_app
from tests.support.services import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("path", "status", "timer"),
    [
        pytest.param("/", 200, "page", id="html-page"),
        pytest.param("/api/items", 200, None, id="json"),
        pytest.param("/api/items/1", 200, None, id="json-item"),
        pytest.param("/api/slow?seconds=0.01", 200, "slow", id="slow"),
        pytest.param("/api/async", 200, "async", id="async"),
        pytest.param("/api/stream?lines=3", 200, None, id="stream"),
        pytest.param("/api/allocate?count=1000", 200, None, id="allocate"),
    ],
)
def test_demo_routes(path: str, status: int, timer: str | None) -> None:
    app = create_app({"TESTING": True})
    response = app.test_client().get(path)
    assert response.status_code == status
    assert "X-Runtime" in response.headers
    names = [entry.split(";")[0] for entry in response.headers["Server-Timing"].split(", ")]
    assert names[0] == "app"
    if timer:
        assert timer in names


def test_demo_health_is_excluded() -> None:
    response = create_app({"TESTING": True}).test_client().get("/health")
    assert response.json == {"status": "ok"}
    assert "X-Runtime" not in response.headers


def test_demo_library_n_plus_one_and_fixed() -> None:
    """The N+1 page runs one statement for the authors plus one per author (6 for 5); the
    fixed page, two. Both list the same books; each app has its own database."""
    app = create_app({"TESTING": True})
    client = app.test_client()
    n_plus_one = client.get("/library/authors")
    fixed = client.get("/library/authors-fixed")
    assert n_plus_one.headers["Server-Timing"].endswith('desc="6 queries"')
    assert fixed.headers["Server-Timing"].endswith('desc="2 queries"')
    assert "<li>Stanisław Lem: Solaris, The Cyberiad</li>" in n_plus_one.text
    assert "<li>Stanisław Lem: Solaris, The Cyberiad</li>" in fixed.text
    assert create_app({"TESTING": True}).test_client().get("/library/authors").status_code == 200


def test_demo_stream_and_boom() -> None:
    app = create_app({"TESTING": True, "PROPAGATE_EXCEPTIONS": False})
    client = app.test_client()
    assert client.get("/api/stream?lines=2").text == "line 0\nline 1\n"
    assert client.get("/api/boom").status_code == 500


def test_demo_embedded_sentry_receives_the_captured_error() -> None:
    app = create_app({"DEMO_EMBEDDED_SENTRY": True, "PROPAGATE_EXCEPTIONS": False})
    client = app.test_client()
    response = client.get("/api/boom")
    assert response.status_code == 500
    event_id = response.json["event_id"] if response.json else None
    assert event_id and response.headers["X-Sentry-Event-Id"] == event_id
    deadline = time.monotonic() + 10
    events: list[dict[str, t.Any]] = []
    while not events and time.monotonic() < deadline:
        events = client.get("/demo/sentry-events").json["events"]  # type: ignore[index]
        time.sleep(0.05)
    assert [event["event_id"] for event in events] == [event_id]
    assert "hunter2" not in str(events)  # the DSN password in the message was scrubbed


def _get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


@pytest.mark.services
def test_flask_run_debug_serves_the_demo(tmp_path: Path) -> None:
    """`flask --app demo_app run --debug` (what `make demo` runs) serves over HTTP."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FLASK_DEMO_EMBEDDED_SENTRY": "true"}
    env.pop("FLASK_APP", None)
    log = (tmp_path / "flask.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "demo_app", "run", "--debug", "--no-reload",
         "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, headers, body = _get(f"http://127.0.0.1:{port}/api/items")
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"flask run did not serve the demo:\n{log.read()}")
                time.sleep(0.1)
        assert status == 200
        assert "X-Runtime" in headers
        items: dict[str, t.Any] = json.loads(body)
        assert items["items"][0]["name"] == "teapot"
        status, headers, body = _get(f"http://127.0.0.1:{port}/")
        assert status == 200 and b"Flask-Observe demo" in body
        # As `make demo` sets it up: the error reaches the embedded Sentry stand-in.
        status, _headers, _body = _get(f"http://127.0.0.1:{port}/api/boom")
        assert status == 500
        events: list[dict[str, t.Any]] = []
        while not events and time.monotonic() < deadline + 30:
            events = json.loads(_get(f"http://127.0.0.1:{port}/demo/sentry-events")[2])["events"]
            time.sleep(0.1)
        assert [event["type"] for event in events] == ["RuntimeError"]
        assert "hunter2" not in json.dumps(events)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
