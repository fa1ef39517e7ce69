"""The capture worker: Sentry events built off the request thread, from a bounded queue.

Building an event is the expensive part of reporting an error: sentry-sdk walks every
frame, reads its source file, serialises its local variables, then serialises the
event again. The request thread only notes what the event needs in a
:class:`PendingEvent` (the exception and its traceback, which keeps the frames and their
locals alive, the scrubbed request data, tags, the scopes and the event id the client
gets) and hands it to :func:`submit`. One daemon thread per process builds each event
with ``sentry_sdk.utils.event_from_exception`` and captures it in the noted scopes, so
event processors, ``DedupeIntegration`` and ``before_send`` (scrubbing) apply as before.

The queue holds at most :data:`MAX_PENDING` events: when the worker is behind, the
oldest pending event is dropped and counted, so a request never waits and memory stays
bounded. The queue is drained at interpreter exit, before sentry-sdk's own exit flush,
and emptied in a forked child (the parent sends its own events).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import os
import threading
import time
import typing as t

from .containment import warn_limited
from .scrub import scrubbing_for

if t.TYPE_CHECKING:
    from types import TracebackType

    from sentry_sdk.client import BaseClient
    from sentry_sdk.scope import Scope

    from .scrub import Scrubber

#: Most events waiting to be built, per process (sentry-sdk's own transport queue holds
#: as many).
MAX_PENDING = 100

#: Key Flask-Observe adds to the hint of the events it builds.
HINT_KEY = "flask_observe"

#: Extra data holding how many repeats the throttle suppressed before this event.
SUPPRESSED_EXTRA = "suppressed_since_last"

#: Tag set (to ``"yes"``) on an event that stands for suppressed repeats too.
SUPPRESSED_TAG = "suppressed"

ExcInfo = tuple[type[BaseException], BaseException, "TracebackType | None"]
#: ``(co_filename, function name, traceback line, shallow copy of the locals)``.
HeadLocals = tuple[str, str, int, dict[str, t.Any]]


@dataclasses.dataclass(eq=False)
class PendingEvent:
    """What the worker needs to build and capture one event, noted on the request
    thread.

    .. versionadded:: 0.2.0
    """

    #: The exception with its traceback as it was when noted (a propagating exception's
    #: ``__traceback__`` grows afterwards).
    exc_info: ExcInfo
    #: ``False`` for unhandled exceptions, ``True`` for ``abort(5xx)``.
    handled: bool
    #: The event id the client was given.
    event_id: str
    #: The request part of the event, already scrubbed.
    request_data: dict[str, t.Any] | None
    #: Transaction name (the endpoint).
    transaction: str | None
    #: ``route`` and ``endpoint`` tags.
    tags: dict[str, str]
    #: Repeats of this error the throttle suppressed since its last event.
    suppressed: int
    #: The client active in the request (fork-checked).
    client: BaseClient
    #: Forks of the request's isolation and current scopes (user, tags, breadcrumbs the
    #: app set in the request).
    isolation_scope: Scope
    current_scope: Scope
    #: The app's scrubber, for ``before_send`` outside the app context.
    scrubber: Scrubber
    #: The locals of the traceback's first frame when noted (it may still be running).
    head_locals: HeadLocals | None = None


def head_locals(tb: TracebackType | None) -> HeadLocals | None:
    """A shallow copy of the locals of *tb*'s first frame, the one that caught the
    exception.

    The other frames of a traceback have been left by the exception and keep their last
    locals; the first one may still be running (Flask's ``wsgi_app`` goes on after the
    capture), so read later it would show other values than at the time of the error.
    One small dict, about a microsecond.
    """
    if tb is None:
        return None
    frame = tb.tb_frame
    code = frame.f_code
    return (code.co_filename, code.co_name, tb.tb_lineno, dict(frame.f_locals))


def build_event(pending: PendingEvent) -> tuple[t.Any, dict[str, t.Any]]:
    """The event and hint for *pending*, as the request thread used to build them.

    Runs with *pending*'s client current (frame serialisation reads its options).
    """
    from sentry_sdk.utils import event_from_exception

    client = pending.client
    event, hint = event_from_exception(
        pending.exc_info,
        client_options=client.options,
        mechanism={"type": "flask_observe", "handled": pending.handled},
    )
    _apply_head_locals(event, pending, client)
    event["event_id"] = pending.event_id
    if pending.request_data is not None:
        event["request"] = pending.request_data
    if pending.transaction:
        event["transaction"] = pending.transaction
        event["transaction_info"] = {"source": "component"}
    if pending.suppressed:
        event.setdefault("extra", {})[SUPPRESSED_EXTRA] = pending.suppressed
    hint[HINT_KEY] = True
    return event, hint


def _apply_head_locals(event: t.Any, pending: PendingEvent, client: BaseClient) -> None:
    """Serialise the noted locals of the traceback's first frame in place of its
    current ones (unless ``data_collection`` filters variables: then they stay as
    built)."""
    if pending.head_locals is None:
        return
    collection = client.options.get("data_collection")
    if isinstance(collection, dict) and collection.get("provided_by_user"):
        return
    from sentry_sdk.serializer import serialize

    filename, function, lineno, variables = pending.head_locals
    place = (os.path.abspath(filename), function, lineno)
    values = (event.get("exception") or {}).get("values") or [{}]
    for frame in (values[-1].get("stacktrace") or {}).get("frames") or ():
        if (
            "vars" in frame
            and (frame.get("abs_path"), frame.get("function"), frame.get("lineno")) == place
        ):
            custom_repr = client.options.get("custom_repr")
            frame["vars"] = serialize(variables, is_vars=True, custom_repr=custom_repr)
            return


def deliver(pending: PendingEvent) -> str | None:
    """Build *pending*'s event and capture it in its scopes; the event id, or ``None``
    when the SDK dropped it (or its client was closed meanwhile)."""
    from sentry_sdk.scope import use_isolation_scope
    from sentry_sdk.scope import use_scope

    client = pending.client
    if not client.is_active():
        return None
    scope = pending.current_scope
    scope.set_client(client)
    with use_isolation_scope(pending.isolation_scope), use_scope(scope):
        with scrubbing_for(pending.scrubber):
            event, hint = build_event(pending)
            for key, value in pending.tags.items():
                scope.set_tag(key, value)
            if pending.suppressed:
                scope.set_tag(SUPPRESSED_TAG, "yes")
            if pending.transaction:
                scope.set_transaction_name(pending.transaction, source="component")
            return scope.capture_event(event, hint=hint)


@dataclasses.dataclass
class QueueStats:
    """Counters of this process's capture queue (a copy, from :func:`stats`).

    .. versionadded:: 0.2.0
    """

    #: Events handed to the queue.
    submitted: int = 0
    #: Events built and handed to sentry-sdk.
    captured: int = 0
    #: Oldest pending events dropped because the queue was full.
    dropped: int = 0
    #: Events whose building or capture raised (logged as a WARNING).
    failed: int = 0
    #: Events not built: their client was closed meanwhile, or sentry-sdk dropped them
    #: (``before_send``, sampling, ``DedupeIntegration``).
    discarded: int = 0
    #: Events waiting now, including one being built.
    pending: int = 0


class CaptureQueue:
    """A bounded queue of :class:`PendingEvent` and the daemon thread building them.

    :param size: most events waiting; the oldest is dropped for a new one beyond it.

    .. versionadded:: 0.2.0
    """

    def __init__(self, size: int = MAX_PENDING) -> None:
        self.size = size
        self._pending: collections.deque[PendingEvent] = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._busy = False
        self._thread: threading.Thread | None = None
        self._stats = QueueStats()

    def submit(self, pending: PendingEvent) -> None:
        """Queue *pending* (request thread); never blocks beyond a short lock."""
        dropped: PendingEvent | None = None
        with self._cond:
            if len(self._pending) >= self.size:
                dropped = self._pending.popleft()
                self._stats.dropped += 1
            self._pending.append(pending)
            self._stats.submitted += 1
            self._cond.notify()
            thread = self._thread
            if thread is None or not thread.is_alive():
                self._start()
        if dropped is not None:
            del dropped  # released outside the lock: it may hold many objects
            warn_limited(
                "sentry-queue",
                "Flask-Observe: the Sentry capture worker is behind; dropped the oldest "
                "pending events (%d so far).",
                self._stats.dropped,
            )

    def _start(self) -> None:
        thread = threading.Thread(target=self._run, name="flask-observe-sentry", daemon=True)
        thread.start()
        self._thread = thread
        _ensure_exit_hook()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._busy = False
                    self._cond.notify_all()
                    self._cond.wait()
                pending = self._pending.popleft()
                self._busy = True
            self._deliver(pending)
            del pending  # do not keep the last traceback alive while idle

    def _deliver(self, pending: PendingEvent) -> None:
        try:
            event_id = deliver(pending)
        except Exception:
            self._stats.failed += 1
            warn_limited(
                "sentry-build", "Flask-Observe could not build a Sentry event", exc_info=True
            )
            return
        if event_id is None:
            self._stats.discarded += 1
        else:
            self._stats.captured += 1

    def drain(self, timeout: float) -> bool:
        """Wait until every pending event is built and captured, at most *timeout*
        seconds; without a live worker (it could not start), build them here.

        :return: whether the queue is empty and the worker idle.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy:
                thread = self._thread
                if thread is None or not thread.is_alive():
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            else:
                return True
        while time.monotonic() < deadline:
            with self._cond:
                if not self._pending:
                    return True
                pending = self._pending.popleft()
            self._deliver(pending)
            del pending
        return not self._pending

    def stats(self) -> QueueStats:
        """A copy of the counters, with the current number of pending events."""
        with self._cond:
            pending = len(self._pending) + (1 if self._busy else 0)
            return dataclasses.replace(self._stats, pending=pending)

    def _reset_after_fork(self) -> None:
        """In a forked child: none of the parent's events, no thread, fresh lock."""
        self._pending = collections.deque()
        self._cond = threading.Condition(threading.Lock())
        self._busy = False
        self._thread = None
        self._stats = QueueStats()


