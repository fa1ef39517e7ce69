"""Events built off the request thread, the per-error throttle, the bounded queue, fork
and exit, with the real sentry-sdk posting to a loopback receiver.

The comparison with the 0.1 behaviour builds the same event in the request thread
(``benchmarks/sentry_baseline.py``, the 0.1 code path) in the same test.
"""

from __future__ import annotations

import gc
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
import typing as t
import warnings
import weakref

import pytest
import sentry_sdk
from flask import abort
from flask import Flask

from benchmarks.sentry_baseline import build_in_request
from flask_observe import ConfigError
from flask_observe import containment
from flask_observe import Observe
from flask_observe.extension import get_state
from flask_observe.record import RequestRecord
from flask_observe.sentry import events as sentry_events
from flask_observe.sentry import init_sentry
from flask_observe.sentry import SentryState
from flask_observe.sentry import worker as sentry_worker
from flask_observe.sentry.throttle import ErrorThrottle
from flask_observe.sentry.throttle import fingerprint
from flask_observe.sentry.throttle import MAX_FINGERPRINTS
from tests.support.apps import make_app
from tests.support.sentry import EnvelopeReceiver
from tests.support.sentry import flush

if t.TYPE_CHECKING:
    from werkzeug.test import TestResponse

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


def build_app(**config: object) -> Flask:
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


def sentry_state(app: Flask) -> SentryState:
    state = get_state(app).part(SentryState)
    assert state is not None
    return state


class Hold:
    """A ``before_send`` that keeps the events of ``/blocker`` until released: the
    worker stalls there, with the events behind it still pending. Only in the process
    that made it (a forked child passes everything)."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.entered = threading.Event()  # the worker is stalled here
        self.pid = os.getpid()

    def __call__(self, event: t.Any, hint: t.Any) -> t.Any:
        if event.get("transaction") == "blocker" and os.getpid() == self.pid:
            self.entered.set()
            self.gate.wait(30)
        return event


def event_id_of(response: TestResponse) -> str:
    body = json.loads(response.get_data())
    assert body["event_id"] == response.headers["X-Sentry-Event-Id"]
    return t.cast(str, body["event_id"])


def comparable(event: dict[str, t.Any]) -> dict[str, t.Any]:
    """The event without what differs between any two captures (id, time, addresses)."""
    event = {k: v for k, v in event.items() if k not in ("event_id", "timestamp")}
    text = re.sub(r"0x[0-9a-f]+", "0x?", json.dumps(event, sort_keys=True))
    return t.cast("dict[str, t.Any]", json.loads(text))


def wait_until(predicate: t.Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


# --- the event is the one 0.1 built --------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "propagate"),
    [
        pytest.param("/boom?page=2", False, id="unhandled"),
        pytest.param("/boom?page=2", True, id="unhandled-propagated"),
        pytest.param("/abort", False, id="abort-503"),
    ],
)
def test_event_built_on_the_worker_equals_the_one_built_in_the_request(
    receiver: EnvelopeReceiver, path: str, propagate: bool
) -> None:
    hold = Hold()
    init_sentry(receiver.dsn, before_send=hold)
    config = {"TESTING": True, "PROPAGATE_EXCEPTIONS": None} if propagate else {}
    deferred = build_app(**config)
    inline = build_app(**config)
    build_in_request(inline)  # the 0.1 path: built in the request

    build_app().test_client().get("/blocker")  # the worker stalls on this one...
    wait_until(hold.entered.is_set)  # the worker holds it
    responses: list[TestResponse] = []
    for app in (deferred, inline):
        if propagate:
            with pytest.raises(BoomError):
                app.test_client().get(path)
        else:
            responses.append(app.test_client().get(path, headers={"X-Auth-Token": SECRET}))
    assert sentry_worker.stats().pending == 2  # ...so this one is built after its request
    hold.gate.set()
    flush()

    events = receiver.wait_for_events(3)
    assert len(events) == 3
    by_transaction = [e for e in events if e["transaction"] != "blocker"]
    inline_event, deferred_event = by_transaction  # the inline one was sent first
    if responses:
        assert deferred_event["event_id"] == event_id_of(responses[0])
        assert inline_event["event_id"] == event_id_of(responses[1])
    assert comparable(deferred_event) == comparable(inline_event)

    # and it is the full event: frames with source lines and locals, scrubbed request
    exception = deferred_event["exception"]["values"][-1]
    frames = exception["stacktrace"]["frames"]
    assert all("context_line" in f and "pre_context" in f and "vars" in f for f in frames)
    if path.startswith("/boom"):
        assert exception["type"] == "BoomError"
        assert exception["mechanism"] == {"type": "flask_observe", "handled": False}
        charge = frames[-1]
        assert charge["function"] == "_charge"
        assert charge["context_line"].strip() == "raise error"
        assert charge["vars"]["order"]["password"] == "[Filtered]"
        assert charge["vars"]["total"] == "7"
        assert deferred_event["tags"] == {"route": "/boom", "endpoint": "boom"}
        assert deferred_event["request"]["query_string"] == "page=2"
    else:
        assert exception["mechanism"] == {"type": "flask_observe", "handled": True}
    if not propagate:
        assert deferred_event["request"]["headers"]["X-Auth-Token"] == "[Filtered]"
    assert SECRET.encode() not in receiver.raw


def test_the_request_thread_only_notes_the_error(receiver: EnvelopeReceiver) -> None:
    """The event is built on the worker thread, never in the request's."""
    built_in: list[str] = []
    real_build = sentry_events.build_event

    def spy(pending: sentry_events.PendingEvent) -> tuple[t.Any, dict[str, t.Any]]:
        built_in.append(threading.current_thread().name)
        return real_build(pending)

    app = build_app(OBSERVE_SENTRY_DSN=receiver.dsn)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sentry_events, "build_event", spy)
        response = app.test_client().get("/boom")
        flush()
    assert built_in == ["flask-observe-sentry"]
    assert [e["event_id"] for e in receiver.wait_for_events(1)] == [event_id_of(response)]


