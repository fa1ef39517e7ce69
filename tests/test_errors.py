"""JSON problem errors: every failure kind, APIError, register_error, custom bodies, the
last-resort path, and the secrets masked in a body's detail (no Sentry here: see
``tests/sentry/``)."""

from __future__ import annotations

import json
import logging
import sys
import typing as t

import pytest
from flask import abort
from flask import Blueprint
from flask import Flask
from flask import got_request_exception
from flask import request
from flask import Response
from flask.json.provider import DefaultJSONProvider
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError
from werkzeug.exceptions import ServiceUnavailable
from werkzeug.exceptions import Unauthorized

from flask_observe import APIError
from flask_observe import ConfigError
from flask_observe import current_record
from flask_observe import Observe
from flask_observe import RequestRecord
from flask_observe.errors import _add_event_id_header
from flask_observe.errors import _capture_for_other
from flask_observe.errors import handle_mapped_exception
from flask_observe.extension import get_state
from tests.support.apps import make_app
from tests.support.sentry import EnvelopeReceiver
from tests.support.sentry import flush

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from werkzeug.test import TestResponse

SECRET = "pw-Zq81xV"

#: The detail of an unhandled error, as clients read it.
GENERIC_DETAIL = "The server encountered an internal error and could not complete your request."


class DoesNotExist(Exception):
    pass


class UserMissing(DoesNotExist):
    pass


class UpstreamDown(Exception):
    pass


class BadStr(Exception):
    def __str__(self) -> str:
        raise ValueError("no str for you")

    def __repr__(self) -> str:
        raise ValueError("no repr either")


def build_app(observe: bool = True, **config: object) -> Flask:
    """An app with one route per failure kind (unhandled errors answer 500)."""
    settings: dict[str, t.Any] = {"TESTING": False, "PROPAGATE_EXCEPTIONS": False, **config}
    return make_app(add_failure_routes, observe=observe, name="errors_app", **settings)


def add_failure_routes(app: Flask) -> None:
    @app.get("/ok")
    def ok() -> str:
        return "ok"

    @app.route("/only-get", methods=["GET"])
    def only_get() -> str:
        return "get"

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> str:
        abort(404, description=f"No item {item_id}.")

    @app.post("/json")
    def takes_json() -> dict[str, t.Any]:
        return {"got": request.get_json()}

    @app.get("/slash/")
    def slash() -> str:
        return "slash"

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError(f"postgres://user:{SECRET}@db/x")

    @app.get("/bad-str")
    def bad_str() -> str:
        raise BadStr()

    @app.get("/not-serialisable")
    def not_serialisable() -> t.Any:
        return object()

    @app.get("/set-in-dict")
    def set_in_dict() -> t.Any:
        return {"values": {1, 2}}

    @app.get("/abort-response")
    def abort_response() -> str:
        abort(Response("teapot says no", status=418, headers={"X-Custom": "1"}))

    @app.get("/abort/<int:code>")
    def abort_code(code: int) -> str:
        abort(code)

    @app.get("/retry")
    def retry() -> str:
        raise ServiceUnavailable(retry_after=30)

    @app.get("/auth")
    def auth() -> str:
        raise Unauthorized(www_authenticate=WWWAuthenticate("bearer", {"realm": "api"}))

    @app.get("/api-error")
    def api_error() -> str:
        raise APIError("Numbers must be integers", status=422, field="numbers", hint=[1, 2])

    @app.get("/api-error-5xx")
    def api_error_5xx() -> str:
        raise APIError("Payment backend refused", status=502)

    @app.get("/missing")
    def missing() -> str:
        raise UserMissing("No user 7")

    @app.get("/missing-bad-str")
    def missing_bad_str() -> str:
        raise type("Gone", (DoesNotExist, BadStr), {})()

    @app.get("/upstream")
    def upstream() -> str:
        raise UpstreamDown("internal host 10.0.0.7 refused")


def problem(response: TestResponse) -> dict[str, t.Any]:
    assert response.mimetype == "application/problem+json", response.get_data(as_text=True)
    body = json.loads(response.get_data())
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize(
    ("method", "path", "status", "detail"),
    [
        pytest.param("GET", "/nowhere", 404, None, id="unknown-path"),
        pytest.param("POST", "/only-get", 405, None, id="method-not-allowed"),
        pytest.param("GET", "/items/3", 404, "No item 3.", id="abort-404-description"),
        pytest.param("GET", "/abort/403", 403, None, id="abort-403"),
        pytest.param("GET", "/abort/503", 503, None, id="abort-503"),
        pytest.param("GET", "/abort/500", 500, None, id="abort-500"),
        pytest.param("GET", "/boom", 500, GENERIC_DETAIL, id="unhandled"),
    ],
)
def test_every_error_is_problem_json(
    method: str, path: str, status: int, detail: str | None
) -> None:
    response = build_app().test_client().open(path, method=method)
    body = problem(response)
    assert response.status_code == status
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert isinstance(body["detail"], str) and body["detail"]
    if detail is not None:
        assert body["detail"] == detail
    assert "event_id" not in body  # nothing captured without Sentry
    assert "X-Runtime" in response.headers  # the timing middleware still saw it


