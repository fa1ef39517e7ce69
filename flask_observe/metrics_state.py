"""The metrics part of one app's state: its names, its caches and where lines go.

Kept apart from :mod:`flask_observe.metrics` (the feature and its API) so that the
sinks and the ``flask observe`` commands can read it without importing the feature.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import dataclasses
import typing as t

from .aggregation import RequestNames
from .aggregation import TimerSeries
from .naming import Dialect
from .naming import format_rate
from .naming import route_lines
from .naming import RouteLines
from .naming import status_code
from .record import current_record

if t.TYPE_CHECKING:
    from .aggregation import Aggregator
    from .aggregation import RequestKey
    from .statsd_client import StatsdClient


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
    #: Request line templates per request key, bounded by :data:`ROUTE_CACHE_SIZE`.
    line_templates: dict[RequestKey, str] = dataclasses.field(default_factory=dict)
    #: The aggregated ``db`` timer and ``db_statements`` counter per ``(endpoint,
    #: method)``, bounded by :data:`ROUTE_CACHE_SIZE`.
    db_names: dict[tuple[str | None, str], tuple[TimerSeries, str]] = dataclasses.field(
        default_factory=dict
    )

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
            code = status_code(status)
            tags = [("endpoint", route.endpoint), ("method", route.method)]
            head, tail = self.dialect.key("request", tags)
            counter = self.dialect.compose(
                "response", [*tags, ("status", code)], "%s", "c", self.sample_rate
            )
            names = RequestNames(TimerSeries(head, tail, self.sample_rate), counter)
            if len(self.request_names) < ROUTE_CACHE_SIZE:
                self.request_names[key] = names
        return names

    def describe_db(self, endpoint: str | None, method: str) -> tuple[TimerSeries, str]:
        """The aggregated ``db`` timer and ``db_statements`` counter template of one
        endpoint and method (cached): the names of :func:`~flask_observe.sinks.extra_metrics`.

        .. versionadded:: 0.3.0
        """
        key = (endpoint, method)
        names = self.db_names.get(key)
        if names is None:
            route = self.route(endpoint, method)
            tags = [("endpoint", route.endpoint), ("method", route.method)]
            head, tail = self.dialect.key("db", tags)
            timer = TimerSeries(head, tail, self.sample_rate)
            head, tail = self.dialect.key("db_statements", tags)
            names = (timer, f"{head}:%s|c{format_rate(self.sample_rate)}{tail}")
            if len(self.db_names) < ROUTE_CACHE_SIZE:
                self.db_names[key] = names
        return names

    def request_lines(
        self, endpoint: str | None, method: str, status: str | None, seconds: float
    ) -> str:
        """One request's timer and status counter lines, from a template cached per
        (endpoint, method, status line) and filled by a single ``%`` operation."""
        key = (endpoint, method, status)
        template = self.line_templates.get(key)
        if template is None:
            names = self.route(endpoint, method)
            template = names.timer + "\n" + names.response % status_code(status)
            if len(self.line_templates) < ROUTE_CACHE_SIZE:
                self.line_templates[key] = template
        return template % (seconds * 1000.0)

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
