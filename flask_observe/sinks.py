"""Request sinks: what metrics does with each finished request the middleware hands over.

The middleware knows one object per app, the sink, and calls three of its methods:

``add((endpoint, method, status, seconds))``
    a request that made no :class:`~flask_observe.RequestRecord` (the common case: a
    complete response, nothing asked for a record), as one tuple;
``finish(record)``
    a request that made a record (a stream, a ``timed`` view, an error), once its body
    is closed;
``start()``
    before the first request of each process: start the statsd client's sender thread.

One small class per way of sending: :class:`AggregatingSink` (the default: durations
kept per endpoint until the flush), :class:`LineSink` (``OBSERVE_STATSD_AGGREGATE =
False``: two lines per request), :class:`RecordingSink` (lines kept on every record,
for the toolbar and tests, then sent through another sink if a host is set) and
:class:`SampledSink` (``OBSERVE_STATSD_SAMPLE_RATE`` below 1). The exception counter,
the named ``timed`` timers and the SQL metrics of a record are described once
(:func:`extra_metrics`), then written as lines or aggregated.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import random
import typing as t

from .naming import clean_part

if t.TYPE_CHECKING:
    from .aggregation import Aggregator
    from .aggregation import FinishedRequest
    from .metrics_state import MetricsState
    from .record import RequestRecord
    from .statsd_client import StatsdClient


class ExtraMetric(t.NamedTuple):
    """One of the rare metrics of a request, clean and ready to write or aggregate."""

    #: ``c`` (counter) or ``ms`` (timer).
    kind: str
    name: str
    tags: list[tuple[str, str]]
    value: float


def extra_metrics(
    metrics: MetricsState, record: RequestRecord, *, sql: bool = True
) -> list[ExtraMetric]:
    """The exception counter, the named ``timed`` timers and, unless *sql* is false,
    the SQL metrics (DB time and statement count) of *record*."""
    extras = []
    if record.exception is not None:
        endpoint = metrics.route(record.endpoint, record.method).endpoint
        exception = clean_part(type(record.exception).__name__)
        extras.append(
            ExtraMetric("c", "exception", [("endpoint", endpoint), ("exception", exception)], 1)
        )
    for timer in record.timers:
        if timer.metric:
            extras.append(ExtraMetric("ms", clean_part(timer.name), [], timer.seconds * 1000.0))
    tally = record.sql
    if sql and tally is not None:  # db.<endpoint>.<METHOD>, db_statements.<endpoint>.<METHOD>
        route = metrics.route(record.endpoint, record.method)
        tags = [("endpoint", route.endpoint), ("method", route.method)]
        extras.append(ExtraMetric("ms", "db", tags, tally.seconds * 1000.0))
        extras.append(ExtraMetric("c", "db_statements", tags, tally.count))
    return extras


class AggregatingSink:
    """Finished requests appended to the aggregator's pending requests, which the
    sender thread collects and sends at the flush.

    :meth:`add` is the pending deque's own ``append``: the request path hands a
    request over without a Python call or a lock
    (:attr:`Aggregator.pending <flask_observe.aggregation.Aggregator.pending>`).

    :param metrics: the app's metrics state (names, dialect, sample rate).
    :param aggregator: the app's aggregator.
    :param client: the app's statsd client; its sender thread flushes the aggregator.
    """

    every_record = False

    def __init__(self, metrics: MetricsState, aggregator: Aggregator, client: StatsdClient):
        self.metrics = metrics
        self.aggregator = aggregator
        #: Count one request that made no record.
        self.add: t.Callable[[FinishedRequest], None] = aggregator.pending.append
        #: Start the sender thread (before the first request of each process).
        self.start = client.start

    def finish(self, record: RequestRecord) -> None:
        """Count one request that made a record, with its extra metrics."""
        self.add((record.endpoint, record.method, record.status_line, _seconds(record)))
        if record.exception is not None or record.timers:
            metrics = self.metrics
            for extra in extra_metrics(metrics, record, sql=False):
                metrics.aggregate(
                    extra.kind, extra.name, extra.tags, extra.value, metrics.sample_rate
                )
        sql = record.sql
        if sql is not None:  # the names of extra_metrics, cached per route
            timer, counter = self.metrics.describe_db(record.endpoint, record.method)
            self.aggregator.timing(timer, sql.seconds * 1000.0)
            self.aggregator.count(counter, sql.count)


class LineSink:
    """Each request's timer and status counter as two lines, buffered by the client.

    :param metrics: the app's metrics state.
    :param client: the app's statsd client.
    """

    every_record = False

    def __init__(self, metrics: MetricsState, client: StatsdClient) -> None:
        self.metrics = metrics
        self._add_chunk = client.add_chunk
        self.start = client.start

    def add(self, request: FinishedRequest) -> None:
        """Buffer the lines of one request that made no record."""
        self._add_chunk(self.metrics.request_lines(*request))

    def finish(self, record: RequestRecord) -> None:
        """Buffer the lines of one request that made a record, extras included."""
        self._add_chunk("\n".join(record_lines(self.metrics, record)))


class RecordingSink:
    """Every request keeps a record, and its metric lines are kept on it
    (``RequestRecord.metric_lines``: the toolbar and tests read them); with a host,
    the request also goes to *then*.

    :param metrics: the app's metrics state.
    :param then: the sink that sends, ``None`` without ``OBSERVE_STATSD_HOST``.
    """

    every_record = True

    def __init__(self, metrics: MetricsState, then: AggregatingSink | LineSink | None) -> None:
        self.metrics = metrics
        self._then = then

    def add(self, request: FinishedRequest) -> None:
        """Not called: the middleware keeps a record of every request for this sink."""
        if self._then is not None:  # pragma: no cover - every request has a record
            self._then.add(request)

    def start(self) -> None:
        """Start the sender thread of *then*, if any."""
        if self._then is not None:
            self._then.start()

    def finish(self, record: RequestRecord) -> None:
        """Keep the request's lines on *record*, then send it on."""
        lines = record_lines(self.metrics, record)
        if record.metric_lines is None:
            record.metric_lines = lines
        else:
            record.metric_lines.extend(lines)
        if self._then is not None:
            self._then.finish(record)