def test_titles_are_the_status_phrases() -> None:
    client = build_app().test_client()
    assert problem(client.get("/nowhere"))["title"] == "Not Found"
    assert problem(client.post("/only-get"))["title"] == "Method Not Allowed"
    assert problem(client.get("/boom"))["title"] == "Internal Server Error"


def test_malformed_json_is_400_problem() -> None:
    response = (
        build_app().test_client().post("/json", data=b'{"name": ', content_type="application/json")
    )
    assert response.status_code == 400
    body = problem(response)
    assert body["status"] == 400
    assert body["title"] == "Bad Request"


def test_405_keeps_allow() -> None:
    response = build_app().test_client().post("/only-get")
    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS"}
    problem(response)


def test_retry_after_and_www_authenticate_are_kept() -> None:
    client = build_app().test_client()
    retry = client.get("/retry")
    assert retry.status_code == 503
    assert retry.headers["Retry-After"] == "30"
    problem(retry)
    auth = client.get("/auth")
    assert auth.status_code == 401
    assert auth.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert "realm=api" in auth.headers["WWW-Authenticate"].replace('"', "")
    problem(auth)


def test_unhandled_500_leaks_nothing() -> None:
    response = build_app().test_client().get("/boom")
    assert response.status_code == 500
    body = problem(response)
    assert body["detail"] == GENERIC_DETAIL
    text = response.get_data(as_text=True)
    for leak in (SECRET, "postgres", "RuntimeError", "Traceback"):
        assert leak not in text
    assert SECRET not in str(response.headers)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/bad-str", id="raising-str-and-repr"),
        pytest.param("/not-serialisable", id="object-return"),
        pytest.param("/set-in-dict", id="set-in-json"),
    ],
)
def test_odd_failures_are_generic_500(path: str) -> None:
    response = build_app().test_client().get(path)
    assert response.status_code == 500
    assert problem(response)["detail"] == GENERIC_DETAIL


def test_debug_mode_shows_the_exception_text() -> None:
    app = build_app(DEBUG=True, PROPAGATE_EXCEPTIONS=False)
    client = app.test_client()
    assert problem(client.get("/boom"))["detail"] == "RuntimeError: postgres://[Filtered]@db/x"
    # a raising __str__ degrades to the class name, never to the last resort
    assert problem(client.get("/bad-str"))["detail"] == "BadStr"


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"TESTING": True}, id="testing"),
        pytest.param({"DEBUG": True}, id="debug"),
        pytest.param({"PROPAGATE_EXCEPTIONS": True}, id="explicit"),
    ],
)
def test_propagate_exceptions_reraises_like_plain_flask(config: dict[str, object]) -> None:
    app = build_app()
    app.config.update({"PROPAGATE_EXCEPTIONS": None, **config})
    client = app.test_client()
    with pytest.raises(RuntimeError, match="postgres"):
        client.get("/boom")
    # HTTP errors are still answered as problems
    assert client.get("/nowhere").status_code == 404
    problem(client.get("/nowhere"))


def test_abort_response_passes_through_untouched() -> None:
    response = build_app().test_client().get("/abort-response")
    assert response.status_code == 418
    assert response.get_data() == b"teapot says no"
    assert response.headers["X-Custom"] == "1"
    assert response.mimetype == "text/html"


def test_slash_redirect_passes_through_untouched() -> None:
    response = build_app().test_client().get("/slash")
    assert response.status_code == 308
    assert response.headers["Location"].endswith("/slash/")
    assert response.mimetype == "text/html"


def test_json_errors_off_answers_like_plain_flask() -> None:
    ours = build_app(OBSERVE_JSON_ERRORS=False).test_client()
    plain = build_app(observe=False).test_client()
    for path in ("/nowhere", "/boom", "/items/3"):
        a, b = ours.get(path), plain.get(path)
        assert (a.status_code, a.mimetype, a.get_data()) == (
            b.status_code,
            b.mimetype,
            b.get_data(),
        )
    assert ours.post("/only-get").headers["Allow"] == plain.post("/only-get").headers["Allow"]


def test_user_handlers_for_specific_errors_win() -> None:
    app = build_app()

    @app.errorhandler(404)
    def not_found(error: Exception) -> tuple[str, int]:
        return "custom 404", 404

    @app.errorhandler(RuntimeError)
    def runtime(error: Exception) -> tuple[str, int]:
        return "custom runtime", 503

    client = app.test_client()
    assert client.get("/nowhere").get_data() == b"custom 404"
    boom = client.get("/boom")
    assert (boom.status_code, boom.get_data()) == (503, b"custom runtime")
    # the others still get problems
    assert problem(client.post("/only-get"))["status"] == 405


