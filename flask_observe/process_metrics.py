"""Process figures per worker: memory, CPU, garbage collection, threads, files, requests.

Each flush of the app's statsd sender thread also reads this process's figures and
sends them under a worker name that stays bounded however often workers restart: the
worker's *slot* (:mod:`flask_observe.worker_slots`), a number that a restarted worker
takes over from the one it replaces. Names, in the ``none`` dialect::

    shop.process.w0.rss_bytes:52428800|g
    shop.process.w0.cpu_user_seconds:0.04|c

and ``shop.process.rss_bytes`` with the tag ``worker=w0`` in a tag dialect. The request
path pays only for the in-flight count: one append and one pop on a deque.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import typing as t
import weakref
from time import perf_counter

from . import process
from .config import ConfigError
from .containment import warn_limited
from .metrics_state import MetricsState
from .naming import format_number
from .timing import ObserveMiddleware
from .worker_slots import touch_slot
from .worker_slots import worker_slot

if t.TYPE_CHECKING:
    from types import FrameType

    from flask import Flask

    from .config import ObserveConfig
    from .naming import Dialect
    from .state import ObserveState


def check(config: ObserveConfig) -> bool:
    """Whether process figures are sent: ``OBSERVE_PROCESS_METRICS``, by default when
    a statsd host is set.

    :raises ConfigError: they are asked for without ``OBSERVE_STATSD_HOST``.
    """
    wanted = config.process_metrics
    if wanted and config.statsd_host is None:
        raise ConfigError(
            "OBSERVE_PROCESS_METRICS",
            "process figures are sent to statsd: set OBSERVE_STATSD_HOST too, or leave "
            "this setting None",
        )
    return config.statsd_host is not None if wanted is None else wanted


def install(app: Flask, state: ObserveState) -> None:
    """Send *app*'s process figures at each flush of its statsd client: called by
    :meth:`~flask_observe.Observe.init_app` when :func:`check` said so."""
    metrics = state.part(MetricsState)
    if metrics is None or metrics.client is None:  # pragma: no cover - check() ensures it
        return
    figures = ProcessFigures(metrics.dialect)
    state.add_part(figures)
    metrics.client.add_source(figures)


# -- time in the garbage collector (process-wide) ----------------------------------------

#: Seconds spent in collections since the callback was installed, and when the current
#: collection started.
_gc_seconds = 0.0
_gc_started = 0.0
#: The figures objects that read :data:`_gc_seconds`; the callback is installed while
#: there is one.
_gc_readers: weakref.WeakSet[ProcessFigures] = weakref.WeakSet()
_gc_lock = threading.Lock()


def _time_gc(phase: str, info: dict[str, int]) -> None:
    """A :data:`gc.callbacks` entry: adds up the time between ``start`` and ``stop``."""
    global _gc_seconds, _gc_started
    if phase == "start":
        _gc_started = perf_counter()
    else:
        _gc_seconds += perf_counter() - _gc_started


def _read_gc(reader: ProcessFigures) -> None:
    """Register *reader* and install the callback once per process."""
    with _gc_lock:
        _gc_readers.add(reader)
        if _time_gc not in gc.callbacks:
            gc.callbacks.append(_time_gc)


def _stop_reading_gc(reader: ProcessFigures) -> None:
    """Unregister *reader*; the last one removes the callback."""
    with _gc_lock:
        _gc_readers.discard(reader)
        if not _gc_readers and _time_gc in gc.callbacks:
            gc.callbacks.remove(_time_gc)


def _after_fork_in_child() -> None:
    global _gc_lock
    _gc_lock = threading.Lock()
    for figures in list(_gc_readers):
        figures.reset_after_fork()


# -- one app's figures -------------------------------------------------------------------


def read_totals() -> dict[str, float]:
    """The figures that only grow: CPU seconds, collections per generation, GC seconds."""
    times = os.times()
    totals = {
        "cpu_user_seconds": times.user,
        "cpu_system_seconds": times.system,
        "gc_seconds": _gc_seconds,
    }
    for generation, stats in enumerate(gc.get_stats()):
        totals[f"gc_collections_gen{generation}"] = stats["collections"]
    return totals


def read_rss_bytes() -> int | None:
    """Resident memory from ``/proc/self/statm`` (``None`` where there is none)."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def count_open_fds() -> int | None:
    """Open file descriptors (``None`` where the system does not list them)."""
    for listing in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(listing)) - 1  # the listing's own descriptor
        except OSError:
            continue
    return None  # pragma: no cover - neither Linux nor BSD/macOS