class SampledSink:
    """Only a share of the requests, chosen at random, reach *inner*; their lines carry
    ``|@rate`` so the daemon scales them back up.

    :param inner: the sink of the sampled requests.
    :param rate: ``OBSERVE_STATSD_SAMPLE_RATE``, below 1.
    """

    def __init__(self, inner: AggregatingSink | LineSink | RecordingSink, rate: float) -> None:
        self.inner = inner
        self.every_record = inner.every_record
        self._rate = rate

    def add(self, request: FinishedRequest) -> None:
        """Hand one in *rate* of the record-less requests to the inner sink."""
        if random.random() < self._rate:
            self.inner.add(request)

    def start(self) -> None:
        """Start the inner sink's sender thread."""
        self.inner.start()

    def finish(self, record: RequestRecord) -> None:
        """Hand one in *rate* of the recorded requests to the inner sink."""
        if random.random() < self._rate:
            self.inner.finish(record)


def record_lines(metrics: MetricsState, record: RequestRecord) -> list[str]:
    """The lines of one recorded request: timer, status counter and extras."""
    text = metrics.request_lines(
        record.endpoint, record.method, record.status_line, _seconds(record)
    )
    lines = text.split("\n")
    if record.exception is not None or record.timers or record.sql is not None:
        dialect = metrics.dialect
        rate = metrics.sample_rate
        for extra in extra_metrics(metrics, record):
            value = "%d" % extra.value if extra.kind == "c" else "%0.6f" % extra.value
            lines.append(dialect.compose(extra.name, extra.tags, value, extra.kind, rate))
    return lines


def _seconds(record: RequestRecord) -> float:
    """The duration of a finished record (the middleware sets its end first)."""
    end = record.end if record.end is not None else record.start
    return end - record.start


#: Any of the sinks :func:`flask_observe.metrics.install` builds.
RequestSink = AggregatingSink | LineSink | RecordingSink | SampledSink