def test_user_httpexception_handler_registered_first_is_kept() -> None:
    from werkzeug.exceptions import HTTPException

    app = build_app(observe=False)

    @app.errorhandler(HTTPException)
    def mine(error: HTTPException) -> tuple[str, int]:
        return "mine", error.code or 500

    Observe(app)
    assert app.test_client().get("/nowhere").get_data() == b"mine"


def test_api_error_status_detail_and_extra_members() -> None:
    response = build_app().test_client().get("/api-error")
    assert response.status_code == 422
    assert problem(response) == {
        "type": "about:blank",
        "title": "Unprocessable Entity",
        "status": 422,
        "detail": "Numbers must be integers",
        "field": "numbers",
        "hint": [1, 2],
    }


def test_api_error_5xx_keeps_its_message() -> None:
    response = build_app().test_client().get("/api-error-5xx")
    assert response.status_code == 502
    assert problem(response)["detail"] == "Payment backend refused"


def test_api_error_type_and_title_can_be_replaced() -> None:
    app = build_app()

    @app.get("/typed")
    def typed() -> str:
        raise APIError("Out of stock", status=409, type="https://example.test/out", title="Gone")

    body = problem(app.test_client().get("/typed"))
    assert (body["type"], body["title"], body["status"]) == (
        "https://example.test/out",
        "Gone",
        409,
    )


@pytest.mark.parametrize(
    "status",
    [pytest.param(200, id="2xx"), pytest.param(600, id="600"), pytest.param(True, id="bool")],
)
def test_api_error_rejects_non_error_statuses(status: t.Any) -> None:
    with pytest.raises(ValueError, match="400 to 599"):
        APIError("x", status=status)


def test_api_error_without_the_extension_is_an_html_http_error() -> None:
    response = build_app(observe=False).test_client().get("/api-error")
    assert response.status_code == 422
    assert b"Numbers must be integers" in response.get_data()


@pytest.mark.parametrize(
    "order",
    [pytest.param("before", id="before-init_app"), pytest.param("after", id="after-init_app")],
)
def test_register_error_maps_domain_exceptions(order: str) -> None:
    app = build_app(observe=False)
    observe = Observe()
    if order == "before":
        observe.register_error(DoesNotExist, 404)
        observe.register_error(UpstreamDown, 503)
        observe.init_app(app)
    else:
        observe.init_app(app)
        observe.register_error(DoesNotExist, 404)
        observe.register_error(UpstreamDown, 503)
    client = app.test_client()
    missing = client.get("/missing")  # a subclass of the mapped class
    assert missing.status_code == 404
    assert problem(missing)["detail"] == "No user 7"
    upstream = client.get("/upstream")
    assert upstream.status_code == 503
    assert problem(upstream)["detail"] == GENERIC_DETAIL  # 5xx: the text may be internal
    assert "10.0.0.7" not in upstream.get_data(as_text=True)
    # a raising __str__ falls back to the status description
    gone = client.get("/missing-bad-str")
    assert gone.status_code == 404
    assert problem(gone)["detail"] == "Not Found"


def test_register_error_applies_to_every_app_of_the_extension() -> None:
    observe = Observe()
    apps = [build_app(observe=False) for _ in range(3)]
    observe.init_app(apps[0])
    observe.register_error(DoesNotExist, 410)
    for app in apps[1:]:
        observe.init_app(app)
    assert [a.test_client().get("/missing").status_code for a in apps] == [410, 410, 410]
    other = build_app()  # another extension object: no mapping
    assert other.test_client().get("/missing").status_code == 500


def test_register_error_after_first_request_warns(caplog: pytest.LogCaptureFixture) -> None:
    app = build_app(observe=False)
    observe = Observe(app)
    app.test_client().get("/ok")
    with caplog.at_level(logging.WARNING, logger="flask_observe"):
        observe.register_error(UpstreamDown, 503)
    assert "first request" in caplog.text


def test_user_handler_for_a_mapped_class_wins() -> None:
    app = build_app(observe=False)

    @app.errorhandler(DoesNotExist)
    def mine(error: Exception) -> tuple[str, int]:
        return "mine", 404

    observe = Observe()
    observe.register_error(DoesNotExist, 410)
    observe.init_app(app)
    assert app.test_client().get("/missing").get_data() == b"mine"


