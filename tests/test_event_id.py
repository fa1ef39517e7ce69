"""The event id of a captured error reaches the client whoever answers: the
``X-Sentry-Event-Id`` header on our problem, on Flask's page and on the app's own error
page, and :func:`flask_observe.event_id` for the app's templates. Events go through the
real sentry-sdk to the envelope receiver of ``tests/support/sentry.py``."""

from __future__ import annotations

import re
import typing as t

import pytest
from flask import abort
from flask import Flask
from flask import render_template_string

from flask_observe import event_id
from flask_observe import Observe
from tests.support.apps import make_app
from tests.support.sentry import EnvelopeReceiver
from tests.support.sentry import flush
from tests.support.services import chromium_page
from tests.support.services import serve_in_thread
from tests.support.services import starts_services

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
EVENT_ID = re.compile(r"[0-9a-f]{32}")

PAGE_500 = (
    "<h1>Sorry</h1>{% if event_id %}<p id=quote>Quote {{ event_id }} to support.</p>{% endif %}"
)


def add_routes(app: Flask) -> None:
    """``/boom`` raises, ``/down`` aborts with 503, ``/fine`` answers; the app's own
    500 page shows :func:`event_id`."""

    @app.get("/boom")
    def boom() -> str:
        raise ValueError("boom")

    @app.get("/down")
    def down() -> str:
        abort(503)

    @app.get("/fine")
    def fine() -> str:
        return f"id={event_id()}"

    @app.errorhandler(500)
    def server_error(error: Exception) -> tuple[str, int]:
        return render_template_string(PAGE_500, event_id=event_id()), 500


def sentry_app(receiver: EnvelopeReceiver, *routes: t.Callable[[Flask], None]) -> Flask:
    return make_app(*routes, TESTING=False, OBSERVE_SENTRY_DSN=receiver.dsn)


def test_the_apps_own_500_page_carries_the_header_and_shows_the_id(
    receiver: EnvelopeReceiver,
) -> None:
    response = sentry_app(receiver, add_routes).test_client().get("/boom")
    header = response.headers["X-Sentry-Event-Id"]
    assert EVENT_ID.fullmatch(header)
    assert response.status_code == 500
    assert response.get_data(as_text=True) == (
        f"<h1>Sorry</h1><p id=quote>Quote {header} to support.</p>"
    )
    flush()
    assert [event["event_id"] for event in receiver.wait_for_events(1)] == [header]


def test_every_captured_response_carries_the_id_of_its_event(
    receiver: EnvelopeReceiver,
) -> None:
    def handle_everything(app: Flask) -> None:
        add_routes(app)

        @app.errorhandler(Exception)
        def everything(error: Exception) -> tuple[str, int]:
            return "<p>Something broke</p>", getattr(error, "code", 500)

    clients = [
        sentry_app(receiver, add_routes).test_client(),
        sentry_app(receiver, handle_everything).test_client(),
    ]
    headers = []
    for client in clients:
        for path, accept in (("/down", "application/json"), ("/down", BROWSER_ACCEPT)):
            response = client.get(path, headers={"Accept": accept})
            assert response.status_code == 503
            headers.append(response.headers["X-Sentry-Event-Id"])
    flush()
    events = receiver.wait_for_events(4)
    assert sorted(event["event_id"] for event in events) == sorted(headers)
    assert len(set(headers)) == 4


def test_a_response_with_its_own_header_keeps_it(receiver: EnvelopeReceiver) -> None:
    def routes(app: Flask) -> None:
        @app.get("/boom")
        def boom() -> str:
            raise ValueError("boom")

        @app.errorhandler(500)
        def server_error(error: Exception) -> tuple[str, int, dict[str, str]]:
            return "mine", 500, {"X-Sentry-Event-Id": "chosen-by-the-app"}

    response = sentry_app(receiver, routes).test_client().get("/boom")
    assert response.headers["X-Sentry-Event-Id"] == "chosen-by-the-app"


def test_event_id_is_none_without_an_error_or_a_request(receiver: EnvelopeReceiver) -> None:
    app = sentry_app(receiver, add_routes)
    assert app.test_client().get("/fine").get_data(as_text=True) == "id=None"
    assert event_id() is None


def test_no_header_and_no_id_without_sentry() -> None:
    response = make_app(add_routes, TESTING=False).test_client().get("/boom")
    assert response.get_data(as_text=True) == "<h1>Sorry</h1>"
    assert "X-Sentry-Event-Id" not in response.headers


@pytest.fixture
@starts_services
def server(receiver: EnvelopeReceiver) -> Iterator[str]:
    """The app with its own 500 page, capturing to the receiver, on a loopback port."""
    app = Flask("event_id_browser")
    app.config["OBSERVE_SENTRY_DSN"] = receiver.dsn
    add_routes(app)
    Observe(app)
    with serve_in_thread(app) as url:
        yield url


@pytest.mark.services
def test_a_visitor_reads_the_id_sentry_received(
    server: str, receiver: EnvelopeReceiver, tmp_path: Path
) -> None:
    with chromium_page(tmp_path / "profile") as page:
        response = page.goto(f"{server}/boom")
        assert response is not None
        header = response.headers["x-sentry-event-id"]
        assert page.locator("#quote").inner_text() == f"Quote {header} to support."
    flush()
    assert [event["event_id"] for event in receiver.wait_for_events(1)] == [header]
