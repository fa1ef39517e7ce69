"""Events built off the request thread from what the request noted, with the real
sentry-sdk posting to a loopback receiver: the same event as one built in the request,
scrubbed, with the app's scope data, and no duplicate through the logging integration.

The comparison with the 0.1 behaviour builds the same event in the request thread
(``benchmarks/sentry_baseline.py``, the 0.1 code path) in the same test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import typing as t

import pytest
import sentry_sdk

from benchmarks.sentry_baseline import build_in_request
from flask_observe.sentry import events as sentry_events
from flask_observe.sentry import init_sentry
from flask_observe.sentry import worker as sentry_worker
from tests.support.sentry import EnvelopeReceiver
from tests.support.sentry import flush
from tests.support.sentry_apps import BoomError
from tests.support.sentry_apps import event_id_of
from tests.support.sentry_apps import Hold
from tests.support.sentry_apps import LOYALTY
from tests.support.sentry_apps import SECRET
from tests.support.sentry_apps import storm_app
from tests.support.sentry_apps import wait_until

if t.TYPE_CHECKING:
    from werkzeug.test import TestResponse


def comparable(event: dict[str, t.Any]) -> dict[str, t.Any]:
    """The event without what differs between any two captures (id, time, addresses)."""
    event = {k: v for k, v in event.items() if k not in ("event_id", "timestamp")}
    text = re.sub(r"0x[0-9a-f]+", "0x?", json.dumps(event, sort_keys=True))
    return t.cast("dict[str, t.Any]", json.loads(text))


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
    deferred = storm_app(**config)
    inline = storm_app(**config)
    build_in_request(inline)  # the 0.1 path: built in the request

    storm_app().test_client().get("/blocker")  # the worker stalls on this one...
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

    app = storm_app(OBSERVE_SENTRY_DSN=receiver.dsn)
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
    app = storm_app()
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
    app = storm_app(OBSERVE_SENTRY_DSN=receiver.dsn, OBSERVE_SCRUB_KEYS=["loyalty"])
    app.test_client().get("/boom")
    flush()
    event = receiver.wait_for_events(1)[0]
    boom = event["exception"]["values"][-1]["stacktrace"]["frames"][-2]
    assert boom["function"] == "boom" and boom["vars"]["loyalty_id"] == "[Filtered]"
    assert LOYALTY.encode() not in receiver.raw


def test_last_event_id_still_answers_in_the_request(receiver: EnvelopeReceiver) -> None:
    """An app's own 500 handler may show sentry_sdk.last_event_id() (Sentry's user
    feedback pattern): it is the id of the event that arrives."""
    app = storm_app(OBSERVE_SENTRY_DSN=receiver.dsn)

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
    app = storm_app(OBSERVE_SENTRY_DSN=receiver.dsn)

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


LOGGING_INTEGRATION_SCRIPT = """
import json, os
import sentry_sdk
from sentry_sdk.integrations.dedupe import DedupeIntegration
from sentry_sdk.integrations.logging import LoggingIntegration
from flask_observe.sentry import flush
from tests.support.sentry_apps import storm_app

sentry_sdk.init(
    dsn=os.environ["TEST_DSN"],
    default_integrations=False,
    integrations=[LoggingIntegration(), DedupeIntegration()],
)
app = storm_app()  # the app's own SDK set-up: Flask's error log becomes events too
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
