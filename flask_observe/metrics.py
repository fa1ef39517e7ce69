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

import dataclasses
import functools
import inspect
import random
import typing as t
from time import perf_counter

from .aggregation import Aggregator
from .aggregation import find_samples
from .aggregation import RequestNames
from .aggregation import TimerSeries
from .containment import warn_limited
from .naming import clean_part
from .naming import Dialect
from .naming import exception_line
from .naming import format_number
from .naming import format_rate
from .naming import normalise_tags
from .naming import route_lines
from .naming import RouteLines
from .record import clean_token
from .record import current_record
from .state import get_state
from .statsd_client import StatsdClient

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Coroutine
    from types import TracebackType

    from flask import Flask

    from .aggregation import RequestKey
    from .aggregation import RequestSlot
    from .naming import Tags
    from .record import RequestRecord
    from .state import FinishHook
    from .state import ObserveState
    from .state import RequestHook

P = t.ParamSpec("P")
R = t.TypeVar("R")

#: Most ``(endpoint, method)`` pairs whose line templates are cached per app.
ROUTE_CACHE_SIZE = 1024


@dataclasses.dataclass(eq=False)
class MetricsState:
    """The metrics part of one app's state (``get_state(app).part(MetricsState)``).

    .. versionadded:: 0.1.0
    """

    #: Builds the lines in the configured prefix and tag dialect.
    dialect: Dialect
    #: Sends the lines; ``None`` when ``OBSERVE_STATSD_HOST`` is not set.
    client: StatsdClient | None
    #: Whether each request's lines are kept in ``RequestRecord.metric_lines``.
    record: bool
    #: ``OBSERVE_STATSD_SAMPLE_RATE``.
    sample_rate: float
    #: Sums counters and samples timers between flushes (``OBSERVE_STATSD_AGGREGATE``);
    #: ``None`` when every metric is sent as its own line.
    aggregator: Aggregator | None = None
    #: Line templates per ``(endpoint, method)``, bounded by :data:`ROUTE_CACHE_SIZE`.
    routes: dict[tuple[str | None, str], RouteLines] = dataclasses.field(default_factory=dict)
    #: Aggregated metric names per request key, bounded by :data:`ROUTE_CACHE_SIZE`.
    request_names: dict[RequestKey, RequestNames] = dataclasses.field(default_factory=dict)

    def route(self, endpoint: str | None, method: str) -> RouteLines:
        """The (cached) line templates of one endpoint and method."""
        key = (endpoint, method)
        lines = self.routes.get(key)
        if lines is None:
            lines = route_lines(self.dialect, endpoint, method, self.sample_rate)
            if len(self.routes) < ROUTE_CACHE_SIZE:
                self.routes[key] = lines
        return lines

    def describe(self, key: RequestKey) -> RequestNames:
        """The aggregated timer and status counter of a request key (cached)."""
        names = self.request_names.get(key)
        if names is None:
            endpoint, method, status = key
            route = self.route(endpoint, method)
            code = status[:3] if status else "_"
            if not code.isdigit():
                code = "_"
            tags = [("endpoint", route.endpoint), ("method", route.method)]
            head, tail = self.dialect.key("request", tags)
            counter = self.dialect.compose(
                "response", [*tags, ("status", code)], "%s", "c", self.sample_rate
            )
            names = RequestNames(TimerSeries(head, tail, self.sample_rate), counter)
            if len(self.request_names) < ROUTE_CACHE_SIZE:
                self.request_names[key] = names
        return names

    def emit(self, lines: list[str]) -> None:
        """Send *lines* (if a host is set) and record them on the current request."""
        self.record_lines(lines)
        if self.client is not None:
            self.client.add(lines)

    def record_lines(self, lines: list[str]) -> None:
        """Keep *lines* on the current request's record, when recording is on."""
        if self.record:
            record = current_record()
            if record is not None:
                if record.metric_lines is None:
                    record.metric_lines = []
                record.metric_lines.extend(lines)

    def aggregate(
        self, kind: str, name: str, tags: list[tuple[str, str]], value: float, rate: float
    ) -> None:
        """Add a counter (``c``) or timer (``ms``) value with clean *name* and *tags* to
        the aggregator."""
        aggregator = self.aggregator
        assert aggregator is not None and self.client is not None
        head, tail = self.dialect.key(name, tags)
        if kind == "c":
            aggregator.count(f"{head}:%s|c{format_rate(rate)}{tail}", value)
        else:
            aggregator.timing(TimerSeries(head, tail, rate), value)
        self.client.start()


