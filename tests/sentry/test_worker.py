"""The capture worker: a stalled worker drops the oldest pending event and never blocks a
request, a forked child never sends its parent's pending events, and pending events are
sent at interpreter exit."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import textwrap
import threading
import typing as t
import warnings

import pytest

from flask_observe import containment
from flask_observe.sentry import init_sentry
from flask_observe.sentry import worker as sentry_worker
from tests.support.sentry import EnvelopeReceiver
from tests.support.sentry import flush
from tests.support.sentry_apps import event_id_of
from tests.support.sentry_apps import Hold
from tests.support.sentry_apps import RAISED
from tests.support.sentry_apps import storm_app
from tests.support.sentry_apps import wait_until

if t.TYPE_CHECKING:
    pass


# --- bounded queue -----------------------------------------------------------------------


def test_stalled_worker_drops_the_oldest_and_never_blocks(
    receiver: EnvelopeReceiver, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(containment, "_last_warned", {})
    hold = Hold()
    init_sentry(receiver.dsn, before_send=hold)
    app = storm_app(OBSERVE_SENTRY_ERROR_RATE=None)
    # Log records keep their exception; this test counts the exceptions still alive.
    monkeypatch.setattr(app.logger, "disabled", True)
    client = app.test_client()
    first = event_id_of(client.get("/blocker"))
    # The worker holds it (taken off the queue: otherwise it is the oldest to drop).
    wait_until(hold.entered.is_set)
    assert sentry_worker.stats().pending == 1
    before = sentry_worker.stats()
    RAISED.clear()
    ids = []  # not the responses: their environ holds the exception
    for _ in range(sentry_worker.MAX_PENDING + 50):
        ids.append(event_id_of(client.get("/boom")))
    # Every request was answered while the worker stayed stalled: none waited for it.
    assert not hold.left.is_set()
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
    app = storm_app(OBSERVE_SENTRY_ERROR_RATE=None)
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
    # A marker sent after them: a duplicate of the parent's would have been queued, and
    # arrived, before it; the child has exited.
    marker = event_id_of(app.test_client().get("/abort"))
    flush()
    events = receiver.wait_for_events(5)
    assert events[-1]["event_id"] == marker
    ids = [e["event_id"] for e in receiver.events]
    assert sorted(ids) == sorted([*parent_ids, child_id, marker])


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


# --- accounting ----------------------------------------------------------------------------


def noted_events(app: t.Any, monkeypatch: pytest.MonkeyPatch, *paths: str) -> list[t.Any]:
    """The pending events the requests to *paths* note, as the request thread hands them
    over, kept here instead of going to the process's worker."""
    capture = sys.modules["flask_observe.sentry.capture"]  # the package exports a function
    noted: list[t.Any] = []
    with monkeypatch.context() as patch:
        patch.setattr(capture, "submit", noted.append)
        for path in paths:
            assert app.test_client().get(path).status_code >= 500
    assert len(noted) == len(paths)
    return noted


def test_events_sentry_drops_are_counted_as_discarded(receiver: EnvelopeReceiver) -> None:
    def drop_boom(event: t.Any, hint: t.Any) -> t.Any:
        return None if event.get("transaction") == "boom" else event

    init_sentry(receiver.dsn, before_send=drop_boom)
    app = storm_app(OBSERVE_SENTRY_ERROR_RATE=None)
    before = sentry_worker.stats()
    for _ in range(3):
        app.test_client().get("/boom")
    marker = event_id_of(app.test_client().get("/abort"))
    flush()
    after = sentry_worker.stats()
    assert after.submitted - before.submitted == 4
    assert after.discarded - before.discarded == 3
    assert after.captured - before.captured == 1
    assert after.failed == before.failed and after.pending == 0
    # the marker was built after the three: had any of them been sent, it is here too
    assert [e["event_id"] for e in receiver.wait_for_events(1)] == [marker]
    flush()
    assert [e["event_id"] for e in receiver.events] == [marker]


