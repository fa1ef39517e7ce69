"""Sentry capture with the real sentry-sdk posting envelopes to a receiver on 127.0.0.1:
exactly one event per unhandled error, none for 4xx, matching event ids, no secrets, no
latency when Sentry is unreachable, and the serving thread's context left as found."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import typing as t

import pytest
import sentry_sdk
from flask import Flask

from flask_observe.sentry import drain
from tests.support.sentry import closed_port_dsn
from tests.support.sentry import EnvelopeReceiver
from tests.support.sentry import flush
from tests.support.sentry import SilentServer
from tests.support.sentry_apps import event_id_of
from tests.support.sentry_apps import PII
from tests.support.sentry_apps import pii_app

if t.TYPE_CHECKING:
    from werkzeug.test import TestResponse


def test_unhandled_error_is_captured_exactly_once(receiver: EnvelopeReceiver) -> None:
    app = pii_app(OBSERVE_SENTRY_DSN=receiver.dsn)
    response = app.test_client().get("/boom?page=2")
    assert response.status_code == 500
    event_id = event_id_of(response)
    assert json.loads(response.get_data())["detail"] == (
        "The server encountered an internal error and could not complete your request."
    )
    flush()
    events = receiver.wait_for_events(1)
    assert len(events) == 1
    event = events[0]
    assert event["event_id"] == event_id
    assert event["transaction"] == "boom"
    assert event["tags"]["route"] == "/boom"
    assert event["tags"]["endpoint"] == "boom"
    assert event["request"]["method"] == "GET"
    assert event["request"]["url"] == "http://localhost/boom"
    assert event["request"]["query_string"] == "page=2"
    assert event["request"]["headers"]["Host"] == "localhost"
    exception = event["exception"]["values"][-1]
    assert exception["type"] == "RuntimeError"
    assert exception["mechanism"] == {"type": "flask_observe", "handled": False}
    assert PII["url_password"] not in json.dumps(event)
    assert "postgres://[Filtered]@db/x" in exception["value"]
    assert receiver.paths == ["/api/1/envelope/"]


def test_captured_under_propagate_exceptions(receiver: EnvelopeReceiver) -> None:
    app = pii_app(OBSERVE_SENTRY_DSN=receiver.dsn, TESTING=True, PROPAGATE_EXCEPTIONS=None)
    with pytest.raises(RuntimeError):
        app.test_client().get("/boom")
    flush()
    assert len(receiver.wait_for_events(1)) == 1


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        pytest.param("GET", "/nowhere", None, id="404"),
        pytest.param("POST", "/ok", None, id="405"),
        pytest.param("POST", "/json", b'{"a": ', id="malformed-json-400"),
        pytest.param("GET", "/abort/403", None, id="abort-403"),
        pytest.param("GET", "/abort/429", None, id="abort-429"),
        pytest.param("GET", "/api-error", None, id="api-error-400"),
        pytest.param("GET", "/ok", None, id="success"),
    ],
)
def test_4xx_are_never_captured(
    receiver: EnvelopeReceiver, method: str, path: str, data: bytes | None
) -> None:
    app = pii_app(OBSERVE_SENTRY_DSN=receiver.dsn)
    response = app.test_client().open(
        path, method=method, data=data, content_type="application/json"
    )
    assert response.status_code < 500
    assert "X-Sentry-Event-Id" not in response.headers
    assert "event_id" not in response.get_data(as_text=True)
    # a capture after it proves the transport works and that nothing came before
    app.test_client().get("/boom")
    flush()
    events = receiver.wait_for_events(1)
    assert [e["transaction"] for e in events] == ["boom"]


@pytest.mark.parametrize(
    ("config", "code", "captured"),
    [
        pytest.param({}, 500, True, id="500-default"),
        pytest.param({}, 503, True, id="503-default"),
        pytest.param({}, 501, False, id="501-default"),
        pytest.param({"OBSERVE_SENTRY_CAPTURE_STATUSES": [501]}, 501, True, id="501-configured"),
        pytest.param({"OBSERVE_SENTRY_CAPTURE_STATUSES": []}, 500, False, id="500-off"),
    ],
)
def test_abort_5xx_capture_is_configurable(
    receiver: EnvelopeReceiver, config: dict[str, object], code: int, captured: bool
) -> None:
    app = pii_app(OBSERVE_SENTRY_DSN=receiver.dsn, **config)
    response = app.test_client().get(f"/abort/{code}")
    assert response.status_code == code
    app.test_client().get("/boom")  # a marker event after it
    flush()
    events = receiver.wait_for_events(2 if captured else 1)
    if captured:
        assert len(events) == 2
        assert events[0]["event_id"] == event_id_of(response)
        assert events[0]["exception"]["values"][-1]["mechanism"]["handled"] is True
    else:
        assert [e["transaction"] for e in events] == ["boom"]
        assert "X-Sentry-Event-Id" not in response.headers


def test_no_secret_from_the_pii_fixture_reaches_sentry(receiver: EnvelopeReceiver) -> None:
    app = pii_app(OBSERVE_SENTRY_DSN=receiver.dsn, OBSERVE_SCRUB_KEYS=["loyalty_id"])
    body = {
        "user": "ann",
        "password": PII["password"],
        "card": {"number": PII["card"], "holder": "Ann"},
        "profile": {
            "api_key": PII["api_key"],
            "apps": [{"name": "x", "client_secret": PII["client_secret"]}],
            "loyalty_id": PII["custom"],
        },
    }
    response = app.test_client().post(
        f"/pii?api_key={PII['query_api_key']}&token={PII['query_token']}&page=3",
        json=body,
        headers={
            "Authorization": f"Bearer {PII['authorization']}",
            "Cookie": f"session={PII['cookie']}",
            "X-Api-Key": PII["x_api_key"],
            "X-Auth-Token": PII["x_auth_token"],
        },
    )
    assert response.status_code == 500
    event_id = event_id_of(response)
    flush()
    events = receiver.wait_for_events(1)
    assert [e["event_id"] for e in events] == [event_id]
    raw = receiver.raw
    for name, secret in PII.items():
        if name != "url_password":
            assert secret.encode() not in raw, name
    # the event is still useful: structure and harmless values survive
    event = events[0]
    assert event["request"]["data"]["user"] == "ann"
    assert event["request"]["data"]["card"] == "[Filtered]"
    assert event["request"]["data"]["profile"]["apps"][0]["name"] == "x"
    assert "page=3" in event["request"]["query_string"]
    assert event["request"]["headers"]["Authorization"] == "[Filtered]"


def test_event_id_header_name_is_configurable(receiver: EnvelopeReceiver) -> None:
    client = pii_app(OBSERVE_SENTRY_DSN=receiver.dsn, OBSERVE_EVENT_ID_HEADER="X-Error-Id")
    response = client.test_client().get("/boom")
    assert response.headers["X-Error-Id"] == json.loads(response.get_data())["event_id"]
    assert "X-Sentry-Event-Id" not in response.headers
    off = pii_app(OBSERVE_SENTRY_DSN=receiver.dsn, OBSERVE_EVENT_ID_HEADER=None)
    response = off.test_client().get("/boom")
    assert "event_id" in json.loads(response.get_data())
    assert "X-Sentry-Event-Id" not in response.headers


def test_json_errors_off_still_captures_with_header(receiver: EnvelopeReceiver) -> None:
    app = pii_app(OBSERVE_SENTRY_DSN=receiver.dsn, OBSERVE_JSON_ERRORS=False)
    response = app.test_client().get("/boom")
    assert response.mimetype == "text/html"
    flush()
    events = receiver.wait_for_events(1)
    assert [e["event_id"] for e in events] == [response.headers["X-Sentry-Event-Id"]]


def _timed_requests(app: Flask, count: int) -> tuple[list[float], list[TestResponse]]:
    """*count* requests to ``/boom``: the time each took, and the responses."""
    client = app.test_client()
    durations: list[float] = []
    responses: list[TestResponse] = []
    for _ in range(count):
        start = time.perf_counter()
        responses.append(client.get("/boom"))
        durations.append(time.perf_counter() - start)
    return durations, responses


@pytest.mark.parametrize("target", ["closed-port", "silent-server"])
def test_unreachable_sentry_changes_nothing_and_adds_no_latency(target: str) -> None:
    _, baseline = _timed_requests(pii_app(), 20)
    unthrottled: dict[str, t.Any] = {"OBSERVE_SENTRY_ERROR_RATE": None}  # 20 events
    if target == "closed-port":
        app = pii_app(OBSERVE_SENTRY_DSN=closed_port_dsn(), **unthrottled)
        durations, responses = _timed_requests(app, 20)
        shortest_wait = sentry_sdk.get_client().options["shutdown_timeout"]
    else:
        with SilentServer() as silent:
            app = pii_app(OBSERVE_SENTRY_DSN=silent.dsn, **unthrottled)
            durations, responses = _timed_requests(app, 20)
            shortest_wait = sentry_sdk.get_client().options["shutdown_timeout"]
            assert drain(10.0)  # every event built and handed to the SDK's transport
            sentry_sdk.get_client().close(timeout=0.1)
            assert silent.accepted >= 1  # the SDK did try to send
    for plain, ours in zip(baseline, responses, strict=True):
        assert ours.status_code == plain.status_code == 500
        body = json.loads(ours.get_data())
        assert body.pop("event_id")
        assert body == json.loads(plain.get_data())
    # Capture only enqueues. The shortest wait the SDK can impose on the network is a
    # flush (shutdown_timeout, 2 s by default; its HTTP timeouts are longer): no request
    # may come near it, on however slow a machine.
    assert max(durations) < shortest_wait / 2, max(durations)


# --- the thread's context ---------------------------------------------------------------

#: Serves a success, an unhandled error (answered by the app's own 500 handler, which
#: reads sentry_sdk.last_event_id()) and a success again in a fresh interpreter, and
#: prints what each request saw and what the main thread's context holds in between.
_CONTEXT_SCRIPT = """
import contextvars, json, sys
from flask import Flask
from flask_observe import Observe

