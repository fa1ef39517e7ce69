"""The sampling engine: one process-wide thread reads ``sys._current_frames()`` every
interval and adds each profiled request's current stack to that request's
:class:`Collector`, weighted by the wall-clock time since its previous sample.

It never installs a trace or profile function and never takes a ``sys.monitoring``
tool id, so cProfile, coverage.py and debuggers keep working beside it, and any number
of overlapping requests (threaded server, gunicorn ``gthread``) are profiled at once.
The thread runs only while at least one request is registered.

A thread running pure Python holds the GIL until the interpreter's switch interval
(5 ms by default) asks it to let go; while sampling, the switch interval is lowered to
the sampling interval (and put back when the sampler stops), so samples come on time.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import sys
import threading
import time
import typing as t
from time import perf_counter

from ...containment import contained

if t.TYPE_CHECKING:
    from types import CodeType
    from types import FrameType

#: Default seconds between two samples.
DEFAULT_INTERVAL = 0.001
#: Deepest stack kept per sample (frames nearest the view are kept).
MAX_DEPTH = 256
#: The last entry of a stack waiting on something that is not a coroutine (a future).
AWAITING = "[awaiting]"
#: Name of the sampler thread.
THREAD_NAME = "flask-observe-sampler"

#: One frame of a finished profile: function (qualified) name, file, first line.
Frame = tuple[str, str, int]


class Collector:
    """The samples of one request: unique stacks (root first) and their seconds.

    Stacks start below :attr:`root`, the frame of the wrapper that called the view.
    For an ``async def`` view, :meth:`attach_coroutine` points the collector at the
    view's coroutine: while it runs, its frames are read from the thread running the
    event loop; while it waits, the frames of its ``await`` chain are the stack, ending
    in an :data:`AWAITING` entry, so awaited time is shown where it was awaited.

    :param thread_id: the request's thread (``threading.get_ident()``).
    :param root: the frame whose callees are sampled (excluded from stacks).
    """

    def __init__(self, thread_id: int, root: FrameType | None) -> None:
        self.thread_id = thread_id
        self.root = root
        self.start = self.last = perf_counter()
        self.end: float | None = None
        #: Seconds per stack; a stack is a tuple of code ids (or :data:`AWAITING`).
        self.stacks: dict[tuple[int | str, ...], float] = {}
        #: The code objects behind the ids in :attr:`stacks` (kept alive: ids unique).
        self.codes: dict[int, CodeType] = {}
        self.samples = 0
        self.coroutine: t.Any = None
        self.loop_thread: int | None = None

    def attach_coroutine(self, coroutine: t.Any, thread_id: int) -> None:
        """Follow *coroutine*, run by the event loop in thread *thread_id*."""
        self.loop_thread = thread_id
        self.coroutine = coroutine

    def detach_coroutine(self) -> None:
        """Back to the request's thread (the coroutine is done)."""
        self.coroutine = None
        self.loop_thread = None

    def sample(self, frames: dict[int, FrameType], now: float) -> None:
        """Add the current stack with the time since the previous sample (sampler
        thread; the GIL keeps the sampled threads still meanwhile).

        :param frames: ``sys._current_frames()``.
        :param now: ``perf_counter()`` of this tick.
        """
        coroutine = self.coroutine
        if coroutine is not None:
            stack = self._coroutine_stack(coroutine, frames)
        else:
            stack = self._thread_stack(frames.get(self.thread_id), self.root)
        weight = now - self.last
        self.last = now
        if stack:
            self.stacks[stack] = self.stacks.get(stack, 0.0) + weight
            self.samples += 1

    def _thread_stack(
        self, frame: FrameType | None, root: FrameType | None
    ) -> tuple[int | str, ...] | None:
        """Code ids from just below *root* (exclusive) to the running *frame*;
        ``None`` when *root* is not on the stack (the view has returned)."""
        if frame is not None and frame.f_code in _SAMPLER_CODES:
            # The request's own thread in register()/unregister(), waiting for a tick
            # to end: the profiler's time, not the request's.
            return ()
        codes = self.codes
        ids: list[int | str] = []
        while frame is not None and frame is not root:
            code = frame.f_code
            key = id(code)
            if key not in codes:
                codes[key] = code
            ids.append(key)
            frame = frame.f_back
        if frame is None and root is not None:
            return None
        ids.reverse()
        del ids[MAX_DEPTH:]
        return tuple(ids)

    def _coroutine_stack(
        self, coroutine: t.Any, frames: dict[int, FrameType]
    ) -> tuple[int | str, ...] | None:
        top = coroutine.cr_frame
        if top is None:  # finished
            return None
        if coroutine.cr_running and self.loop_thread is not None:
            leaf = frames.get(self.loop_thread)
            stack = self._thread_stack(leaf, top.f_back)
            if stack is not None:
                return stack
        # Suspended: walk the await chain (coroutines, generators), then what it awaits.
        codes = self.codes
        ids: list[int | str] = []
        awaited: t.Any = coroutine
        while awaited is not None and len(ids) < MAX_DEPTH:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is None:
                if not hasattr(awaited, "cr_frame") and not hasattr(awaited, "gi_frame"):
                    ids.append(AWAITING)  # a future, a task, a custom awaitable
                break
            code = frame.f_code
            key = id(code)
            if key not in codes:
                codes[key] = code
            ids.append(key)
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None)
        return tuple(ids)

    def finish(self) -> Profile:
        """Stop counting and turn the samples into a :class:`Profile` of plain values."""
        self.end = perf_counter()
        names: dict[int | str, Frame] = {}
        for key, code in self.codes.items():
            name = getattr(code, "co_qualname", code.co_name)  # co_qualname: 3.11+
            names[key] = (name, code.co_filename, code.co_firstlineno)
        stacks: list[tuple[tuple[Frame, ...], float]] = []
        for stack, seconds in self.stacks.items():
            frames = tuple(names[key] if isinstance(key, int) else (key, "", 0) for key in stack)
            stacks.append((frames, seconds))
        stacks.sort(key=lambda item: item[1], reverse=True)
        return Profile(
            stacks=tuple(stacks),
            samples=self.samples,
            duration=self.end - self.start,
        )


