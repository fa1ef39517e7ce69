"""statsd metrics: a timer and a status counter per request, and an API for the app.

Every request emits ``request.<endpoint>.<METHOD>`` (a timer, until the body closed),
``response.<endpoint>.<METHOD>.<status>`` (a counter) and, when a view raised,
``exception.<endpoint>.<ExceptionClass>``; see :doc:`/metrics` for the full scheme.
By default counters and timers are aggregated in process and sent once per flush
interval (:mod:`flask_observe.aggregation`); the request path only hands its endpoint,
method, status and duration over. The app adds its own metrics with the functions of
this module::

    from flask_observe import metrics

    metrics.incr("mail.sent", tags={"queue": "bulk"})
    with metrics.timer("pdf.render"):
        render()

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import functools
import inspect
import random
import typing as t
from time import perf_counter

from .aggregation import Aggregator
from .containment import warn_limited
from .metrics_state import MetricsState as MetricsState
from .naming import clean_part
from .naming import Dialect
from .naming import format_number
from .naming import normalise_tags
from .record import clean_token
from .record import current_record
from .sinks import AggregatingSink
from .sinks import LineSink
from .sinks import RecordingSink
from .sinks import SampledSink
from .state import get_state
from .statsd_client import StatsdClient

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Coroutine
    from types import TracebackType

    from flask import Flask

    from .naming import Tags
    from .sinks import RequestSink
    from .state import ObserveState

P = t.ParamSpec("P")
R = t.TypeVar("R")


def install(app: Flask, state: ObserveState) -> RequestSink | None:
    """Set up metrics for *app*: called by :meth:`~flask_observe.Observe.init_app`.

    Creates the app's statsd client when ``OBSERVE_STATSD_HOST`` is set (no socket is
    opened and no name is resolved yet: that happens on the sender thread).

    :return: the sink the middleware hands each finished request to
        (:mod:`flask_observe.sinks`), ``None`` when neither sending nor recording is on.
    """
    config = state.config
    record = config.metrics_record
    if record is None:
        record = config.statsd_host is None and (app.debug or app.testing)
    metrics = MetricsState(
        dialect=Dialect(config.statsd_tags, config.statsd_prefix),
        client=None,
        record=record,
        sample_rate=config.statsd_sample_rate,
    )
    state.add_part(metrics)
    sender: AggregatingSink | LineSink | None = None
    if config.statsd_host is not None:
        if config.statsd_aggregate:
            metrics.aggregator = Aggregator(config.statsd_timer_samples, metrics.describe)
        metrics.client = StatsdClient(
            config.statsd_host,
            config.statsd_port,
            config.statsd_protocol,
            config.statsd_max_packet,
            config.statsd_flush_interval,
            aggregator=metrics.aggregator,
        )
        if metrics.aggregator is not None:
            sender = AggregatingSink(metrics, metrics.aggregator, metrics.client)
        else:
            sender = LineSink(metrics, metrics.client)
    sink: AggregatingSink | LineSink | RecordingSink | None = sender
    if record:
        sink = RecordingSink(metrics, sender)
    if sink is not None and metrics.sample_rate < 1.0:
        return SampledSink(sink, metrics.sample_rate)
    return sink


# -- the app-facing API ------------------------------------------------------------------


def _state() -> MetricsState:
    """The current app's metrics state; a clear error outside an app context."""
    metrics = get_state().part(MetricsState)
    if metrics is None:  # pragma: no cover - set by init_app
        raise RuntimeError("Flask-Observe metrics are not set up on this app.")
    return metrics


def _send(kind: str, name: str, value: object, tags: Tags, rate: float = 1.0) -> None:
    metrics = _state()
    try:
        if kind == "ms":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"a timing must be a number of milliseconds, got {value!r}")
            text = "%0.6f" % value
        else:
            text = format_number(value)
        if metrics.aggregator is None:
            metrics.emit([metrics.dialect.line(name, text, kind, tags, rate)])
            return
        clean_name = clean_part(name)
        clean_tags = normalise_tags(tags)
        if metrics.record:
            metrics.record_lines(
                [metrics.dialect.compose(clean_name, clean_tags, text, kind, rate)]
            )
        metrics.aggregate(kind, clean_name, clean_tags, t.cast("float", value), rate)
    except Exception:
        warn_limited(f"metric:{kind}", "Flask-Observe: metric %r not sent", name, exc_info=True)


