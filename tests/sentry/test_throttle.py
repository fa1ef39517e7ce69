"""The per-error rate limit (``OBSERVE_SENTRY_ERROR_RATE``): repeats beyond the rate are
counted, not sent; distinct errors all arrive; fingerprints tell call paths apart; windows
and forgetting; the setting checked at init."""

from __future__ import annotations

import json
import re
import time
import typing as t

import pytest
from flask import abort
from flask import Flask

from flask_observe import ConfigError
from flask_observe import Observe
from flask_observe.extension import get_state
from flask_observe.record import RequestRecord
from flask_observe.sentry import SentryState
from flask_observe.sentry.throttle import ErrorThrottle
from flask_observe.sentry.throttle import fingerprint
from flask_observe.sentry.throttle import MAX_FINGERPRINTS
from tests.support.sentry import EnvelopeReceiver
from tests.support.sentry import flush
from tests.support.sentry_apps import event_id_of
from tests.support.sentry_apps import storm_app

if t.TYPE_CHECKING:
    pass


def sentry_state(app: Flask) -> SentryState:
    state = get_state(app).part(SentryState)
    assert state is not None
    return state


def test_repeats_beyond_the_rate_are_counted_not_sent(receiver: EnvelopeReceiver) -> None:
    app = storm_app(
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
    app = storm_app(OBSERVE_SENTRY_DSN=receiver.dsn, OBSERVE_SENTRY_ERROR_RATE=None)
    responses = [app.test_client().get("/boom") for _ in range(15)]
    flush()
    events = receiver.wait_for_events(15)
    assert [e["event_id"] for e in events] == [event_id_of(r) for r in responses]


def test_fifty_distinct_errors_all_arrive(receiver: EnvelopeReceiver) -> None:
    app = storm_app(OBSERVE_SENTRY_DSN=receiver.dsn)  # the default throttle
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


def test_the_default_rate_is_ten_a_minute(
    receiver: EnvelopeReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without ``OBSERVE_SENTRY_ERROR_RATE``: 10 events per fingerprint, then nothing
    until 60 seconds after the first (on the throttle's clock, moved by the test)."""
    now = [1000.0]
    monkeypatch.setattr("flask_observe.sentry.throttle.time.monotonic", lambda: now[0])
    throttle = sentry_state(storm_app(OBSERVE_SENTRY_DSN=receiver.dsn)).throttle
    assert throttle is not None
    assert [throttle.admit("same") for _ in range(12)] == [0] * 10 + [None, None]
    now[0] += 59.999
    assert throttle.admit("same") is None
    now[0] += 0.001
    assert [throttle.admit("same") for _ in range(11)] == [3] + [0] * 9 + [None]


def test_the_same_line_in_another_file_is_another_error() -> None:
    def raised_in(filename: str) -> BaseException:
        try:
            exec(compile("raise ValueError('same line')", filename, "exec"))
        except ValueError as exc:
            return exc
        raise AssertionError("nothing raised")

    first, second, again = raised_in("a.py"), raised_in("b.py"), raised_in("a.py")
    prints = [fingerprint(e, e.__traceback__) for e in (first, second, again)]
    assert prints[0] == prints[2] != prints[1]


def test_making_room_drops_expired_windows_with_nothing_to_carry_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [0.0]
    monkeypatch.setattr("flask_observe.sentry.throttle.time.monotonic", lambda: now[0])
    throttle = ErrorThrottle(1, 10.0)
    assert [throttle.admit("carry"), throttle.admit("carry")] == [0, None]  # one to carry
    assert throttle.admit("idle") == 0  # nothing to carry
    now[0] = 10.0  # both windows have just ended
    for key in range(1022):  # 1,024 fingerprints remembered: the most
        throttle.admit(key)
    assert len(throttle) == 1024
    throttle.admit("new")  # room is made: "idle" goes, "carry" keeps its repeat
    assert len(throttle) == 1024 and throttle.forgotten == 0
    assert throttle.admit("carry") == 1


def test_after_a_fork_every_throttle_has_a_free_lock_and_keeps_its_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As a forked child inherits them: each throttle's lock held by a thread that does
    not exist in the child. The fork hook (called here, in this process) gives each a
    free lock; the windows and counts stay."""
    import threading

    from flask_observe.sentry import throttle as throttle_module

    monkeypatch.setattr("flask_observe.sentry.throttle.time.monotonic", lambda: 5.0)
    throttles = [ErrorThrottle(1, 60.0), ErrorThrottle(1, 60.0)]
    for throttle in throttles:
        assert [throttle.admit("same"), throttle.admit("same")] == [0, None]
        holder = threading.Thread(target=throttle._lock.acquire)  # and never releases it
        holder.start()
        holder.join()

    throttle_module._after_fork_in_child()

    for throttle in throttles:
        assert admit_within(throttle, "other") == [0]
        assert throttle.admit("same") is None and throttle.suppressed == 2


def admit_within(throttle: ErrorThrottle, key: str) -> list[int | None]:
    """``[throttle.admit(key)]``, or ``[]`` when it blocks 10 seconds on a held lock
    (called in another thread: the test fails instead of hanging)."""
    import threading

    admitted: list[int | None] = []
    caller = threading.Thread(target=lambda: admitted.append(throttle.admit(key)), daemon=True)
    caller.start()
    caller.join(10)
    return admitted
