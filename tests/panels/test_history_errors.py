"""Errors in the history: a view that raises into the debugger is kept, with its
exception and the Sentry event id of its capture (the real sentry-sdk posting to a
receiver on 127.0.0.1)."""

from __future__ import annotations

import typing as t

import pytest

from tests.support.sentry import EnvelopeReceiver
from tests.support.toolbar import make_toolbar_app

if t.TYPE_CHECKING:
    from flask import Flask


def crashing_app(**config: t.Any) -> Flask:
    app = make_toolbar_app(**config)

    @app.get("/crash")
    def crash() -> str:
        raise RuntimeError("the ledger is out of balance, password=hunter2")

    return app


def test_a_view_raising_into_the_debugger_is_kept() -> None:
    """Debug mode propagates the error (the debugger shows it); the history still has
    the request, its 500 and its exception, secrets masked."""
    client = crashing_app().test_client()
    with pytest.raises(RuntimeError, match="out of balance"):
        client.get("/crash")
    (row,) = client.get("/_observe/api/requests").get_json()["requests"]
    assert (row["method"], row["path"], row["status"]) == ("GET", "/crash", 500)
    assert row["error"] == {
        "type": "RuntimeError",
        "message": "the ledger is out of balance, password=[Filtered]",
    }
    page = client.get(row["report_url"]).get_data(as_text=True)
    assert "RuntimeError" in page and "hunter2" not in page


def test_the_event_id_of_the_capture_is_listed(receiver: EnvelopeReceiver) -> None:
    client = crashing_app(OBSERVE_SENTRY_DSN=receiver.dsn, PROPAGATE_EXCEPTIONS=False).test_client()
    response = client.get("/crash")
    response.close()
    assert response.status_code == 500
    (event,) = receiver.wait_for_events(1)
    (row,) = client.get("/_observe/api/requests").get_json()["requests"]
    assert row["event_id"] == event["event_id"] == response.headers["X-Sentry-Event-Id"]
    assert row["error"]["type"] == "RuntimeError"
    html = client.get("/_observe/history").get_data(as_text=True)
    assert f"(event <code>{event['event_id']}</code>)" in html