# Process-wide, not per-app: sentry-sdk's client and transport are process-global too,
# and one thread serves every app of the process.
_queue = CaptureQueue()
_exit_hook: list[bool] = []


def submit(pending: PendingEvent) -> None:
    """Hand *pending* to this process's capture worker (started on first use).

    .. versionadded:: 0.2.0
    """
    _queue.submit(pending)


def drain(timeout: float = 2.0) -> bool:
    """Wait, at most *timeout* seconds, until every event noted so far in this process
    has been built and handed to sentry-sdk (whose transport then sends it).

    :return: whether nothing is left pending.

    .. versionadded:: 0.2.0
    """
    return _queue.drain(timeout)


def stats() -> QueueStats:
    """The counters of this process's capture queue.

    .. versionadded:: 0.2.0
    """
    return _queue.stats()


def _ensure_exit_hook() -> None:
    """Drain at exit, and empty the queue in forked children (registered once, when the
    worker first starts, so after sentry-sdk's own exit hook: :mod:`atexit` runs the
    last registered first, and the SDK's flush then sends what the drain captured)."""
    if _exit_hook:
        return
    _exit_hook.append(True)
    atexit.register(_drain_at_exit)
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_queue._reset_after_fork)


def _drain_at_exit() -> None:
    try:
        import sentry_sdk

        timeout = float(sentry_sdk.get_client().options.get("shutdown_timeout") or 2.0)
    except Exception:
        timeout = 2.0
    if not _queue.drain(timeout):
        warn_limited("sentry-exit", "Flask-Observe: Sentry events still pending at exit are lost")