def test_add_full_stack_builds_the_event_in_the_request_thread(
    receiver: EnvelopeReceiver,
) -> None:
    """The stack sentry-sdk adds is the one of the thread that builds the event: with
    add_full_stack the request thread builds it, the package's one way."""
    built_in: list[str] = []
    real_build = sentry_events.build_event

    def spy(pending: sentry_events.PendingEvent) -> tuple[t.Any, dict[str, t.Any]]:
        built_in.append(threading.current_thread().name)
        return real_build(pending)

    init_sentry(receiver.dsn)
    # What init_sentry(dsn, add_full_stack=True) sets from sentry-sdk 2.20 on; 2.13,
    # the lowest supported, refuses the option but has the same options dict.
    sentry_sdk.get_client().options["add_full_stack"] = True
    app = build_app()
    submitted = sentry_worker.stats().submitted
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sentry_events, "build_event", spy)
        response = app.test_client().get("/boom")
    assert built_in == [threading.current_thread().name]
    assert sentry_worker.stats().submitted == submitted  # nothing for the worker
    flush()
    event = receiver.wait_for_events(1)[0]
    assert event["event_id"] == event_id_of(response)
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert [f["function"] for f in frames][-2:] == ["boom", "_charge"]


def test_app_scrub_keys_apply_to_events_built_on_the_worker(
    receiver: EnvelopeReceiver,
) -> None:
    app = build_app(OBSERVE_SENTRY_DSN=receiver.dsn, OBSERVE_SCRUB_KEYS=["loyalty"])
    app.test_client().get("/boom")
    flush()
    event = receiver.wait_for_events(1)[0]
    boom = event["exception"]["values"][-1]["stacktrace"]["frames"][-2]
    assert boom["function"] == "boom" and boom["vars"]["loyalty_id"] == "[Filtered]"
    assert LOYALTY.encode() not in receiver.raw


def test_last_event_id_still_answers_in_the_request(receiver: EnvelopeReceiver) -> None:
    """An app's own 500 handler may show sentry_sdk.last_event_id() (Sentry's user
    feedback pattern): it is the id of the event that arrives."""
    app = build_app(OBSERVE_SENTRY_DSN=receiver.dsn)

    @app.errorhandler(500)
    def own_500(error: Exception) -> tuple[dict[str, t.Any], int]:
        return {"sentry": sentry_sdk.last_event_id()}, 500

    response = app.test_client().get("/boom")
    flush()
    assert [e["event_id"] for e in receiver.wait_for_events(1)] == [response.json["sentry"]]  # type: ignore[index]