@pytest.mark.parametrize(
    ("exception", "status", "error"),
    [
        pytest.param(DoesNotExist(), 404, TypeError, id="instance-not-class"),
        pytest.param(int, 404, TypeError, id="not-an-exception"),
        pytest.param(DoesNotExist, 302, ValueError, id="not-an-error-status"),
        pytest.param(DoesNotExist, "404", ValueError, id="string-status"),
    ],
)
def test_register_error_validates(exception: t.Any, status: t.Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        Observe().register_error(exception, status)


def test_custom_body_builder() -> None:
    def body(problem: dict[str, t.Any]) -> dict[str, t.Any]:
        return {"error": problem["detail"], "code": problem["status"]}

    client = build_app(OBSERVE_ERROR_BODY=body).test_client()
    response = client.get("/items/9")
    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert response.get_json() == {"error": "No item 9.", "code": 404}
    assert client.post("/only-get").headers["Allow"]


def _raise(problem: dict[str, t.Any]) -> t.Any:
    raise RuntimeError("builder broke")


class BrokenProvider(DefaultJSONProvider):
    def dumps(self, obj: t.Any, **kwargs: t.Any) -> str:
        raise TypeError("provider broke")


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param(
            lambda app: app.config.update(OBSERVE_ERROR_BODY=_raise), id="raising-builder"
        ),
        pytest.param(
            lambda app: app.config.update(OBSERVE_ERROR_BODY=lambda p: {"x": object()}),
            id="unserialisable-body",
        ),
        pytest.param(lambda app: setattr(app, "json", BrokenProvider(app)), id="broken-provider"),
    ],
)
@pytest.mark.parametrize("path", ["/nowhere", "/boom", "/api-error"])
def test_failure_inside_our_handler_gives_constant_500(
    setup: Callable[[Flask], None], path: str, caplog: pytest.LogCaptureFixture
) -> None:
    app = build_app(observe=False)
    setup(app)
    Observe(app)
    with caplog.at_level(logging.WARNING, logger="flask_observe"):
        response = app.test_client().get(path)
    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    assert json.loads(response.get_data()) == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": GENERIC_DETAIL,
    }
    assert not any(r.levelno >= logging.ERROR and r.name == "flask_observe" for r in caplog.records)
    ours = [r for r in caplog.records if r.name == "flask_observe"]
    assert [(r.levelname, r.getMessage()) for r in ours] == [
        ("WARNING", "Flask-Observe could not build an error body")
    ]
    assert ours[0].exc_info and ours[0].exc_info[0] is not None  # with the traceback


def test_the_constant_500_carries_the_event_id(receiver: EnvelopeReceiver) -> None:
    app = build_app(observe=False, OBSERVE_SENTRY_DSN=receiver.dsn, OBSERVE_ERROR_BODY=_raise)
    Observe(app)
    response = app.test_client().get("/boom")
    assert response.status_code == 500
    event_id = response.headers["X-Sentry-Event-Id"]
    flush()
    assert [e["event_id"] for e in receiver.wait_for_events(1)] == [event_id]


def test_exception_is_noted_on_the_record() -> None:
    app = build_app()
    records: list[RequestRecord | None] = []

    @app.before_request
    def keep() -> None:
        records.append(current_record())

    client = app.test_client()
    observe = app.extensions["observe"].extension
    observe.register_error(DoesNotExist, 404)  # app not yet used: allowed

    def exception_of(path: str) -> BaseException | None:
        records.clear()
        client.get(path)
        record = records[0]
        assert record is not None
        return record.exception

    assert isinstance(exception_of("/boom"), RuntimeError)
    assert isinstance(exception_of("/api-error"), APIError)
    assert isinstance(exception_of("/missing"), UserMissing)
    assert exception_of("/nowhere") is None
    assert exception_of("/items/1") is None
    assert exception_of("/abort/503") is None


def test_internal_server_error_from_a_view_is_a_problem() -> None:
    app = build_app()

    @app.get("/ise")
    def ise() -> str:
        raise InternalServerError(description="Ledger closed for the night.")

    body = problem(app.test_client().get("/ise"))
    assert (body["status"], body["detail"]) == (500, "Ledger closed for the night.")


def test_many_apps_one_process(make_app: Callable[..., Flask]) -> None:
    bodies = set()
    for index in range(50):
        app = make_app(OBSERVE_ERROR_BODY=(lambda p, i=index: {"app": i}) if index % 2 else None)
        response = app.test_client().get("/nowhere")
        assert response.status_code == 404
        bodies.add(response.get_data())
    assert len(bodies) == 26  # 25 custom bodies and the one problem body


def test_invalid_dsn_fails_at_init() -> None:
    with pytest.raises(ConfigError, match="OBSERVE_SENTRY_DSN"):
        build_app(OBSERVE_SENTRY_DSN="not a dsn")


# --- secrets in the detail ------------------------------------------------------------


class LookupFailed(Exception):
    """A domain exception mapped to 404."""


def body_app(**config: object) -> Flask:
    app = Flask("body_secrets")
    app.config.update(PROPAGATE_EXCEPTIONS=False, **config)
    observe = Observe()
    observe.register_error(LookupFailed, 404)
    observe.init_app(app)

    @app.get("/db")
    def db() -> str:
        raise RuntimeError("cannot reach postgres://app:hunter2@db/x (ssn=078-05-1120)")

    @app.get("/lookup")
    def lookup() -> str:
        raise LookupFailed("no user for api_key=k-4242 at https://admin:pw9@idp/x")

    @app.get("/api")
    def api() -> str:
        raise APIError("token: expected 32 characters", status=400)

    return app