def install(app: Flask, state: ObserveState) -> tuple[FinishHook, ...]:
    """Set up metrics for *app*: called by :meth:`~flask_observe.Observe.init_app`.

    Creates the app's statsd client when ``OBSERVE_STATSD_HOST`` is set (no socket is
    opened and no name is resolved yet: that happens on the sender thread).

    :return: the finish hook that emits the request metrics, when recording or sending
        is on; else nothing.
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
    state.add_part(metrics)
    if record:
        return (_record_hook(metrics),)
    return ()


def request_hook(state: ObserveState) -> RequestHook | None:
    """The request hook of metrics for the middleware, set up by :func:`install`: hands
    each request over without a record when a host is set and recording is off.

    .. versionadded:: 0.2.0
    """
    metrics = state.part(MetricsState)
    if not isinstance(metrics, MetricsState) or metrics.client is None or metrics.record:
        return None
    if metrics.aggregator is not None:
        return _aggregating_hook(metrics, metrics.aggregator, metrics.client)
    return _line_hook(metrics, metrics.client)


def request_table(state: ObserveState) -> dict[str | None, list[RequestSlot]] | None:
    """The aggregator's table of slots per endpoint, for the middleware to append a record-less
    request's duration to itself (a key already there, a list not full) instead of
    calling the request hook: when requests are aggregated with every one counted (no
    sample rate). ``None`` when the hook must see each request.

    .. versionadded:: 0.2.0
    """
    metrics = state.part(MetricsState)
    if request_hook(state) is None or not isinstance(metrics, MetricsState):
        return None
    if metrics.aggregator is None or metrics.sample_rate < 1.0:
        return None
    return metrics.aggregator.requests


def table_size(state: ObserveState) -> int:
    """The most durations a list of :func:`request_table` holds between two flushes."""
    metrics = state.part(MetricsState)
    if not isinstance(metrics, MetricsState) or metrics.aggregator is None:
        return 0
    return metrics.aggregator.collected


def _request_lines(metrics: MetricsState) -> Callable[[str | None, str, str | None, float], str]:
    """Builds one request's timer and status counter lines, from one template cached per
    ``(endpoint, method, status line)`` filled by a single ``%`` operation."""
    templates: dict[tuple[str | None, str, str | None], str] = {}
    route = metrics.route

    def request_lines(endpoint: str | None, method: str, status: str | None, seconds: float) -> str:
        template = templates.get((endpoint, method, status))
        if template is None:
            names = route(endpoint, method)
            code = status[:3] if status else "_"
            if not code.isdigit():
                code = "_"
            template = names.timer + "\n" + names.response % code
            if len(templates) < ROUTE_CACHE_SIZE:
                templates[(endpoint, method, status)] = template
        return template % (seconds * 1000.0)

    return request_lines


def _extra_lines(metrics: MetricsState, record: RequestRecord) -> list[str]:
    """The rare lines of a request: the exception counter and named ``timed`` timers."""
    dialect = metrics.dialect
    rate = metrics.sample_rate
    lines = []
    if record.exception is not None:
        endpoint = metrics.route(record.endpoint, record.method).endpoint
        lines.append(exception_line(dialect, endpoint, record.exception, rate))
    for timer in record.timers:
        if timer.metric:
            ms = "%0.6f" % (timer.seconds * 1000.0)
            lines.append(dialect.compose(clean_part(timer.name), [], ms, "ms", rate))
    return lines


def _aggregate_extras(metrics: MetricsState, record: RequestRecord) -> None:
    """Add the exception counter and named ``timed`` timers of *record* to the
    aggregator."""
    rate = metrics.sample_rate
    if record.exception is not None:
        endpoint = metrics.route(record.endpoint, record.method).endpoint
        exception = record.exception
        tags = [("endpoint", endpoint), ("exception", clean_part(type(exception).__name__))]
        metrics.aggregate("c", "exception", tags, 1, rate)
    for timer in record.timers:
        if timer.metric:
            metrics.aggregate("ms", clean_part(timer.name), [], timer.seconds * 1000.0, rate)


def _aggregating_hook(
    metrics: MetricsState, aggregator: Aggregator, client: StatsdClient
) -> RequestHook:
    """The request hook with aggregation: one dictionary look-up and one list append.

    A request whose key (endpoint, method, status line) is already in the aggregator's
    table appends its duration there; a new key, a full list (more requests than kept
    samples this interval) and the rare extras go through the aggregator's lock.
    """
    rate = metrics.sample_rate
    sampled = rate < 1.0
    rand = random.random
    get = aggregator.requests.get
    limit = aggregator.collected
    add_request = aggregator.add_request
    start = client.start

    def aggregate_request(
        endpoint: str | None,
        method: str,
        status: str | None,
        seconds: float,
        record: RequestRecord | None,
    ) -> None:
        if sampled and rand() >= rate:
            return
        samples = find_samples(get(endpoint), method, status)
        if samples is not None and len(samples) < limit:
            samples.append(seconds)
        else:
            add_request((endpoint, method, status), seconds)
            start()
        if record is not None and (record.exception is not None or record.timers):
            _aggregate_extras(metrics, record)

    return aggregate_request


def _line_hook(metrics: MetricsState, client: StatsdClient) -> RequestHook:
    """The request hook without aggregation (``OBSERVE_STATSD_AGGREGATE = False``): the
    request's lines, buffered in one call."""
    rate = metrics.sample_rate
    sampled = rate < 1.0
    rand = random.random
    request_lines = _request_lines(metrics)
    add = client.add_chunk

    def send_request_lines(
        endpoint: str | None,
        method: str,
        status: str | None,
        seconds: float,
        record: RequestRecord | None,
    ) -> None:
        if sampled and rand() >= rate:
            return
        chunk = request_lines(endpoint, method, status, seconds)
        if record is not None and (record.exception is not None or record.timers):
            chunk += "".join("\n" + line for line in _extra_lines(metrics, record))
        add(chunk)

    return send_request_lines


