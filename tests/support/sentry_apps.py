"""The apps the Sentry tests serve, importable by name from the subprocess tests
(``from tests.support.sentry_apps import storm_app``), and what those tests share:

- :func:`pii_app`: routes whose errors carry the :data:`PII` values, none of which may
  reach Sentry;
- :func:`storm_app`: routes for the capture worker and the throttle (an error raised
  under secrets in its locals, an abort, a blocker held by :class:`Hold`, 50 distinct
  errors);
- :func:`event_id_of`: the event id a problem+json response carries, checked against its
  header.
"""

from __future__ import annotations

import json
import os
import threading
import time
import typing as t
import weakref

from flask import abort
from flask import Flask
from flask import request

from flask_observe import APIError
from tests.support.apps import make_app

if t.TYPE_CHECKING:
    from werkzeug.test import TestResponse


#: Every value here must be absent from every byte the receiver gets.
PII: dict[str, str] = {
    "password": "pw-Kd93hQ",
    "card": "4111-5555-0000-9182",
    "api_key": "ak-Vn28sL",
    "client_secret": "cs-Jm51tR",
    "authorization": "tok-Bz47yW",
    "cookie": "ck-Hx62pN",
    "x_api_key": "xk-Ql35dF",
    "x_auth_token": "xt-Wr84cV",
    "query_api_key": "qa-Tp19mZ",
    "query_token": "qt-Ys73gK",
    "url_password": "up-Ne66bJ",
    "custom": "cu-Lf20hD",
}


def pii_app(**config: object) -> Flask:
    settings: dict[str, t.Any] = {"TESTING": False, "PROPAGATE_EXCEPTIONS": False, **config}
    return make_app(add_pii_routes, name="sentry_app", **settings)


def add_pii_routes(app: Flask) -> None:
    @app.get("/ok")
    def ok() -> str:
        return "ok"

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError(f"postgres://user:{PII['url_password']}@db/x")

    @app.post("/pii")
    def pii() -> str:
        data = request.get_json()
        token = request.headers.get("X-Auth-Token")
        raise RuntimeError(f"could not charge {len(data)} fields with {bool(token)}")

    @app.post("/json")
    def takes_json() -> dict[str, t.Any]:
        return {"got": request.get_json()}

    @app.get("/abort/<int:code>")
    def abort_code(code: int) -> str:
        abort(code)

    @app.get("/api-error")
    def api_error() -> str:
        raise APIError("Numbers must be integers", status=400)


SECRET = "sk-Qp83vLt"
LOYALTY = "ly-Hd52kWc"


class BoomError(Exception):
    """Raised by ``/boom``; user classes can be weakly referenced (memory checks)."""


class BlockerError(Exception):
    """Raised by ``/blocker``; a :class:`Hold` keeps its event in ``before_send``."""


#: 50 exception classes: 50 fingerprints.
DISTINCT = [type(f"Distinct{index:02d}", (RuntimeError,), {}) for index in range(50)]


#: Every BoomError raised, weakly.
RAISED: list[weakref.ref[BoomError]] = []


def _charge(order: dict[str, t.Any], note: str) -> str:
    total = sum(order["lines"])
    error = BoomError(f"cannot charge order {order['id']}: {total} ({note})")
    RAISED.append(weakref.ref(error))
    raise error


def storm_app(**config: object) -> Flask:
    settings: dict[str, t.Any] = {"TESTING": False, "PROPAGATE_EXCEPTIONS": False, **config}
    return make_app(add_storm_routes, name="storm", **settings)


def add_storm_routes(app: Flask) -> None:
    @app.get("/boom")
    def boom() -> str:
        order = {"id": 7, "lines": [3, 4], "password": SECRET}
        loyalty_id = LOYALTY
        return _charge(order, f"note {len(loyalty_id)}")

    @app.get("/abort")
    def aborting() -> str:
        abort(503)

    @app.get("/blocker")
    def blocker() -> str:
        raise BlockerError("held in before_send")

    @app.get("/distinct/<int:number>")
    def distinct(number: int) -> str:
        raise DISTINCT[number](f"distinct {number}")


class Hold:
    """A ``before_send`` that keeps the events of ``/blocker`` until released: the
    worker stalls there, with the events behind it still pending. Only in the process
    that made it (a forked child passes everything)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()  # the worker is stalled here
        self.left = threading.Event()  # the worker went on (gate opened or timed out)
        self.pid = os.getpid()

    def __call__(self, event: t.Any, hint: t.Any) -> t.Any:
        if event.get("transaction") == "blocker" and os.getpid() == self.pid:
            self.entered.set()
            self.gate.wait(30)
            self.left.set()
        return event


def wait_until(predicate: t.Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def event_id_of(response: TestResponse) -> str:
    """The ``event_id`` of a problem+json response: the same as its
    ``X-Sentry-Event-Id`` header, 32 hex digits."""
    body = json.loads(response.get_data())
    assert body["event_id"] == response.headers["X-Sentry-Event-Id"]
    assert len(body["event_id"]) == 32
    return t.cast(str, body["event_id"])