def test_debug_detail_masks_the_exceptions_secrets() -> None:
    app = body_app(DEBUG=True, OBSERVE_SCRUB_KEYS=["ssn"])
    response = app.test_client().get("/db")
    assert response.status_code == 500
    assert response.json is not None
    assert response.json["detail"] == (
        "RuntimeError: cannot reach postgres://[Filtered]@db/x (ssn=[Filtered])"
    )


def test_mapped_exception_detail_masks_its_secrets() -> None:
    response = body_app().test_client().get("/lookup")
    assert response.status_code == 404
    assert response.json is not None
    assert response.json["detail"] == "no user for api_key=[Filtered] https://[Filtered]@idp/x"


def test_a_message_written_for_the_client_is_kept() -> None:
    response = body_app().test_client().get("/api")
    assert response.status_code == 400
    assert response.json is not None
    assert response.json["detail"] == "token: expected 32 characters"


def test_an_abort_5xx_answered_by_the_apps_generic_handler_is_captured(
    receiver: EnvelopeReceiver,
) -> None:
    """The app's ``Exception`` handler answers HTTP errors too; Flask-Observe still
    captures each ``abort(5xx)`` (as handled), and neither a 4xx nor an aborted
    response the view made itself."""
    app = Flask("own_handler")
    app.config.update(PROPAGATE_EXCEPTIONS=False, OBSERVE_SENTRY_DSN=receiver.dsn)

    @app.get("/abort/<int:code>")
    def aborting(code: int) -> str:
        abort(code)

    @app.get("/answered")
    def answered() -> str:
        abort(Response("made by the view", status=500))

    app.register_error_handler(Exception, lambda e: (f"our page for {e.code}", e.code))
    Observe(app)
    client = app.test_client()
    for path, body in [
        ("/abort/404", "our page for 404"),
        ("/answered", "made by the view"),
        ("/abort/503", "our page for 503"),
        ("/abort/500", "our page for 500"),
    ]:
        assert client.get(path).get_data(as_text=True) == body
    flush()
    receiver.wait_for_events(2)
    flush()  # the 404 and the view's own 500 came first: had they been captured, here
    got = [
        (e["transaction"], e["exception"]["values"][-1]["mechanism"]["handled"])
        for e in receiver.events
    ]
    assert got == [("aborting", True), ("aborting", True)]
    assert [e["exception"]["values"][-1]["type"] for e in receiver.events] == [
        "ServiceUnavailable",
        "InternalServerError",
    ]


def test_an_api_error_survives_pickling() -> None:
    """As when it crosses a process boundary (a task queue, multiprocessing)."""
    import pickle

    error = pickle.loads(pickle.dumps(APIError("Out of stock", 409, sku="B-7")))
    assert isinstance(error, APIError)
    assert (error.message, error.code, error.extra) == ("Out of stock", 409, {"sku": "B-7"})


def test_api_error_status_bounds() -> None:
    assert APIError("Bad input").code == 400
    assert [APIError("x", status).code for status in (400, 599)] == [400, 599]
    for status in (399, 600, True):
        with pytest.raises(ValueError, match="APIError needs a status from 400 to 599"):
            APIError("x", status)


def test_a_5xx_with_the_views_own_response_is_not_captured_by_the_apps_handler(
    receiver: EnvelopeReceiver,
) -> None:
    """``abort(503, response=...)``: the view made the answer itself, so it is not
    captured, whoever answers it (the app's generic handler here), as with ours."""
    app = Flask("own_response")
    app.config.update(PROPAGATE_EXCEPTIONS=False, OBSERVE_SENTRY_DSN=receiver.dsn)

    @app.get("/busy")
    def busy() -> str:
        abort(503, response=Response("made by the view", status=503))

    @app.get("/down")
    def down() -> str:
        abort(503)

    app.register_error_handler(Exception, lambda e: (f"our page for {e.code}", e.code))
    Observe(app)
    client = app.test_client()
    answered = client.get("/busy")
    assert (answered.status_code, answered.get_data(as_text=True)) == (503, "our page for 503")
    assert "X-Sentry-Event-Id" not in answered.headers
    marker = client.get("/down").headers["X-Sentry-Event-Id"]
    flush()  # everything captured so far is sent: /busy's event would be there first
    assert [e["event_id"] for e in receiver.events] == [marker]


