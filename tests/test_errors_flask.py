"""Flask's own error contracts hold with Observe on: debug trapping, the app's own generic
handlers, and nothing registered on the error path when JSON errors are off."""

from __future__ import annotations

import json
import typing as t

import pytest
from flask import abort
from flask import Flask
from werkzeug.exceptions import BadRequestKeyError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError
from werkzeug.exceptions import NotFound

from flask_observe import Observe
from flask_observe.errors import handle_http_exception
from tests.support.apps import plain_app
from tests.support.sentry import closed_port_dsn

if t.TYPE_CHECKING:
    pass


def our_handlers(app: Flask) -> list[object]:
    return [
        handler
        for by_code in app.error_handler_spec.values()
        for by_class in by_code.values()
        for handler in by_class.values()
        if getattr(handler, "__module__", "").startswith("flask_observe")
    ]


# --- debug trapping ------------------------------------------------------------------


@pytest.mark.parametrize("observe", [False, True], ids=["plain", "observe"])
def test_bad_request_key_error_is_trapped_in_debug(observe: bool) -> None:
    app = plain_app(observe)
    app.debug = True  # TRAP_BAD_REQUEST_ERRORS defaults to trapping in debug mode
    with pytest.raises(BadRequestKeyError):
        app.test_client().post("/form")


@pytest.mark.parametrize("observe", [False, True], ids=["plain", "observe"])
def test_trap_bad_request_errors_outside_debug(observe: bool) -> None:
    app = plain_app(observe, TESTING=True, TRAP_BAD_REQUEST_ERRORS=True)
    with pytest.raises(KeyError):
        app.test_client().post("/form")


@pytest.mark.parametrize("observe", [False, True], ids=["plain", "observe"])
def test_trap_http_exceptions(observe: bool) -> None:
    app = plain_app(observe, TESTING=True, TRAP_HTTP_EXCEPTIONS=True)
    client = app.test_client()
    with pytest.raises(NotFound):
        client.get("/nowhere")
    with pytest.raises(InternalServerError):
        client.get("/abort/500")


def test_untrapped_bad_request_is_still_a_problem() -> None:
    app = plain_app(TRAP_BAD_REQUEST_ERRORS=False)
    app.debug = True
    response = app.test_client().post("/form")
    assert (response.status_code, response.mimetype) == (400, "application/problem+json")


def test_trapped_unhandled_error_is_answered_when_not_propagated() -> None:
    """TRAP_HTTP_EXCEPTIONS must not make the 500 of an unhandled error raise."""
    app = plain_app(TRAP_HTTP_EXCEPTIONS=True, PROPAGATE_EXCEPTIONS=False)
    response = app.test_client().get("/boom")
    assert (response.status_code, response.mimetype) == (500, "application/problem+json")


# --- the app's own generic handlers ----------------------------------------------------


def add_generic_handler(app: Flask, exception: type[Exception]) -> list[BaseException]:
    seen: list[BaseException] = []

    def mine(error: Exception) -> tuple[str, int]:
        seen.append(error)
        code = error.code if isinstance(error, HTTPException) and error.code else 500
        return f"mine {type(error).__name__}", code

    app.register_error_handler(exception, mine)
    return seen


@pytest.mark.parametrize("exception", [Exception, HTTPException])
@pytest.mark.parametrize("order", ["before-init", "after-init"])
def test_app_generic_handler_receives_http_errors(exception: type[Exception], order: str) -> None:
    app = plain_app(observe=False, PROPAGATE_EXCEPTIONS=False)
    if order == "before-init":
        seen = add_generic_handler(app, exception)
        Observe(app)
    else:
        Observe(app)
        seen = add_generic_handler(app, exception)
    client = app.test_client()
    missing = client.get("/nowhere")
    assert (missing.status_code, missing.get_data()) == (404, b"mine NotFound")
    aborted = client.get("/abort/500")
    assert (aborted.status_code, aborted.get_data()) == (500, b"mine InternalServerError")
    assert [type(e) for e in seen] == [NotFound, InternalServerError]


def test_app_exception_handler_still_sees_unhandled_errors_first() -> None:
    app = plain_app(PROPAGATE_EXCEPTIONS=False)
    seen = add_generic_handler(app, Exception)
    response = app.test_client().get("/boom")
    assert response.get_data() == b"mine RuntimeError"
    assert [type(e) for e in seen] == [RuntimeError]


def test_blueprint_generic_handler_wins_for_its_routes() -> None:
    from flask import Blueprint

    app = plain_app(observe=False)
    bp = Blueprint("bp", __name__)

    @bp.get("/bp/abort")
    def bp_abort() -> str:
        abort(403)

    @bp.errorhandler(Exception)
    def bp_handler(error: Exception) -> tuple[str, int]:
        return "blueprint", 418

    app.register_blueprint(bp)
    Observe(app)
    client = app.test_client()
    assert client.get("/bp/abort").get_data() == b"blueprint"
    assert client.get("/abort/403").mimetype == "application/problem+json"


# --- JSON errors off ---------------------------------------------------------------------


def test_json_errors_off_registers_nothing_on_the_error_path() -> None:
    app = plain_app(OBSERVE_JSON_ERRORS=False)
    assert our_handlers(app) == []
    plain = plain_app(observe=False).test_client()
    client = app.test_client()
    for path in ("/nowhere", "/abort/503"):
        assert client.get(path).get_data() == plain.get(path).get_data()


def test_json_errors_off_with_sentry_registers_only_the_capturing_handler() -> None:
    app = plain_app(OBSERVE_JSON_ERRORS=False, OBSERVE_SENTRY_DSN=closed_port_dsn())
    assert our_handlers(app) == [handle_http_exception]
    plain = plain_app(observe=False).test_client()
    response = app.test_client().get("/nowhere")
    assert response.get_data() == plain.get("/nowhere").get_data()  # Flask's own page


def test_json_errors_off_with_sentry_keeps_trapping_and_app_handlers() -> None:
    app = plain_app(OBSERVE_JSON_ERRORS=False, OBSERVE_SENTRY_DSN=closed_port_dsn(), TESTING=True)
    seen = add_generic_handler(app, Exception)
    assert app.test_client().get("/nowhere").get_data() == b"mine NotFound"
    assert [type(e) for e in seen] == [NotFound]
    trapping = plain_app(
        OBSERVE_JSON_ERRORS=False,
        OBSERVE_SENTRY_DSN=closed_port_dsn(),
        TESTING=True,
        TRAP_HTTP_EXCEPTIONS=True,
    )
    with pytest.raises(NotFound):
        trapping.test_client().get("/nowhere")


def test_json_errors_on_is_still_the_default_body() -> None:
    response = plain_app().test_client().get("/nowhere")
    body = json.loads(response.get_data())
    assert (response.mimetype, body["status"]) == ("application/problem+json", 404)