#: The code of the middleware's two request paths: a thread whose stack runs one of them
#: is serving a request.
_REQUEST_CODES = frozenset(
    (ObserveMiddleware._measured.__code__, ObserveMiddleware._timed.__code__)
)


def requests_in_flight() -> int:
    """The requests this process is serving now: the threads whose stack is inside
    Flask-Observe's middleware (a streamed body's iteration after the app returned is
    not counted; green threads other than the running one are not seen).

    Read by the sender thread from :func:`sys._current_frames`, so the request path
    does nothing for this figure.
    """
    serving = 0
    for frame in sys._current_frames().values():
        current: FrameType | None = frame
        while current is not None:
            if current.f_code in _REQUEST_CODES:
                serving += 1
                break
            current = current.f_back
    return serving


class ProcessFigures:
    """The process figures part of one app's state: read and written at each flush.

    A source of :meth:`StatsdClient.add_source
    <flask_observe.statsd_client.StatsdClient.add_source>`: :meth:`lines` runs on the
    sender thread.

    :param dialect: the app's names and tag dialect.

    .. versionadded:: 0.3.0
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._heads: dict[tuple[int, str], tuple[str, str]] = {}
        self._lock = threading.Lock()
        _read_gc(self)
        self._last = read_totals()
        process.after_fork_in_child(_after_fork_in_child)

    def key(self, slot: int, figure: str) -> tuple[str, str]:
        """The line's text before ``:`` and its DogStatsD tail, for *figure* of worker
        *slot*: ``<prefix>.process.w<slot>.<figure>`` in the ``none`` dialect, else
        ``<prefix>.process.<figure>`` tagged ``worker=w<slot>``."""
        heads = self._heads.get((slot, figure))
        if heads is None:
            worker = f"w{slot}"
            if self.dialect.dialect == "none":
                heads = self.dialect.key(f"process.{worker}.{figure}", [])
            else:
                heads = self.dialect.key(f"process.{figure}", [("worker", worker)])
            self._heads[(slot, figure)] = heads
        return heads

    def figures(self) -> list[tuple[str, float, str]]:
        """``(figure, value, statsd type)`` read now: counters as the increase since the
        previous call."""
        with self._lock:  # a flush from another thread (close, a test) reads in turn
            totals = read_totals()
            last, self._last = self._last, totals
        read: list[tuple[str, float, str]] = [
            (name, max(0.0, value - last.get(name, 0.0)), "c") for name, value in totals.items()
        ]
        rss = read_rss_bytes()
        if rss is not None:
            read.append(("rss_bytes", rss, "g"))
        fds = count_open_fds()
        if fds is not None:
            read.append(("open_fds", fds, "g"))
        read.append(("threads", threading.active_count(), "g"))
        read.append(("requests_in_flight", requests_in_flight(), "g"))
        return read

    def lines(self) -> list[str]:
        """This flush's lines (none without a worker slot); never raises."""
        try:
            slot = worker_slot()
            if slot is None:
                return []
            touch_slot()
            lines = []
            for figure, value, kind in self.figures():
                if isinstance(value, float):
                    value = round(value, 6)
                head, tail = self.key(slot, figure)
                lines.append(f"{head}:{format_number(value)}|{kind}{tail}")
            return lines
        except Exception:
            warn_limited(
                "process-figures", "Flask-Observe: process figures not read", exc_info=True
            )
            return []

    def close(self) -> None:
        """Stop timing the garbage collector for this app (the client is closing)."""
        _stop_reading_gc(self)

    def reset_after_fork(self) -> None:
        """In a forked child: increases counted from now."""
        self._lock = threading.Lock()
        self._last = read_totals()