def test_the_apps_scope_data_goes_with_the_event_and_nothing_set_after(
    receiver: EnvelopeReceiver,
) -> None:
    """Tags and user the app set in the request before the error are in the event built
    on the worker; a tag set after the capture (in the app's own 500 handler) is not."""
    app = build_app(OBSERVE_SENTRY_DSN=receiver.dsn)

    @app.get("/tagged")
    def tagged() -> str:
        sentry_sdk.set_tag("tenant", "acme")
        sentry_sdk.set_user({"id": "42"})
        raise RuntimeError("tagged")

    @app.errorhandler(500)
    def own_500(error: Exception) -> tuple[str, int]:
        sentry_sdk.set_tag("late", "yes")
        return "sorry", 500

    assert app.test_client().get("/tagged").status_code == 500
    flush()
    event = receiver.wait_for_events(1)[0]
    assert event["tags"]["tenant"] == "acme" and event["user"] == {"id": "42"}
    assert "late" not in event["tags"]


# --- throttle ----------------------------------------------------------------------------


def test_repeats_beyond_the_rate_are_counted_not_sent(receiver: EnvelopeReceiver) -> None:
    app = build_app(
        OBSERVE_SENTRY_DSN=receiver.dsn,
        OBSERVE_SENTRY_ERROR_RATE=(3, 1.0),
        OBSERVE_METRICS_RECORD=True,
    )
    records: list[RequestRecord] = []
    get_state(app).add_finish_hook(records.append)
    client = app.test_client()
    storm = [client.get("/boom") for _ in range(7)]
    assert [r.status_code for r in storm] == [500] * 7
    sent_ids = [event_id_of(r) for r in storm[:3]]
    for suppressed in storm[3:]:  # no event, so no id; the same problem otherwise
        assert "X-Sentry-Event-Id" not in suppressed.headers
        assert json.loads(suppressed.get_data()) == {
            k: v for k, v in json.loads(storm[0].get_data()).items() if k != "event_id"
        }
    assert client.get("/abort").status_code == 503  # another fingerprint: sent
    throttle = sentry_state(app).throttle
    assert throttle is not None and throttle.suppressed == 4

    time.sleep(1.05)  # the window ends: the next one is sent and carries the count
    after = client.get("/boom")
    flush()
    events = receiver.wait_for_events(5)
    boom_events = [e for e in events if e["transaction"] == "boom"]
    assert [e["event_id"] for e in boom_events] == [*sent_ids, event_id_of(after)]
    assert all("suppressed_since_last" not in e.get("extra", {}) for e in boom_events[:3])
    assert boom_events[3]["extra"]["suppressed_since_last"] == 4
    assert boom_events[3]["tags"]["suppressed"] == "yes"
    assert len(events) == 5

    # the metrics' exception counter still counts every one
    lines = [line for record in records for line in record.metric_lines or ()]
    assert lines.count("exception.boom.BoomError:1|c") == 8


def test_rate_none_sends_every_error(receiver: EnvelopeReceiver) -> None:
    app = build_app(OBSERVE_SENTRY_DSN=receiver.dsn, OBSERVE_SENTRY_ERROR_RATE=None)
    responses = [app.test_client().get("/boom") for _ in range(15)]
    flush()
    events = receiver.wait_for_events(15)
    assert [e["event_id"] for e in events] == [event_id_of(r) for r in responses]


def test_fifty_distinct_errors_all_arrive(receiver: EnvelopeReceiver) -> None:
    app = build_app(OBSERVE_SENTRY_DSN=receiver.dsn)  # the default throttle
    client = app.test_client()
    sent = {event_id_of(client.get(f"/distinct/{n}")): f"Distinct{n:02d}" for n in range(50)}
    flush(timeout=30)
    events = receiver.wait_for_events(50)
    assert {e["event_id"]: e["exception"]["values"][-1]["type"] for e in events} == sent


