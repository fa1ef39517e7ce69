"""Process figures per worker: memory, CPU, garbage collection, threads, files, requests.

Each flush of the app's statsd sender thread also reads this process's figures and
sends them under a worker name that stays bounded however often workers restart: the
worker's *slot*, the lowest free number among lock files that the processes with the
same parent (a gunicorn or uWSGI master) share. A worker holds its slot's file locked
(:func:`fcntl.flock`) as long as it lives; the kernel releases the lock when it dies,
and its replacement takes the free number. Names, in the ``none`` dialect::

    shop.process.w0.rss_bytes:52428800|g
    shop.process.w0.cpu_user_seconds:0.04|c

and ``shop.process.rss_bytes`` with the tag ``worker=w0`` in a tag dialect. The request
path pays only for the in-flight count: one append and one pop on a deque.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import collections
import gc
import os
import tempfile
import threading
import typing as t
import weakref
from pathlib import Path
from time import perf_counter

from . import process
from .config import ConfigError
from .containment import warn_limited
from .metrics_state import MetricsState
from .naming import format_number

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no worker slots, no process figures
    fcntl = None  # type: ignore[assignment]

if t.TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment
    from flask import Flask

    from .config import ObserveConfig
    from .naming import Dialect
    from .state import ObserveState

#: Most worker slots per parent process; a process that finds none free sends no figures.
MAX_SLOTS = 256


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
    """Send *app*'s process figures at each flush of its statsd client and count its
    requests in flight: called by :meth:`~flask_observe.Observe.init_app` after the
    request middleware is installed, when :func:`check` said so."""
    metrics = state.part(MetricsState)
    if metrics is None or metrics.client is None:  # pragma: no cover - check() ensures it
        return
    figures = ProcessFigures(metrics.dialect)
    state.add_part(figures)
    metrics.client.add_source(figures)
    app.wsgi_app = figures.count_in_flight(app.wsgi_app)  # type: ignore[method-assign,assignment]


# -- worker slots (process-wide) ---------------------------------------------------------

_slot_lock = threading.Lock()
#: This process's slot number and the descriptor holding its lock; ``None`` until the
#: first flush asks.
_slot: tuple[int, int] | None = None
#: The slot of this process could not be had; asked again no sooner than a fork.
_slot_failed = False


def slot_directory() -> Path:
    """Where the workers of this process's parent take their slots:
    ``<tmp>/flask-observe-<uid>/parent-<ppid>``."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"flask-observe-{uid}" / f"parent-{os.getppid()}"


def worker_slot() -> int | None:
    """This process's worker slot, allocated on the first call (``None``: none free,
    or the directory is unusable; a warning says why)."""
    global _slot, _slot_failed
    with _slot_lock:
        if _slot is None and not _slot_failed:
            try:
                _slot = _take_slot(slot_directory())
            except OSError as exc:
                warn_limited(
                    "process-slot",
                    "Flask-Observe: no worker slot (%s); process figures are not sent",
                    exc,
                )
            _slot_failed = _slot is None
        return _slot[0] if _slot is not None else None


