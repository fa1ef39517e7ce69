"""Client-side aggregation: statsd counters summed per name and timers kept as bounded
samples per name, sent as one batch per flush interval instead of one line per event.

The request path hands over one finished request as one tuple appended to
:attr:`Aggregator.pending` (a bounded :class:`~collections.deque`: a C-level append, no
lock, no Python call). The sender thread collects them (:meth:`Aggregator.collect`, at
least every :data:`~flask_observe.statsd_client.COLLECT_INTERVAL` seconds) into a
table by (endpoint, method, status line), which is bounded: at most :data:`TABLE_KEYS`
keys; requests beyond it (a client inventing methods, an app inventing status lines)
are aggregated under their metric names, which are bounded too. Counters from the app
(:func:`flask_observe.metrics.incr`) and timers from the app are added under a lock.
Each flush (:meth:`Aggregator.drain`) collects, then turns what accumulated into lines:

``name:<sum>|c``
    one line per counter name; with a sample rate, the sum of the sampled increments
    with ``|@rate``, so the daemon still multiplies by ``1/rate``.

``name:<ms>|ms``
    one line per kept sample. Up to :data:`COLLECTED` values per timer name (and
    status, for the request timer) are collected per interval, and more are counted;
    at most *max_samples* of them, evenly spread over the interval, are sent. When fewer are
    sent than were counted, each one stands for a power of two of them, written as
    ``|@0.5``, ``|@0.25``..., chosen so that they add up to the exact number: statsd
    counts a timer value with rate *r* as ``1/r`` values, and these rates and their sums
    are exact in floating point, so the timer's ``count`` stays exact.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import collections
import threading
import typing as t

from .containment import warn_limited
from .naming import format_number
from .naming import format_rate

if t.TYPE_CHECKING:
    from collections.abc import Callable

#: Most timer values collected per timer name (and request key) per flush interval;
#: later ones are only counted. Bounds the memory between two flushes.
COLLECTED = 4096

#: Most (endpoint, method, status line) keys in :attr:`Aggregator.requests`: an app
#: has a few per route; a client inventing methods or paths cannot grow it further.
TABLE_KEYS = 4096

#: Most finished requests waiting for the sender thread to collect them; when the
#: thread does not run (a closed client), older ones are dropped, so memory stays
#: bounded. At one collection per
#: :data:`~flask_observe.statsd_client.COLLECT_INTERVAL`, far more requests than one
#: process serves.
PENDING_REQUESTS = 65536

#: The table's key of a request: endpoint, method and status line.
RequestKey = tuple[str | None, str, str | None]

#: A finished request as the request path hands it over: endpoint, method, status
#: line and duration in seconds.
FinishedRequest = tuple[str | None, str, str | None, float]


class TimerSeries(t.NamedTuple):
    """How to write the lines of one timer: ``{head}:{ms}|ms{|@rate}{tail}``."""

    #: The name (with any Graphite or InfluxDB tags).
    head: str
    #: After the type and rate: DogStatsD tags (``|#k:v``) or nothing.
    tail: str
    #: The rate its values were sampled at (1.0: every value).
    rate: float = 1.0


class RequestNames(t.NamedTuple):
    """The metrics of one request key: its timer and its status counter template."""

    timer: TimerSeries
    #: A ``%s`` template for the counter line, e.g. ``response.index.GET.200:%s|c``.
    counter: str


def power_weights(total: int, parts: int) -> list[tuple[int, int]]:
    """Powers of two adding up to *total*, as many as *parts* where possible.

    Each kept timer sample is sent with the rate ``1/weight``; powers of two make both
    the rate's decimal text and the daemon's sum of ``1/rate`` exact.

    :param total: how many values the samples stand for.
    :param parts: how many samples were kept (at most *total*).
    :return: ``(weight, how many)`` pairs, the counts adding up to *parts*, or to more
        (one per set bit of *total*) when *parts* is smaller than that.
    """
    counts = [total >> bit & 1 for bit in range(total.bit_length())]
    missing = parts - sum(counts)
    bit = len(counts) - 1
    while missing > 0 and bit > 0:
        split = min(counts[bit], missing)
        counts[bit] -= split
        counts[bit - 1] += 2 * split
        missing -= split
        if counts[bit] == 0:
            bit -= 1
    return [(1 << bit, count) for bit, count in enumerate(counts) if count]


class Aggregator:
    """Counters and timer samples of one statsd client, accumulated between flushes.

    Thread-safe. The request path appends to :attr:`pending`; :meth:`collect` (the
    sender thread) moves what is pending into the table, which only it and
    :meth:`drain` touch, under the lock.

    :param max_samples: the most timer values sent per timer (and request key) per flush.
    :param describe: the metric names of a request key.

    .. versionadded:: 0.2.0
    .. versionchanged:: 0.3.0
        Requests are handed over through :attr:`pending`; ``add_request`` and the
        ``requests`` table are gone.
    """

    def __init__(self, max_samples: int, describe: Callable[[RequestKey], RequestNames]) -> None:
        if max_samples < 1:
            raise ValueError("max_samples must be at least 1")
        self.max_samples = max_samples
        #: Values collected per list before they are only counted.
        self.collected = max(COLLECTED, max_samples)
        self.describe = describe
        #: Finished requests not collected yet; ``pending.append`` is the request path's
        #: hand-over (atomic, and never blocks).
        self.pending: collections.deque[FinishedRequest] = collections.deque(
            maxlen=PENDING_REQUESTS
        )
        self._lock = threading.Lock()
        #: Held by :meth:`collect` alone: two threads that collect take turns.
        self._collecting = threading.Lock()
        #: Request durations in seconds since the last flush, per key (lock held).
        self._requests: dict[RequestKey, list[float]] = {}
        self._request_extra: dict[RequestKey, int] = {}
        #: Requests that found no room in the table, by metric names.
        self._overflow: dict[RequestNames, list[float]] = {}
        self._overflow_extra: dict[RequestNames, int] = {}
        self._counters: dict[str, float] = {}
        self._timers: dict[TimerSeries, list[float]] = {}
        self._timer_extra: dict[TimerSeries, int] = {}

    def collect(self) -> None:
        """Move the pending requests into the table: the sender thread calls it between
        flushes, and :meth:`drain` first."""
        with self._collecting:
            pending = self.pending
            if len(pending) == pending.maxlen:
                warn_limited(
                    "aggregate-pending",
                    "Flask-Observe: requests waited too long for the statsd sender thread; "
                    "the oldest were not counted",
                )
            popleft = pending.popleft
            grouped: dict[RequestKey, list[float]] = {}
            for _ in range(len(pending)):
                endpoint, method, status, seconds = popleft()
                key = (endpoint, method, status)
                samples = grouped.get(key)
                if samples is None:
                    grouped[key] = [seconds]
                else:
                    samples.append(seconds)
        if grouped:
            with self._lock:
                for key, values in grouped.items():
                    self._add_requests(key, values)

    def _add_requests(self, key: RequestKey, values: list[float]) -> None:
        """Add the durations of requests of one key: to the table while it has room for
        the key, else under its metric names (lock held)."""
        samples = self._requests.get(key)
        if samples is None and len(self._requests) < TABLE_KEYS:
            samples = self._requests[key] = []
        if samples is not None:
            self._keep(samples, values, self._request_extra, key)
            return
        names = self.describe(key)
        self._keep(self._overflow.setdefault(names, []), values, self._overflow_extra, names)

    def _keep(
        self, samples: list[float], values: list[float], extra: dict[t.Any, int], key: object
    ) -> None:
        """Keep *values* in *samples* up to :attr:`collected`, count the rest (lock held)."""
        room = self.collected - len(samples)
        samples += values[:room]
        if len(values) > room:
            extra[key] = extra.get(key, 0) + len(values) - room

    def count(self, template: str, value: float) -> None:
        """Add *value* to the counter whose line is ``template % value``."""
        with self._lock:
            self._counters[template] = self._counters.get(template, 0) + value

    def timing(self, series: TimerSeries, ms: float) -> None:
        """Add a timer value of *ms* milliseconds to *series*."""
        with self._lock:
            self._keep(self._timers.setdefault(series, []), [ms], self._timer_extra, series)

    def drain(self) -> list[str]:
        """Take everything accumulated since the last call and return it as lines."""
        self.collect()
        with self._lock:
            taken, self._requests = self._requests, {}
            request_extra, self._request_extra = self._request_extra, {}
            overflow, self._overflow = self._overflow, {}
            overflow_extra, self._overflow_extra = self._overflow_extra, {}
            counters, self._counters = self._counters, {}
            timers, self._timers = self._timers, {}
            timer_extra, self._timer_extra = self._timer_extra, {}
        requests = [
            (self.describe(key), seconds, request_extra.get(key, 0))
            for key, seconds in taken.items()
        ]
        requests += [
            (names, seconds, overflow_extra.get(names, 0)) for names, seconds in overflow.items()
        ]
        grouped: dict[TimerSeries, dict[int, list[float]]] = {}
        for names, seconds, extra in requests:
            total = len(seconds) + extra
            counters[names.counter] = counters.get(names.counter, 0) + total
            self._weigh(seconds, total, grouped.setdefault(names.timer, {}), 1000.0)
        for series, ms in timers.items():
            total = len(ms) + timer_extra.get(series, 0)
            self._weigh(ms, total, grouped.setdefault(series, {}))
        lines = [template % format_number(value) for template, value in counters.items()]
        for series, groups in grouped.items():
            for weight, values in groups.items():
                lines += _timer_lines(series, weight, values)
        return lines

    def _weigh(
        self,
        values: list[float],
        total: int,
        groups: dict[int, list[float]],
        scale: float = 1.0,
    ) -> None:
        """Add at most *max_samples* of *values* (times *scale*: milliseconds), spread
        evenly over the interval, to *groups* by the number of values each stands for
        (adding up to *total*)."""
        size = len(values)
        if size > self.max_samples:
            step = size / self.max_samples
            values = [values[int(index * step)] for index in range(self.max_samples)]
            size = self.max_samples
        if scale != 1.0:
            values = [value * scale for value in values]
        if total == size:
            groups.setdefault(1, []).extend(values)
            return
        taken = 0
        for weight, count in power_weights(total, size):
            group = groups.setdefault(weight, [])
            while count > 0:  # more weights than values only when *size* is tiny
                part = values[taken : taken + count]
                group += part
                count -= len(part)
                taken = (taken + len(part)) % size

    def reset(self) -> None:
        """Forget everything (in a forked child: the parent sends what it had)."""
        self._lock = threading.Lock()
        self._collecting = threading.Lock()
        self.pending.clear()
        self._requests = {}
        self._request_extra = {}
        self._overflow = {}
        self._overflow_extra = {}
        self._counters = {}
        self._timers = {}
        self._timer_extra = {}


def _timer_lines(series: TimerSeries, weight: int, values: list[float]) -> list[str]:
    """The lines of *values* (milliseconds) of one timer, each standing for *weight*
    values, formatted in one ``%`` operation."""
    suffix = "|ms" + format_rate(series.rate / weight) + series.tail
    start = series.head + ":"
    template = start + (suffix + "\n" + start).join(["%0.6f"] * len(values)) + suffix
    return (template % tuple(values)).split("\n")