def test_a_failed_build_is_counted_and_logged_and_the_next_one_sent(
    receiver: EnvelopeReceiver, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    monkeypatch.setattr(containment, "_last_warned", {})
    init_sentry(receiver.dsn)
    app = storm_app(OBSERVE_SENTRY_ERROR_RATE=None)
    broken, good = noted_events(app, monkeypatch, "/boom", "/abort")
    queue = sentry_worker.CaptureQueue()

    def workers() -> int:
        """Live daemon threads named as the capture worker is (for py-spy, debuggers):
        one per queue."""
        return sum(
            1 for th in threading.enumerate() if th.name == "flask-observe-sentry" and th.daemon
        )

    before = workers()
    queue.submit(dataclasses.replace(broken, tags=None))  # building it raises
    queue.submit(good)
    assert workers() == before + 1
    assert queue.drain(10)
    stats = queue.stats()
    assert (stats.submitted, stats.failed, stats.captured, stats.discarded) == (2, 1, 1, 0)
    assert stats.pending == 0
    assert [r.levelname for r in caplog.records if "could not build" in r.getMessage()] == [
        "WARNING"
    ]
    flush()
    assert [e["event_id"] for e in receiver.wait_for_events(1)] == [good.event_id]


def test_drain_without_a_worker_builds_the_events_itself(
    receiver: EnvelopeReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that could not start: the drain (at exit, or a flush) builds what is
    pending in the calling thread, and an event whose client was closed meanwhile is
    discarded."""
    import sentry_sdk

    init_sentry(receiver.dsn)
    app = storm_app(OBSERVE_SENTRY_ERROR_RATE=None)
    first, second = noted_events(app, monkeypatch, "/boom", "/abort")
    queue = sentry_worker.CaptureQueue()
    monkeypatch.setattr(queue, "_start", lambda: None)  # no worker thread
    queue.submit(first)
    queue.submit(second)
    assert queue.stats().pending == 2
    assert queue.drain(10)
    assert queue.stats() == sentry_worker.QueueStats(submitted=2, captured=2)
    sentry_sdk.flush()
    events = receiver.wait_for_events(2)
    assert [e["event_id"] for e in events] == [first.event_id, second.event_id]

    (late,) = noted_events(app, monkeypatch, "/boom")
    queue.submit(late)
    sentry_sdk.get_client().close()
    assert queue.drain(10)
    assert queue.stats() == sentry_worker.QueueStats(submitted=3, captured=2, discarded=1)


def test_drain_waits_for_the_event_being_built(
    receiver: EnvelopeReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event taken off the queue is still pending until it is captured: a drain
    waits for it, up to its timeout."""
    hold = Hold()
    init_sentry(receiver.dsn, before_send=hold)
    app = storm_app(OBSERVE_SENTRY_ERROR_RATE=None)
    (blocked,) = noted_events(app, monkeypatch, "/blocker")
    queue = sentry_worker.CaptureQueue()
    queue.submit(blocked)
    wait_until(hold.entered.is_set)  # the worker holds it: the queue itself is empty
    assert queue.stats().pending == 1
    assert queue.drain(0.2) is False  # still being built
    hold.gate.set()
    assert queue.drain(10) is True
    assert queue.stats() == sentry_worker.QueueStats(submitted=1, captured=1)


def test_a_full_queue_warns_with_the_count_dropped_and_only_when_it_drops(
    receiver: EnvelopeReceiver, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(containment, "_last_warned", {})
    hold = Hold()
    init_sentry(receiver.dsn, before_send=hold)
    app = storm_app(OBSERVE_SENTRY_ERROR_RATE=None)
    blocked, *booms = noted_events(app, monkeypatch, "/blocker", "/boom", "/boom", "/boom", "/boom")
    caplog.clear()
    queue = sentry_worker.CaptureQueue(size=2)
    queue.submit(blocked)
    wait_until(hold.entered.is_set)  # the worker holds it: the queue itself is empty
    queue.submit(booms[0])
    queue.submit(booms[1])  # full, nothing dropped yet
    assert [r.getMessage() for r in caplog.records] == []
    queue.submit(booms[2])  # drops booms[0]
    queue.submit(booms[3])  # drops booms[1]; the warning is once a minute
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "WARNING",
            "Flask-Observe: the Sentry capture worker is behind; dropped the oldest pending "
            "events (1 so far).",
        )
    ]
    hold.gate.set()
    assert queue.drain(10)
    assert queue.stats() == sentry_worker.QueueStats(submitted=5, captured=3, dropped=2)
    flush()
    events = receiver.wait_for_events(3)
    assert [e["event_id"] for e in events] == [
        blocked.event_id,
        booms[2].event_id,
        booms[3].event_id,
    ]


def test_every_failed_build_is_counted_and_logged_with_its_traceback(
    receiver: EnvelopeReceiver, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    init_sentry(receiver.dsn)
    app = storm_app(OBSERVE_SENTRY_ERROR_RATE=None)
    broken, other = noted_events(app, monkeypatch, "/boom", "/boom")
    caplog.clear()
    queue = sentry_worker.CaptureQueue()
    queue.submit(dataclasses.replace(broken, tags=None))  # building it raises
    assert queue.drain(10)
    monkeypatch.setattr(containment, "_last_warned", {})  # the next warning is not held back
    queue.submit(dataclasses.replace(other, tags=None))
    assert queue.drain(10)
    assert queue.stats() == sentry_worker.QueueStats(submitted=2, failed=2)
    records = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert records == [("WARNING", "Flask-Observe could not build a Sentry event")] * 2
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [AttributeError, AttributeError]


# --- the fork and exit hooks, called in this process ---------------------------------------
# The tests above run them where they run for real (a forked child, an interpreter exit);
# these call them in this process, on a real queue, and check the state each one leaves.


def dead_thread() -> threading.Thread:
    thread = threading.Thread(target=lambda: None)
    thread.start()
    thread.join()
    return thread


def live_workers() -> int:
    return sum(1 for th in threading.enumerate() if th.name == "flask-observe-sentry")


def call_within(function: t.Callable[[], t.Any], timeout: float = 10.0) -> t.Any:
    """*function*'s result, called in another thread: a call that blocks on a lock fails
    the test after *timeout* seconds instead of hanging it."""
    results: list[t.Any] = []
    thread = threading.Thread(target=lambda: results.append(function()), daemon=True)
    thread.start()
    thread.join(timeout)
    assert results, f"{function} blocked or raised"
    return results[0]


def inherited_queue(monkeypatch: pytest.MonkeyPatch, pending: t.Any) -> t.Any:
    """A queue as a forked child inherits it: *pending* still queued, the worker mid-build
    (busy) and gone, the lock held by a thread that does not exist in the child."""
    queue = sentry_worker.CaptureQueue()
    with monkeypatch.context() as patch:
        patch.setattr(queue, "_start", lambda: None)  # no worker: the event stays queued
        queue.submit(pending)
    queue._busy = True
    queue._thread = dead_thread()
    holder = threading.Thread(target=queue._cond.acquire)  # and never releases it
    holder.start()
    holder.join()
    return queue


def test_after_a_fork_the_queue_is_empty_unlocked_and_starts_its_own_worker(
    receiver: EnvelopeReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_sentry(receiver.dsn)
    app = storm_app(OBSERVE_SENTRY_ERROR_RATE=None)
    parents, childs = noted_events(app, monkeypatch, "/boom", "/abort")
    queue = inherited_queue(monkeypatch, parents)
    before = live_workers()

    queue._reset_after_fork()

    assert call_within(queue.stats) == sentry_worker.QueueStats()  # nothing pending, not busy
    queue.submit(childs)
    assert live_workers() == before + 1  # a worker of its own
    assert queue.drain(10)
    assert queue.stats() == sentry_worker.QueueStats(submitted=1, captured=1)
    flush()
    # the parent's event was queued first: had it been kept, it would have arrived first
    assert [e["event_id"] for e in receiver.wait_for_events(1)] == [childs.event_id]
    assert [e["event_id"] for e in receiver.events] == [childs.event_id]


def test_the_fork_hook_resets_the_process_queue(
    receiver: EnvelopeReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_sentry(receiver.dsn)
    app = storm_app(OBSERVE_SENTRY_ERROR_RATE=None)
    (parents,) = noted_events(app, monkeypatch, "/boom")
    queue = inherited_queue(monkeypatch, parents)
    monkeypatch.setattr(sentry_worker, "_queue", queue)

    sentry_worker._reset_after_fork()

    assert call_within(sentry_worker.stats) == sentry_worker.QueueStats()


def drain_timeouts(monkeypatch: pytest.MonkeyPatch, queue: t.Any) -> list[float]:
    """The timeouts *queue*'s drain is called with, which is then the process queue."""
    timeouts: list[float] = []
    drain = queue.drain

    def recording_drain(timeout: float) -> bool:
        timeouts.append(timeout)
        return t.cast(bool, drain(timeout))

    monkeypatch.setattr(queue, "drain", recording_drain)
    monkeypatch.setattr(sentry_worker, "_queue", queue)
    return timeouts


def test_at_exit_pending_events_are_built_and_sent(
    receiver: EnvelopeReceiver, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exit hook waits for the queue as long as sentry-sdk's ``shutdown_timeout``."""
    init_sentry(receiver.dsn, shutdown_timeout=7)
    app = storm_app(OBSERVE_SENTRY_ERROR_RATE=None)
    first, second = noted_events(app, monkeypatch, "/boom", "/abort")
    queue = sentry_worker.CaptureQueue()
    monkeypatch.setattr(queue, "_start", lambda: None)  # built by the drain itself
    queue.submit(first)
    queue.submit(second)
    timeouts = drain_timeouts(monkeypatch, queue)
    caplog.clear()

    sentry_worker._drain_at_exit()

    assert timeouts == [7.0]
    assert queue.stats() == sentry_worker.QueueStats(submitted=2, captured=2)
    assert caplog.records == []
    flush()
    events = receiver.wait_for_events(2)
    assert [e["event_id"] for e in events] == [first.event_id, second.event_id]


@pytest.mark.parametrize("shutdown_timeout", [0, None])
def test_at_exit_the_wait_is_two_seconds_without_a_shutdown_timeout(
    receiver: EnvelopeReceiver, monkeypatch: pytest.MonkeyPatch, shutdown_timeout: object
) -> None:
    init_sentry(receiver.dsn, shutdown_timeout=shutdown_timeout)
    timeouts = drain_timeouts(monkeypatch, sentry_worker.CaptureQueue())
    sentry_worker._drain_at_exit()
    assert timeouts == [2.0]


def test_at_exit_the_wait_is_two_seconds_when_sentry_sdk_cannot_say(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sentry_sdk

    def broken_client() -> t.Any:
        raise RuntimeError("no client")

    timeouts = drain_timeouts(monkeypatch, sentry_worker.CaptureQueue())
    with monkeypatch.context() as patch:
        patch.setattr(sentry_sdk, "get_client", broken_client)
        sentry_worker._drain_at_exit()
    assert timeouts == [2.0]


def test_at_exit_events_still_pending_after_the_wait_are_reported_lost(
    receiver: EnvelopeReceiver, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold = Hold()
    init_sentry(receiver.dsn, before_send=hold, shutdown_timeout=0.2)
    app = storm_app(OBSERVE_SENTRY_ERROR_RATE=None)
    (blocked,) = noted_events(app, monkeypatch, "/blocker")
    queue = sentry_worker.CaptureQueue()
    queue.submit(blocked)
    wait_until(hold.entered.is_set)  # the worker holds it past the wait
    drain_timeouts(monkeypatch, queue)
    caplog.clear()

    sentry_worker._drain_at_exit()

    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "Flask-Observe: Sentry events still pending at exit are lost")
    ]
    hold.gate.set()
    assert queue.drain(10)


def test_drain_waits_two_seconds_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    timeouts = drain_timeouts(monkeypatch, sentry_worker.CaptureQueue())
    assert sentry_worker.drain() is True  # nothing pending
    assert timeouts == [2.0]


def test_drain_from_the_worker_itself_answers_false_at_once(
    receiver: EnvelopeReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``before_send`` that drains (it runs on the worker) would wait for itself."""
    answers: list[bool] = []

    def draining(event: t.Any, hint: t.Any) -> t.Any:
        answers.append(sentry_worker.drain(30))
        return event

    init_sentry(receiver.dsn, before_send=draining)
    app = storm_app(OBSERVE_SENTRY_ERROR_RATE=None)
    event_id = event_id_of(app.test_client().get("/boom"))
    flush(timeout=10)  # well under the 30 s the drain inside would otherwise wait
    assert answers == [False]
    assert [e["event_id"] for e in receiver.wait_for_events(1)] == [event_id]


def test_drain_without_a_worker_answers_whether_anything_is_left(
    receiver: EnvelopeReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_sentry(receiver.dsn)
    app = storm_app(OBSERVE_SENTRY_ERROR_RATE=None)
    (pending,) = noted_events(app, monkeypatch, "/boom")
    queue = sentry_worker.CaptureQueue()
    monkeypatch.setattr(queue, "_start", lambda: None)  # no worker thread
    queue.submit(pending)
    assert queue.drain(0) is False  # no time to build it: still pending
    assert queue.stats().pending == 1
    assert queue.drain(10) is True
    assert queue.drain(0) is True  # nothing left