def _take_slot(directory: Path) -> tuple[int, int] | None:
    if fcntl is None:  # pragma: no cover - Windows
        raise OSError("file locks are not available on this platform")
    base = directory.parent
    base.mkdir(mode=0o700, exist_ok=True)
    info = os.lstat(base)
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or not os.path.isdir(base):
        raise OSError(f"{base} is not a private directory of this user")
    _remove_stale(base)
    directory.mkdir(mode=0o700, exist_ok=True)
    for number in range(MAX_SLOTS):
        fd = os.open(directory / f"slot-{number}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return number, fd
    warn_limited(
        "process-slot-full",
        "Flask-Observe: all %d worker slots in %s are taken; process figures are not sent",
        MAX_SLOTS,
        directory,
    )
    return None


def _touch_slot() -> None:
    """Refresh the slot file's times at each flush, so that a cleaner of old files in
    the temporary directory (systemd-tmpfiles) never takes a live worker's slot file."""
    held = _slot
    if held is not None and os.utime in os.supports_fd:
        os.utime(held[1])


def _remove_stale(base: Path) -> None:
    """Remove the slot directories of parents that are gone, keeping any slot a live
    process (an orphaned worker) still holds."""
    for directory in base.glob("parent-*"):
        try:
            if _alive(int(directory.name[len("parent-") :])):
                continue
            for slot in directory.glob("slot-*"):
                fd = os.open(slot, os.O_RDWR)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    slot.unlink()  # under the lock: no worker can take it meanwhile
                except BlockingIOError:
                    pass
                finally:
                    os.close(fd)
            directory.rmdir()
        except (OSError, ValueError):  # held, raced by a sibling, or not ours
            continue


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _forget_slot_after_fork() -> None:
    """In a forked child: the parent's slot descriptor shares the parent's lock, so the
    child closes its copy and takes a slot of its own when it first flushes."""
    global _slot, _slot_lock, _slot_failed
    _slot_lock = threading.Lock()
    if _slot is not None:
        try:
            os.close(_slot[1])
        except OSError:  # pragma: no cover - already closed
            pass
    _slot = None
    _slot_failed = False


# -- time in the garbage collector (process-wide) ----------------------------------------

#: Seconds spent in collections since the callback was installed, and when the current
#: collection started.
_gc_seconds = 0.0
_gc_started = 0.0
#: The figures objects that read :data:`_gc_seconds`; the callback is installed while
#: there is one.
_gc_readers: weakref.WeakSet[ProcessFigures] = weakref.WeakSet()


def _time_gc(phase: str, info: dict[str, int]) -> None:
    """A :data:`gc.callbacks` entry: adds up the time between ``start`` and ``stop``."""
    global _gc_seconds, _gc_started
    if phase == "start":
        _gc_started = perf_counter()
    else:
        _gc_seconds += perf_counter() - _gc_started


def _read_gc(reader: ProcessFigures) -> None:
    """Register *reader* and install the callback once per process."""
    with _slot_lock:
        _gc_readers.add(reader)
        if _time_gc not in gc.callbacks:
            gc.callbacks.append(_time_gc)


def _stop_reading_gc(reader: ProcessFigures) -> None:
    """Unregister *reader*; the last one removes the callback."""
    with _slot_lock:
        _gc_readers.discard(reader)
        if not _gc_readers and _time_gc in gc.callbacks:
            gc.callbacks.remove(_time_gc)


def _after_fork_in_child() -> None:
    _forget_slot_after_fork()
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
        #: One entry per request inside the app's WSGI callable (see
        #: :meth:`count_in_flight`); appending and popping are atomic.
        self.in_flight: collections.deque[None] = collections.deque()
        self._heads: dict[tuple[int, str], tuple[str, str]] = {}
        self._lock = threading.Lock()
        _read_gc(self)
        self._last = read_totals()
        process.after_fork_in_child(_after_fork_in_child)

    def count_in_flight(self, wsgi_app: WSGIApplication) -> WSGIApplication:
        """Wrap *wsgi_app* so that :attr:`in_flight` holds the requests it is serving
        (until it returns: a streamed body's iteration is not counted)."""
        in_flight = self.in_flight
        enter = in_flight.append
        leave = in_flight.pop

        def counted(environ: WSGIEnvironment, start_response: StartResponse) -> t.Any:
            enter(None)
            try:
                return wsgi_app(environ, start_response)
            finally:
                leave()

        return counted

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
        read.append(("requests_in_flight", len(self.in_flight), "g"))
        return read

    def lines(self) -> list[str]:
        """This flush's lines (none without a worker slot); never raises."""
        try:
            slot = worker_slot()
            if slot is None:
                return []
            _touch_slot()
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
        """In a forked child: no request in flight, and increases counted from now."""
        self.in_flight.clear()
        self._lock = threading.Lock()
        self._last = read_totals()