def test_an_error_in_the_apps_error_handler_is_captured_once_as_unhandled(
    receiver: EnvelopeReceiver,
) -> None:
    """The app's generic handler fails on one error: Flask reports the failure as
    unhandled (captured then) and answers a 500, which the same handler (chosen by
    Flask-Observe's handler) renders; that 500 is not captured a second time."""
    app = Flask("failing_handler")
    app.config.update(PROPAGATE_EXCEPTIONS=False, OBSERVE_SENTRY_DSN=receiver.dsn)
    records: list[RequestRecord] = []

    @app.get("/lookup")
    def lookup() -> str:
        raise KeyError("sku")

    def page(error: Exception) -> tuple[str, int]:
        if isinstance(error, KeyError):
            raise RuntimeError("the error page failed")
        return f"our page for {getattr(error, 'code', 500)}", 500

    app.register_error_handler(Exception, page)
    Observe(app)
    get_state(app).add_finish_hook(records.append)
    response = app.test_client().get("/lookup")
    assert (response.status_code, response.get_data(as_text=True)) == (500, "our page for 500")
    event_id = response.headers["X-Sentry-Event-Id"]
    assert [record.event_id for record in records] == [event_id]
    flush()  # everything captured in the request is sent: a second capture would be here
    got = [
        (
            e["event_id"],
            e["exception"]["values"][-1]["type"],
            e["exception"]["values"][-1]["mechanism"]["handled"],
        )
        for e in receiver.events
    ]
    assert got == [(event_id, "RuntimeError", False)]


def test_an_abort_5xx_the_apps_handler_answers_has_its_event_id_on_the_record(
    receiver: EnvelopeReceiver,
) -> None:
    app = Flask("own_handler_record")
    app.config.update(PROPAGATE_EXCEPTIONS=False, OBSERVE_SENTRY_DSN=receiver.dsn)
    records: list[RequestRecord] = []

    @app.get("/down")
    def down() -> str:
        abort(503)

    app.register_error_handler(Exception, lambda e: (f"our page for {e.code}", e.code))
    Observe(app)
    get_state(app).add_finish_hook(records.append)
    response = app.test_client().get("/down")
    assert response.get_data(as_text=True) == "our page for 503"
    assert [record.event_id for record in records] == [response.headers["X-Sentry-Event-Id"]]