class Profile(t.NamedTuple):
    """A finished profile: plain values only, safe to keep after the request.

    :param stacks: ``(frames root first, seconds)`` per unique stack, heaviest first.
    :param samples: how many samples were taken.
    :param duration: wall-clock seconds from the start to the end of profiling.
    """

    stacks: tuple[tuple[tuple[Frame, ...], float], ...]
    samples: int
    duration: float

    @property
    def sampled(self) -> float:
        """Seconds covered by samples (the sum of all stacks' weights)."""
        return sum(seconds for _, seconds in self.stacks)


class Sampler:
    """The sampler thread and the requests it samples, keyed by thread id.

    :param interval: seconds between two samples.
    """

    def __init__(self, interval: float = DEFAULT_INTERVAL) -> None:
        self.interval = interval
        self._collectors: dict[int, Collector] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._switch: tuple[float, float] | None = None  # (previous, ours)

    @property
    def running(self) -> bool:
        """Whether the sampler thread is alive."""
        with self._lock:
            thread = self._thread
        return thread is not None and thread.is_alive()

    def register(self, collector: Collector) -> None:
        """Sample *collector*'s thread from now on; start the thread if needed.

        :raises RuntimeError: that thread is already being sampled.
        """
        with self._lock:
            if collector.thread_id in self._collectors:
                raise RuntimeError("this thread is already being profiled")
            self._collectors[collector.thread_id] = collector
            if self._thread is None:
                self._lower_switch_interval()
                self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
                self._thread.start()

    def unregister(self, collector: Collector) -> None:
        """Stop sampling *collector*'s thread (waiting for a tick under way to end);
        the sampler thread ends when none is left."""
        with self._lock:
            if self._collectors.get(collector.thread_id) is collector:
                del self._collectors[collector.thread_id]

    def _lower_switch_interval(self) -> None:
        previous = sys.getswitchinterval()
        if previous > self.interval:
            sys.setswitchinterval(self.interval)
            self._switch = (previous, sys.getswitchinterval())

    def _restore_switch_interval(self) -> None:
        if self._switch is not None:
            previous, ours = self._switch
            self._switch = None
            if sys.getswitchinterval() == ours:  # nobody else changed it meanwhile
                sys.setswitchinterval(previous)

    def _run(self) -> None:
        current_frames = sys._current_frames
        while True:
            # A tick runs under the lock: once unregister() returns, no tick touches
            # that collector any more, and its owner may read it (finish()).
            with self._lock:
                if not self._collectors:
                    self._thread = None
                    self._restore_switch_interval()
                    return
                frames = current_frames()
                now = perf_counter()
                for collector in self._collectors.values():
                    with contained("profiler sample"):
                        collector.sample(frames, now)
                del frames
            time.sleep(self.interval)


#: Where a profiled thread waits on the sampler's lock (never part of its profile).
_SAMPLER_CODES = frozenset({Sampler.register.__code__, Sampler.unregister.__code__})

_default: Sampler | None = None
_default_lock = threading.Lock()


def default_sampler() -> Sampler:
    """The process-wide sampler at :data:`DEFAULT_INTERVAL` (made on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Sampler()
        return _default