def test_fingerprint_tells_call_paths_apart() -> None:
    app = Flask("paths")

    @app.get("/a")
    def a() -> str:
        abort(500)

    @app.get("/b")
    def b() -> str:
        abort(500)

    prints = []
    for path in ("/a", "/b", "/a"):
        with app.test_request_context(path):
            try:
                app.dispatch_request()
            except Exception as exc:
                prints.append(fingerprint(exc, exc.__traceback__))
    assert prints[0] == prints[2] != prints[1]  # the same abort line in Werkzeug


def test_throttle_windows_and_forgetting(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr("flask_observe.sentry.throttle.time.monotonic", lambda: now[0])
    throttle = ErrorThrottle(2, 10.0)
    assert [throttle.admit("a") for _ in range(5)] == [0, 0, None, None, None]
    now[0] += 9.9
    assert throttle.admit("a") is None
    now[0] += 0.1  # the window started at 100.0 has ended
    assert [throttle.admit("a") for _ in range(3)] == [4, 0, None]
    assert throttle.suppressed == 5
    for key in range(MAX_FINGERPRINTS + 10):
        throttle.admit(key)
    assert len(throttle) <= MAX_FINGERPRINTS
    assert throttle.forgotten == 1  # "a" and its one suppressed repeat were the oldest


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("10/60", "expected (count, seconds)", id="str"),
        pytest.param(10, "expected (count, seconds)", id="int"),
        pytest.param((10,), "expected (count, seconds)", id="short"),
        pytest.param((0, 60), "between 1 and", id="zero-count"),
        pytest.param((10, 0), "must be in", id="zero-seconds"),
        pytest.param((10.5, 60), "expected an integer", id="float-count"),
    ],
)
def test_bad_error_rate_fails_at_init_naming_the_key(value: object, message: str) -> None:
    app = Flask("bad")
    app.config["OBSERVE_SENTRY_ERROR_RATE"] = value
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        Observe(app)
    assert info.value.key == "OBSERVE_SENTRY_ERROR_RATE"


def test_error_rate_accepts_a_list_from_the_environment() -> None:
    app = Flask("list")
    app.config["OBSERVE_SENTRY_ERROR_RATE"] = [5, 1]  # FLASK_OBSERVE_SENTRY_ERROR_RATE='[5, 1]'
    Observe(app)
    assert get_state(app).config.sentry_error_rate == (5, 1.0)


# --- bounded queue -----------------------------------------------------------------------