def test_handle_mapped_exception_answers_500_for_a_class_not_in_the_map(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The handler is public: registered by the app for a class no ``register_error``
    mapped, it answers a generic 500 problem, and nothing is logged as failed."""
    app = build_app()
    app.register_error_handler(UpstreamDown, handle_mapped_exception)
    with caplog.at_level(logging.WARNING, logger="flask_observe"):
        response = app.test_client().get("/upstream")
    assert response.status_code == 500
    assert problem(response) == {
        "type": "about:blank",
        "title": "Internal Server Error",
        "status": 500,
        "detail": GENERIC_DETAIL,
    }
    assert [r.getMessage() for r in caplog.records if r.name == "flask_observe"] == []


def test_the_constant_500_has_no_event_id_header_when_nothing_was_captured() -> None:
    app = build_app(observe=False, OBSERVE_ERROR_BODY=_raise)
    Observe(app)
    response = app.test_client().get("/nowhere")
    assert response.status_code == 500
    assert response.get_data() == (
        b'{"type":"about:blank","title":"Internal Server Error","status":500,'
        b'"detail":"The server encountered an internal error and could not complete '
        b'your request."}'
    )
    assert "X-Sentry-Event-Id" not in response.headers


def returns(function: Callable[[t.Any], None], argument: object) -> bool:
    """Whether ``function(argument)`` returned (a raise fails the test)."""
    function(argument)
    return True


#: The response an app's own error handler made, handed to the event-id header step.
APP_PAGE = Response("page", status=503)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        pytest.param(
            lambda: returns(_capture_for_other, ServiceUnavailable()),
            "Flask-Observe could not capture an error",
            id="capture-for-the-apps-handler",
        ),
        pytest.param(
            lambda: _add_event_id_header(APP_PAGE) is APP_PAGE,
            "Flask-Observe could not add the event id",
            id="event-id-header",
        ),
    ],
)
def test_a_failing_error_path_step_is_logged_with_its_traceback_and_never_raises(
    caplog: pytest.LogCaptureFixture, step: Callable[[], bool], message: str
) -> None:
    """Called for an app whose errors are not set up (they fail there): a WARNING with
    the traceback, and the request goes on (the step returns, the response unchanged)."""
    app = Flask("not_set_up")
    with app.test_request_context("/"), caplog.at_level(logging.WARNING, "flask_observe"):
        assert step()
    ours = [r for r in caplog.records if r.name == "flask_observe"]
    assert [(r.levelname, r.getMessage()) for r in ours] == [("WARNING", message)]
    assert ours[0].exc_info is not None and ours[0].exc_info[0] is RuntimeError
    assert str(ours[0].exc_info[1]) == "Flask-Observe errors are not set up on this app."
    assert "X-Sentry-Event-Id" not in APP_PAGE.headers


def test_an_error_reported_outside_a_request_is_logged_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``got_request_exception`` sent with no request (by hand, from a CLI command, say):
    the receiver cannot note it, logs a WARNING with the traceback, and raises nothing
    into the sender."""
    app = build_app()
    with app.app_context(), caplog.at_level(logging.WARNING, "flask_observe"):
        got_request_exception.send(app, exception=KeyError("k"))
    ours = [r for r in caplog.records if r.name == "flask_observe"]
    assert [(r.levelname, r.getMessage()) for r in ours] == [
        ("WARNING", "Flask-Observe could not note an error")
    ]
    assert ours[0].exc_info is not None and ours[0].exc_info[0] is RuntimeError


def test_an_unhandled_errors_event_id_is_on_the_record(receiver: EnvelopeReceiver) -> None:
    app = build_app(OBSERVE_SENTRY_DSN=receiver.dsn)
    records: list[RequestRecord] = []
    get_state(app).add_finish_hook(records.append)
    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert [record.event_id for record in records] == [response.headers["X-Sentry-Event-Id"]]


def test_a_status_without_a_standard_phrase_is_titled_unknown_error() -> None:
    app = build_app()

    @app.get("/nonstandard")
    def nonstandard() -> str:
        raise APIError("Upstream said no", status=599)

    assert problem(app.test_client().get("/nonstandard")) == {
        "type": "about:blank",
        "title": "Unknown Error",
        "status": 599,
        "detail": "Upstream said no",
    }


def test_an_error_on_an_excluded_path_is_answered_and_captured_without_a_record(
    receiver: EnvelopeReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """``OBSERVE_EXCLUDE_PATHS``: no request record, and the error path works the same."""
    app = build_app(OBSERVE_EXCLUDE_PATHS=["/boom"], OBSERVE_SENTRY_DSN=receiver.dsn)
    with caplog.at_level(logging.WARNING, "flask_observe"):
        response = app.test_client().get("/boom")
    body = problem(response)
    assert (response.status_code, body["detail"]) == (500, GENERIC_DETAIL)
    assert body["event_id"] == response.headers["X-Sentry-Event-Id"]
    assert [r.getMessage() for r in caplog.records if r.name == "flask_observe"] == []
    flush()
    assert [e["event_id"] for e in receiver.wait_for_events(1)] == [body["event_id"]]


def test_an_unhandled_error_the_apps_500_page_answers_is_noted_on_the_record() -> None:
    """The app's own ``errorhandler(500)`` answers instead of Flask-Observe's handler: the
    exception still reaches the record (the metrics' exception counter)."""
    app = build_app()
    app.register_error_handler(500, lambda e: ("our 500 page", 500))
    records: list[RequestRecord] = []
    get_state(app).add_finish_hook(records.append)
    response = app.test_client().get("/boom")
    assert response.get_data(as_text=True) == "our 500 page"
    assert [type(record.exception) for record in records] == [RuntimeError]


def test_extra_members_cannot_replace_the_detail_or_forge_an_event_id() -> None:
    app = build_app()

    @app.get("/forged")
    def forged() -> str:
        raise APIError("Out of stock", 409, detail="Anything", event_id="f" * 32, sku="B-7")

    assert problem(app.test_client().get("/forged")) == {
        "type": "about:blank",
        "title": "Conflict",
        "status": 409,
        "detail": "Out of stock",
        "sku": "B-7",
    }


class Nameless(Exception):
    """Mapped to 499, a status with no standard phrase; raised without a message."""


def test_an_empty_message_falls_back_to_the_status_phrase_or_unknown_error() -> None:
    observe = Observe()
    observe.register_error(Nameless, 499)
    app = build_app(observe=False)
    observe.init_app(app)

    @app.get("/empty-api-error")
    def empty_api_error() -> str:
        raise APIError("", status=422)

    @app.get("/nameless")
    def nameless() -> str:
        raise Nameless()

    client = app.test_client()
    assert problem(client.get("/empty-api-error"))["detail"] == "Unprocessable Entity"
    assert problem(client.get("/nameless")) == {
        "type": "about:blank",
        "title": "Unknown Error",
        "status": 499,
        "detail": "Unknown Error",
    }


def test_without_sentry_sdk_errors_are_answered_with_no_event_id(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """sentry-sdk not installed (nothing to capture with): the same problems, no
    ``event_id`` member or header, and nothing logged as failed."""
    with monkeypatch.context() as patch, caplog.at_level(logging.WARNING, "flask_observe"):
        patch.setitem(sys.modules, "sentry_sdk", None)  # import fails, as when missing
        client = build_app().test_client()
        responses = [client.get("/boom"), client.get("/abort/503"), client.get("/nowhere")]
    assert [problem(response) for response in responses] == [
        {
            "type": "about:blank",
            "title": "Internal Server Error",
            "status": 500,
            "detail": GENERIC_DETAIL,
        },
        {
            "type": "about:blank",
            "title": "Service Unavailable",
            "status": 503,
            "detail": (
                "The server is temporarily unable to service your request due to maintenance "
                "downtime or capacity problems. Please try again later."
            ),
        },
        {
            "type": "about:blank",
            "title": "Not Found",
            "status": 404,
            "detail": (
                "The requested URL was not found on the server. If you entered the URL "
                "manually please check your spelling and try again."
            ),
        },
    ]
    assert not any("X-Sentry-Event-Id" in response.headers for response in responses)
    assert [r.getMessage() for r in caplog.records if r.name == "flask_observe"] == []


def test_an_abort_5xx_our_handler_answers_has_its_event_id_on_the_record(
    receiver: EnvelopeReceiver,
) -> None:
    app = build_app(OBSERVE_SENTRY_DSN=receiver.dsn)
    records: list[RequestRecord] = []
    get_state(app).add_finish_hook(records.append)
    response = app.test_client().get("/abort/503")
    assert problem(response)["status"] == 503
    assert [record.event_id for record in records] == [response.headers["X-Sentry-Event-Id"]]


BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_an_html_answer_to_a_mapped_exception_shows_what_the_detail_would() -> None:
    """A browser gets Flask's HTML page; its text is the problem ``detail``: the
    message of a 4xx (the status phrase without one), the generic text of a 5xx."""
    observe = Observe()
    observe.register_error(DoesNotExist, 404)
    observe.register_error(UpstreamDown, 502)
    observe.register_error(Nameless, 499)
    app = build_app(observe=False)
    observe.init_app(app)

    @app.get("/nameless")
    def nameless() -> str:
        raise Nameless()

    client = app.test_client()
    page = client.get("/nameless", headers=BROWSER)
    assert (page.status_code, page.mimetype) == (499, "text/html")
    assert "<p>Unknown Error</p>" in page.get_data(as_text=True)  # no message: the phrase
    missing = client.get("/missing", headers=BROWSER)
    assert (missing.status_code, missing.mimetype) == (404, "text/html")
    assert "<p>No user 7</p>" in missing.get_data(as_text=True)
    upstream = client.get("/upstream", headers=BROWSER)
    assert (upstream.status_code, upstream.mimetype) == (502, "text/html")
    assert f"<p>{GENERIC_DETAIL}</p>" in upstream.get_data(as_text=True)
    assert "10.0.0.7" not in upstream.get_data(as_text=True)


class Teapot(HTTPException):
    """An HTTP error class of the app's own, with no description."""

    code = 418


def test_an_html_answer_to_the_apps_own_http_error_is_plain_flasks_page() -> None:
    pages = []
    for observe in (False, True):
        app = build_app(observe=observe)

        @app.get("/teapot")
        def teapot() -> str:
            raise Teapot()

        response = app.test_client().get("/teapot", headers=BROWSER)
        pages.append((response.status_code, response.get_data(as_text=True)))
    assert pages[0][0] == 418
    assert pages[1] == pages[0]


def test_a_5xx_with_the_views_own_response_passes_through_untouched_and_uncaptured(
    receiver: EnvelopeReceiver,
) -> None:
    app = build_app(OBSERVE_SENTRY_DSN=receiver.dsn)

    @app.get("/busy")
    def busy() -> str:
        abort(503, response=Response("made by the view", status=503, mimetype="text/plain"))

    client = app.test_client()
    answered = client.get("/busy")
    assert (answered.status_code, answered.get_data(as_text=True)) == (503, "made by the view")
    assert "X-Sentry-Event-Id" not in answered.headers
    marker = event_id_of_problem(client.get("/abort/503"))
    flush()  # everything captured so far is sent: /busy's event would be there first
    assert [e["event_id"] for e in receiver.events] == [marker]


def event_id_of_problem(response: TestResponse) -> str:
    event_id = problem(response)["event_id"]
    assert event_id == response.headers["X-Sentry-Event-Id"]
    return str(event_id)


def test_an_unhandled_error_is_captured_whatever_the_capture_statuses(
    receiver: EnvelopeReceiver,
) -> None:
    """``OBSERVE_SENTRY_CAPTURE_STATUSES`` only picks the ``abort(5xx)`` captured."""
    app = build_app(OBSERVE_SENTRY_DSN=receiver.dsn, OBSERVE_SENTRY_CAPTURE_STATUSES=[503])
    client = app.test_client()
    aborted = client.get("/abort/500")
    assert "event_id" not in problem(aborted) and "X-Sentry-Event-Id" not in aborted.headers
    event_id = event_id_of_problem(client.get("/boom"))
    flush()
    assert [e["event_id"] for e in receiver.events] == [event_id]


@pytest.mark.parametrize("own_handler", [False, True], ids=["ours", "apps-generic-handler"])
def test_an_error_in_a_blueprint_without_handlers_is_answered_as_in_the_app(
    own_handler: bool,
) -> None:
    """The blueprint registered no error handler: our problem answers, or the app's own
    generic handler when it has one."""
    app = Flask("with_blueprint")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    shop = Blueprint("shop", __name__)

    @shop.get("/gone")
    def gone() -> str:
        abort(404)

    app.register_blueprint(shop, url_prefix="/shop")
    if own_handler:
        app.register_error_handler(Exception, lambda e: (f"our page for {e.code}", e.code))
    Observe(app)
    response = app.test_client().get("/shop/gone")
    assert response.status_code == 404
    if own_handler:
        assert response.get_data(as_text=True) == "our page for 404"
    else:
        assert problem(response)["title"] == "Not Found"