def _record_hook(metrics: MetricsState) -> Callable[[RequestRecord], None]:
    """The finish hook when recording: each request's lines go on its record (for the
    toolbar and tests) and, with a host, to statsd (aggregated or as they are)."""
    rate = metrics.sample_rate
    sampled = rate < 1.0
    rand = random.random
    request_lines = _request_lines(metrics)
    client = metrics.client
    aggregator = metrics.aggregator

    def record_request_metrics(record: RequestRecord) -> None:
        if sampled and rand() >= rate:
            return
        end = record.end
        if end is None:  # pragma: no cover - the middleware sets it before the hooks
            end = perf_counter()
        seconds = end - record.start
        lines = request_lines(record.endpoint, record.method, record.status_line, seconds)
        lines_list = lines.split("\n")
        if record.exception is not None or record.timers:
            lines_list += _extra_lines(metrics, record)
        if record.metric_lines is None:
            record.metric_lines = lines_list
        else:
            record.metric_lines.extend(lines_list)
        if client is None:
            return
        if aggregator is not None:
            key = (record.endpoint, record.method, record.status_line)
            aggregator.add_request(key, seconds)
            client.start()
            if record.exception is not None or record.timers:
                _aggregate_extras(metrics, record)
        else:
            client.add_chunk("\n".join(lines_list))

    return record_request_metrics


# -- the app-facing API ------------------------------------------------------------------


def _state() -> MetricsState:
    """The current app's metrics state; a clear error outside an app context."""
    metrics = get_state().part(MetricsState)
    if not isinstance(metrics, MetricsState):  # pragma: no cover - set by init_app
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
    return metrics.client if isinstance(metrics, MetricsState) else None