def names():
    return sorted(var.name for var in contextvars.copy_context())

app = Flask("context")
app.config.update(json.loads(sys.argv[1]))

def last_id():  # read in a copy: sentry-sdk sets the scope it reads, if none is set
    sdk = sys.modules.get("sentry_sdk")
    return contextvars.copy_context().run(sdk.last_event_id) if sdk is not None else None

@app.get("/ok")
def ok():
    return {"vars": names(), "last": last_id()}

@app.get("/boom")
def boom():
    raise RuntimeError("boom")

@app.errorhandler(500)
def own_500(error):
    return {"vars": names(), "last": last_id()}, 500

Observe(app)
client = app.test_client()
report = {"init": names()}
report["ok"] = client.get("/ok").json
report["after_ok"] = names()
response = client.get("/boom")
report["boom"] = response.json
report["after_boom"] = names()
report["ok_again"] = client.get("/ok").json
report["after_all"] = names()
report["sdk_imported"] = "sentry_sdk" in sys.modules
print(json.dumps(report))
"""


def _context_report(**config: object) -> dict[str, t.Any]:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", _CONTEXT_SCRIPT, json.dumps(config)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return t.cast("dict[str, t.Any]", json.loads(result.stdout.splitlines()[-1]))


def test_timing_alone_never_imports_sentry_sdk() -> None:
    """Importing sentry-sdk sets three context variables in the importing thread, which
    makes each of Flask's own context changes dearer on every later request: an app
    with no Sentry configured must not pay for it, errors included."""
    report = _context_report(PROPAGATE_EXCEPTIONS=False)
    assert report["sdk_imported"] is False
    assert report["ok"]["vars"] == ["flask.app_ctx", "flask.request_ctx"]
    assert report["init"] == report["after_ok"] == report["after_all"] == []


def test_sentry_leaves_the_thread_context_as_it_found_it() -> None:
    """With a DSN, sentry-sdk is imported and initialised, and an error is captured,
    all without leaving a variable in the serving thread's context; within the
    request, sentry_sdk.last_event_id() answers the captured id, and only there."""
    report = _context_report(
        PROPAGATE_EXCEPTIONS=False,
        OBSERVE_SENTRY_DSN=closed_port_dsn(),
        OBSERVE_SENTRY_ERROR_RATE=None,
    )
    assert report["sdk_imported"] is True
    assert report["init"] == report["after_ok"] == report["after_boom"] == report["after_all"] == []
    assert report["ok"] == {"vars": ["flask.app_ctx", "flask.request_ctx"], "last": None}
    assert report["boom"]["last"] is not None and len(report["boom"]["last"]) == 32
    assert report["ok_again"]["last"] is None  # the id does not leak into the next request