def test_stalled_worker_drops_the_oldest_and_never_blocks(
    receiver: EnvelopeReceiver, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(containment, "_last_warned", {})
    hold = Hold()
    init_sentry(receiver.dsn, before_send=hold)
    app = build_app(OBSERVE_SENTRY_ERROR_RATE=None)
    # Log records keep their exception; this test counts the exceptions still alive.
    monkeypatch.setattr(app.logger, "disabled", True)
    client = app.test_client()
    first = event_id_of(client.get("/blocker"))
    # The worker holds it (taken off the queue: otherwise it is the oldest to drop).
    wait_until(hold.entered.is_set)
    assert sentry_worker.stats().pending == 1
    before = sentry_worker.stats()
    RAISED.clear()
    slowest = 0.0
    ids = []  # not the responses: their environ holds the exception
    for _ in range(sentry_worker.MAX_PENDING + 50):
        start = time.perf_counter()
        ids.append(event_id_of(client.get("/boom")))
        slowest = max(slowest, time.perf_counter() - start)
    assert slowest < 1.0  # a blocked request would wait for the 30 s gate
    stats = sentry_worker.stats()
    assert stats.pending == sentry_worker.MAX_PENDING + 1
    assert stats.dropped - before.dropped == 50
    gc.collect()
    alive = sum(1 for ref in RAISED if ref() is not None)
    assert alive <= sentry_worker.MAX_PENDING + 2  # the pending ones, not all 150
    dropped_warnings = [r for r in caplog.records if "behind" in r.getMessage()]
    assert [r.levelname for r in dropped_warnings] == ["WARNING"]  # once, never ERROR

    hold.gate.set()
    flush(timeout=60)
    events = receiver.wait_for_events(sentry_worker.MAX_PENDING + 1, timeout=20)
    kept = [first, *ids[50:]]
    assert [e["event_id"] for e in events] == kept  # the 50 oldest pending were dropped


# --- fork and exit -----------------------------------------------------------------------


def test_forked_child_never_sends_the_parents_pending_events(
    receiver: EnvelopeReceiver,
) -> None:
    hold = Hold()
    init_sentry(receiver.dsn, before_send=hold)
    app = build_app(OBSERVE_SENTRY_ERROR_RATE=None)
    parent_ids = [event_id_of(app.test_client().get("/blocker"))]
    wait_until(hold.entered.is_set)  # the worker holds it
    parent_ids += [event_id_of(app.test_client().get("/boom")) for _ in range(2)]
    assert sentry_worker.stats().pending == 3
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, 3.12+
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process
        code = 1
        try:
            os.close(read_end)
            assert sentry_worker.stats().pending == 0  # the parent's queue stayed there
            child_id = event_id_of(app.test_client().get("/boom"))
            flush(timeout=10)
            os.write(write_end, child_id.encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    child_id = os.read(read_end, 64).decode()
    os.close(read_end)
    assert os.waitstatus_to_exitcode(status) == 0
    hold.gate.set()
    flush()
    receiver.wait_for_events(4)
    time.sleep(0.3)  # any duplicate would arrive now
    ids = [e["event_id"] for e in receiver.events]
    assert sorted(ids) == sorted([*parent_ids, child_id])


EXIT_SCRIPT = """
import os, time
from flask import Flask
from flask_observe import Observe

def slow_before_send(event, hint):
    time.sleep(0.1)  # the worker is still busy when the script ends
    return event

from flask_observe.sentry import init_sentry
init_sentry(os.environ["TEST_DSN"], before_send=slow_before_send)
app = Flask("exiting")
app.config.update(PROPAGATE_EXCEPTIONS=False, OBSERVE_SENTRY_ERROR_RATE=None)
Observe(app)

@app.get("/boom")
def boom():
    raise RuntimeError("at exit")

client = app.test_client()
for _ in range(5):
    print(client.get("/boom").json["event_id"], flush=True)
"""


def test_pending_events_are_sent_at_interpreter_exit(receiver: EnvelopeReceiver) -> None:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(EXIT_SCRIPT)],
        env={**os.environ, "TEST_DSN": receiver.dsn},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    ids = done.stdout.split()
    assert len(ids) == 5
    events = receiver.wait_for_events(5)
    assert [e["event_id"] for e in events] == ids


LOGGING_INTEGRATION_SCRIPT = """
import json, os
import sentry_sdk
from sentry_sdk.integrations.dedupe import DedupeIntegration
from sentry_sdk.integrations.logging import LoggingIntegration
from flask_observe.sentry import flush
from tests.sentry.test_events import build_app

sentry_sdk.init(
    dsn=os.environ["TEST_DSN"],
    default_integrations=False,
    integrations=[LoggingIntegration(), DedupeIntegration()],
)
app = build_app()  # the app's own SDK set-up: Flask's error log becomes events too
ids = [app.test_client().get("/boom").get_json().get("event_id") for _ in range(12)]
flush()
print(json.dumps(ids))
"""


def test_logging_integration_adds_no_duplicate(receiver: EnvelopeReceiver) -> None:
    """With sentry-sdk's logging integration on, Flask's error log would be a second
    event of the same exception: dropped, as DedupeIntegration did when the capture ran
    in the request; and suppressed repeats do not come back through the log."""
    result = subprocess.run(
        [sys.executable, "-c", LOGGING_INTEGRATION_SCRIPT],
        env={**os.environ, "TEST_DSN": receiver.dsn},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    ids = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(ids[:10]) and ids[10:] == [None, None]  # the default throttle: 10 a minute
    events = receiver.wait_for_events(11, timeout=1.0)
    assert [e["event_id"] for e in events] == ids[:10]
    assert {e["exception"]["values"][-1]["mechanism"]["type"] for e in events} == {"flask_observe"}
