"""The capture worker: Sentry events built off the request thread, from a bounded queue.

Building an event is the expensive part of reporting an error: sentry-sdk walks every
frame, reads its source file, serialises its local variables, then serialises the
event again. The request thread only notes what the event needs in a
:class:`~flask_observe.sentry.events.PendingEvent` and hands it to :func:`submit`; one
daemon thread per process builds and captures each one
(:func:`flask_observe.sentry.events.deliver`).

The queue holds at most :data:`MAX_PENDING` events: when the worker is behind, the
oldest pending event is dropped and counted, so a request never waits and memory stays
bounded. The queue is drained at interpreter exit, before sentry-sdk's own exit flush,
and emptied in a forked child (the parent sends its own events).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
import typing as t

from .. import process
from ..containment import warn_limited
from .events import deliver

if t.TYPE_CHECKING:
    from .events import PendingEvent

#: Most events waiting to be built, per process (sentry-sdk's own transport queue holds
#: as many).
MAX_PENDING = 100


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
        if threading.current_thread() is self._thread:
            return False  # from before_send, say: it would wait for itself
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
    """Drain at exit, and empty the queue in forked children (registered when the worker
    first starts, so after sentry-sdk's own exit hook: :mod:`atexit` runs the last
    registered first, and the SDK's flush then sends what the drain captured)."""
    process.at_exit(_drain_at_exit)
    process.after_fork_in_child(_reset_after_fork)


def _reset_after_fork() -> None:
    _queue._reset_after_fork()


def _drain_at_exit() -> None:
    try:
        import sentry_sdk

        timeout = float(sentry_sdk.get_client().options.get("shutdown_timeout") or 2.0)
    except Exception:
        timeout = 2.0
    if not _queue.drain(timeout):
        warn_limited("sentry-exit", "Flask-Observe: Sentry events still pending at exit are lost")
