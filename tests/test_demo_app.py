"""The demo app: its routes answer as documented, in-process and under `flask run`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import typing as t
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from demo_app import create_app
from tests.support.sentry import EnvelopeReceiver
from tests.support.sentry import flush
from tests.support.services import chromium_page
from tests.support.services import free_port
from tests.support.services import serve_in_thread
from tests.support.services import starts_services

if t.TYPE_CHECKING:
    from collections.abc import Iterator

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


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def _support_id(html: str) -> str | None:
    """The event id the blog's 500 page asks the visitor to quote."""
    match = re.search(
        r'<p id="support-id">If you contact support, please quote <code>([^<]+)</code>', html
    )
    return match.group(1) if match else None


def test_demo_blog_pages() -> None:
    client = create_app({"TESTING": True}).test_client()
    index = client.get("/blog/", headers={"Accept": BROWSER_ACCEPT})
    assert index.status_code == 200 and index.mimetype == "text/html"
    assert re.findall(
        r'<li><a href="(/blog/\d+)">([^<]+)</a></li>', index.get_data(as_text=True)
    ) == [
        ("/blog/1", "Why we time every request"),
        ("/blog/2", "Quote this id to support"),
    ]
    names = [entry.split(";")[0] for entry in index.headers["Server-Timing"].split(", ")]
    assert names == ["app", "blog_index"]
    post = client.get("/blog/2", headers={"Accept": BROWSER_ACCEPT})
    assert "<h1>Quote this id to support</h1>" in post.get_data(as_text=True)
    missing = client.get("/blog/9", headers={"Accept": BROWSER_ACCEPT})
    assert missing.status_code == 404 and missing.mimetype == "text/html"
    assert '<p id="not-found">There is no such post.</p>' in missing.get_data(as_text=True)


def test_demo_blog_error_page_quotes_the_event_id() -> None:
    """The blog's own 500 page shows the id of the event the (embedded) Sentry got,
    the same as the header."""
    app = create_app({"DEMO_EMBEDDED_SENTRY": True, "PROPAGATE_EXCEPTIONS": False})
    client = app.test_client()
    response = client.get("/blog/archive", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 500 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "<h1>Something went wrong</h1>" in html
    header = response.headers["X-Sentry-Event-Id"]
    assert _support_id(html) == header
    deadline = time.monotonic() + 10
    events: list[dict[str, t.Any]] = []
    while not events and time.monotonic() < deadline:
        events = client.get("/demo/sentry-events").json["events"]  # type: ignore[index]
        time.sleep(0.05)
    assert [(event["event_id"], event["type"]) for event in events] == [(header, "RuntimeError")]
    assert "hunter2" not in str(events)


def test_demo_blog_error_page_without_sentry_has_no_id_line() -> None:
    plain = create_app({"PROPAGATE_EXCEPTIONS": False}).test_client()
    response = plain.get("/blog/archive", headers={"Accept": BROWSER_ACCEPT})
    assert response.status_code == 500
    assert "X-Sentry-Event-Id" not in response.headers
    assert _support_id(response.get_data(as_text=True)) is None
    assert "support" not in response.get_data(as_text=True)


@pytest.fixture
@starts_services
def blog_server(receiver: EnvelopeReceiver) -> Iterator[str]:
    """The demo app, capturing to the Sentry receiver, on a free loopback port."""
    app = create_app({"OBSERVE_SENTRY_DSN": receiver.dsn})
    with serve_in_thread(app) as url:
        yield url


@pytest.mark.services
def test_a_browser_gets_the_blogs_500_page_with_the_event_id_sentry_received(
    blog_server: str, receiver: EnvelopeReceiver, tmp_path: Path
) -> None:
    """Real Chromium, real sentry-sdk: the page, the header and the event agree."""
    with chromium_page(tmp_path / "profile") as page:
        page.goto(f"{blog_server}/blog/")
        with page.expect_response(f"{blog_server}/blog/archive") as answer:
            page.get_by_role("link", name="The archive").click()
        response = answer.value
        assert response.status == 500
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        header = response.headers["x-sentry-event-id"]
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "Something went wrong"
        assert page.locator("#support-id").inner_text() == (
            f"If you contact support, please quote {header}."
        )
    flush()
    events = receiver.wait_for_events(1)
    assert [event["event_id"] for event in events] == [header]
    assert {event["exception"]["values"][0]["type"] for event in events} == {"RuntimeError"}


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
