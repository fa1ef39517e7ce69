"""sentry-sdk set-up: the lean initialisation (no framework integration), a client the
app set up itself adopted and scrubbed, no client at all, and a forked child that makes
its own client."""

from __future__ import annotations

import faulthandler
import json
import os
import subprocess
import sys
import typing as t
import warnings

import sentry_sdk

from tests.support.sentry import EnvelopeReceiver
from tests.support.sentry import flush
from tests.support.sentry_apps import event_id_of
from tests.support.sentry_apps import PII
from tests.support.sentry_apps import pii_app

if t.TYPE_CHECKING:
    pass


#: Run in a fresh interpreter: FlaskIntegration patches Flask and connects receivers
#: once per process, so only a new process shows its stock behaviour.
FLASK_INTEGRATION_SCRIPT = """
import json, os
import sentry_sdk
from sentry_sdk.integrations.flask import FlaskIntegration
from tests.support.sentry_apps import pii_app

sentry_sdk.init(dsn=os.environ["TEST_DSN"], integrations=[FlaskIntegration()])
app = pii_app()  # no OBSERVE_SENTRY_DSN: the app's own SDK set-up is used
response = app.test_client().get("/boom?token=" + os.environ["TEST_TOKEN"])
sentry_sdk.flush(timeout=2)
print(json.dumps({"status": response.status_code, "body": response.get_json(),
                  "header": response.headers.get("X-Sentry-Event-Id")}))
"""


def test_flask_integration_active_still_exactly_once(receiver: EnvelopeReceiver) -> None:
    result = subprocess.run(
        [sys.executable, "-c", FLASK_INTEGRATION_SCRIPT],
        env={**os.environ, "TEST_DSN": receiver.dsn, "TEST_TOKEN": PII["query_token"]},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 500
    event_id = answer["body"]["event_id"]
    assert answer["header"] == event_id
    events = receiver.wait_for_events(2, timeout=1.0)
    assert [e["event_id"] for e in events] == [event_id]
    assert events[0]["exception"]["values"][-1]["mechanism"]["type"] == "flask"
    assert events[0]["transaction"] == "boom"
    assert PII["query_token"].encode() not in receiver.raw
    assert PII["url_password"].encode() not in receiver.raw


def test_app_initialised_lean_sdk_is_used_and_scrubbed(receiver: EnvelopeReceiver) -> None:
    seen: list[dict[str, t.Any]] = []

    def own_before_send(event: t.Any, hint: t.Any) -> t.Any:
        seen.append(event)
        event.setdefault("tags", {})["own"] = "yes"
        return event

    sentry_sdk.init(dsn=receiver.dsn, default_integrations=False, before_send=own_before_send)
    app = pii_app()
    response = app.test_client().get("/boom", headers={"X-Auth-Token": PII["x_auth_token"]})
    event_id = event_id_of(response)
    flush()
    events = receiver.wait_for_events(1)
    assert [e["event_id"] for e in events] == [event_id]
    assert events[0]["tags"]["own"] == "yes"  # the app's before_send ran...
    assert seen[0]["request"]["headers"]["X-Auth-Token"] == "[Filtered]"  # ...after ours
    assert PII["x_auth_token"].encode() not in receiver.raw


def test_no_sdk_configured_captures_nothing_and_answers_the_same() -> None:
    response = pii_app().test_client().get("/boom")
    assert response.status_code == 500
    assert "X-Sentry-Event-Id" not in response.headers
    assert "event_id" not in json.loads(response.get_data())


def test_lean_init_enables_no_framework_integration(receiver: EnvelopeReceiver) -> None:
    pii_app(OBSERVE_SENTRY_DSN=receiver.dsn)
    client = sentry_sdk.get_client()
    assert client.is_active()
    assert set(client.integrations) == {"dedupe", "atexit"}
    assert client.options["traces_sample_rate"] is None


def test_fork_recreates_the_client_instead_of_resending(receiver: EnvelopeReceiver) -> None:
    """A forked child (a gunicorn worker of a preloaded app) captures with a client of
    its own, made at its first capture with the same lean set-up."""
    app = pii_app(OBSERVE_SENTRY_DSN=receiver.dsn)
    parent_client = sentry_sdk.get_client()
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, 3.12+
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process
        code = 1
        try:
            # A child stuck on a lock some parent thread held at the fork prints every
            # thread's stack and exits after a while: the test fails, never hangs.
            faulthandler.dump_traceback_later(30, exit=True)
            os.close(read_end)
            response = app.test_client().get("/boom")
            child_client = sentry_sdk.get_client()
            assert child_client is not parent_client
            assert set(child_client.integrations) == {"dedupe", "atexit"}
            flush()
            os.write(write_end, event_id_of(response).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    child_id = os.read(read_end, 64).decode()
    os.close(read_end)
    assert os.waitstatus_to_exitcode(status) == 0
    assert sentry_sdk.get_client() is parent_client  # the parent keeps its own
    events = receiver.wait_for_events(1)
    assert [e["event_id"] for e in events] == [child_id]