def incr(name: str, value: float = 1, tags: Tags = None, rate: float = 1.0) -> None:
    """Add *value* to the counter *name* of the current app.

    :param name: the metric name; dots make hierarchy, e.g. ``"mail.sent"``.
    :param value: how much to add (negative to subtract).
    :param tags: ``{"key": "value"}`` or pairs; with the ``none`` dialect the values
        are appended to the name in order.
    :param rate: send only this share of calls, marked ``|@rate`` so statsd scales up.
    :raises RuntimeError: outside an application context, or Flask-Observe is not
        initialised on the app.

    .. versionadded:: 0.1.0
    """
    if rate < 1.0:
        _state()  # the same error outside an app context, sampled or not
        if random.random() >= rate:
            return
    _send("c", name, value, tags, rate)


def gauge(name: str, value: float, tags: Tags = None, delta: bool = False) -> None:
    """Set the gauge *name* to *value* (or change it by *value* with ``delta=True``).

    A negative absolute value is sent as ``0`` then the value in one packet, because
    statsd reads a leading sign as a change.

    :param name: the metric name.
    :param value: the new value, or the change with *delta*.
    :param tags: as for :func:`incr`.
    :param delta: *value* is a change, not a new value.
    :raises RuntimeError: outside an application context.

    .. versionadded:: 0.1.0
    """
    metrics = _state()
    try:
        text = format_number(value)
        if delta and not text.startswith("-"):
            text = "+" + text
        lines = [metrics.dialect.line(name, text, "g", tags)]
        if not delta and text.startswith("-"):
            lines.insert(0, metrics.dialect.line(name, "0", "g", tags))
        metrics.emit(lines)
    except Exception:
        warn_limited("metric:g", "Flask-Observe: metric %r not sent", name, exc_info=True)


def timing(name: str, ms: float, tags: Tags = None) -> None:
    """Send a timer value of *ms* milliseconds.

    :param name: the metric name.
    :param ms: the duration in milliseconds.
    :param tags: as for :func:`incr`.
    :raises RuntimeError: outside an application context.

    .. versionadded:: 0.1.0
    """
    _send("ms", name, ms, tags)


class MetricTimer:
    """Time a block or a function and send the duration as a statsd timer.

    Made by :func:`timer`. Inside a request it also adds a ``Server-Timing`` entry
    (when the block ends before the response headers are sent). The current app is
    looked up when the block starts, so a decorator can be applied at import time.
    Not re-entrant: use one ``timer()`` per concurrent block.

    :param name: the metric name.
    :param tags: as for :func:`incr`.

    .. versionadded:: 0.1.0
    """

    def __init__(self, name: str, tags: Tags = None) -> None:
        self.name = name
        self.tags = tags
        #: The last measured duration in milliseconds.
        self.ms: float | None = None
        self._start = 0.0

    def __enter__(self) -> MetricTimer:
        _state()
        self._start = perf_counter()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(perf_counter() - self._start)

    def stop(self, seconds: float) -> None:
        """Send a measured duration of *seconds* (and note it for ``Server-Timing``)."""
        self.ms = seconds * 1000.0
        record = current_record()
        if record is not None:
            record.add_timer(clean_token(self.name), seconds)
        _send("ms", self.name, self.ms, self.tags)

    @t.overload
    def __call__(
        self, func: Callable[P, Coroutine[t.Any, t.Any, R]]
    ) -> Callable[P, Coroutine[t.Any, t.Any, R]]: ...

    @t.overload
    def __call__(self, func: Callable[P, R]) -> Callable[P, R]: ...

    def __call__(self, func: Callable[P, t.Any]) -> Callable[P, t.Any]:
        name, tags = self.name, self.tags
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> t.Any:
                with MetricTimer(name, tags):
                    return await func(*args, **kwargs)

            return async_wrapper

        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> t.Any:
            with MetricTimer(name, tags):
                return func(*args, **kwargs)

        return wrapper


def timer(name: str, tags: Tags = None) -> MetricTimer:
    """A timer for a ``with`` block or, as a decorator, for every call of a function
    (``async def`` too).

    ::

        with metrics.timer("report.build"):
            build()

        @metrics.timer("report.render")
        def render(): ...

    :param name: the metric name.
    :param tags: as for :func:`incr`.

    .. versionadded:: 0.1.0
    """
    return MetricTimer(name, tags)


def client(app: Flask | None = None) -> StatsdClient | None:
    """The statsd client of *app* (default: the current app), ``None`` without a host.

    Use it to :meth:`~flask_observe.statsd_client.StatsdClient.flush` or
    :meth:`~flask_observe.statsd_client.StatsdClient.close` explicitly, e.g. in tests.

    .. versionadded:: 0.1.0
    """
    metrics = get_state(app).part(MetricsState)
    return metrics.client if metrics is not None else None
