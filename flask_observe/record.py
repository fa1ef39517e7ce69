"""The per-request record: one clock and what each feature noted about the request.

The WSGI middleware creates a :class:`RequestRecord` when the request arrives and keeps
it in the WSGI environ, so it lives from the first byte until the response body is
closed, longer than Flask's request context and ``g``.
"""

from __future__ import annotations

import typing as t
from time import perf_counter

from flask import has_request_context
from flask import request

#: The WSGI environ key holding the current :class:`RequestRecord`.
ENVIRON_KEY = "flask_observe.record"
#: The WSGI environ key holding the request clock's start (a ``perf_counter`` value).
START_KEY = "flask_observe.start"


class Timer(t.NamedTuple):
    """One measured span of a request, shown in ``Server-Timing``."""

    #: A ``Server-Timing`` token (already cleaned).
    name: str
    #: Duration in seconds.
    seconds: float
    #: Also send it as a statsd timer (named timers from ``timed`` and ``metrics``).
    metric: bool = False
    #: When the span was noted (its end, for ``timed`` and ``timer``): a
    #: :func:`time.perf_counter` value, ``None`` for a timer made by hand. The
    #: toolbar's timeline places the span with it.
    #:
    #: .. versionadded:: 0.3.0
    end: float | None = None
    #: A description shown in ``Server-Timing`` (``desc="..."``), e.g. ``2 queries``;
    #: plain text without quotes or backslashes.
    #:
    #: .. versionadded:: 0.3.0
    desc: str | None = None


class SqlSummary(t.Protocol):
    """What the request path reads of the SQL statements a request ran (the tally of
    :mod:`flask_observe.sql`).

    .. versionadded:: 0.3.0
    """

    #: How many statements ran.
    count: int
    #: Their total time in the database, in seconds.
    seconds: float

    def timer(self) -> Timer:
        """The ``Server-Timing`` entry of the statements."""


class RequestRecord:
    """What Flask-Observe knows about one request.

    All times are :func:`time.perf_counter` values in seconds. Every attribute starts
    at its class default and is set by whichever part of Flask-Observe learns it; a
    cheap creation matters, as one record is made per request.

    .. versionadded:: 0.1.0
    """

    #: When the WSGI call began: the request clock's zero.
    start: float = 0.0
    #: When the status and headers were handed to the server.
    headers_at: float | None = None
    #: When the response was complete: as it started for a response with a
    #: ``Content-Length``, else when the server closed the body (streams).
    end: float | None = None
    #: The matched endpoint, ``None`` when no route matched.
    endpoint: str | None = None
    #: The request method as the client sent it.
    method: str = ""
    #: The WSGI status line, e.g. ``"200 OK"``.
    status_line: str | None = None
    #: Spans measured during the request (``timed`` views, user timers).
    timers: tuple[Timer, ...] | list[Timer] = ()
    #: The unhandled (or mapped) exception of this request, if any.
    exception: BaseException | None = None
    #: The error-tracker event id for :attr:`exception`, if it was captured.
    event_id: str | None = None
    #: statsd lines emitted for this request, when recording is on.
    metric_lines: list[str] | None = None
    #: The ``Server-Timing`` value that was sent, when the header is on.
    server_timing: str | None = None
    #: The SQL statements the request ran (:mod:`flask_observe.sql`), ``None`` when it
    #: ran none.
    #:
    #: .. versionadded:: 0.3.0
    sql: SqlSummary | None = None
    #: Free slot for panels and integrations (set on first use).
    extra: dict[str, t.Any] | None = None

    @property
    def status(self) -> int:
        """The response status code (0 until the response starts)."""
        line = self.status_line
        return int(line[:3]) if line else 0

    @property
    def app_seconds(self) -> float | None:
        """Time from the start of the request until the headers were produced."""
        if self.headers_at is None:
            return None
        return self.headers_at - self.start

    @property
    def total_seconds(self) -> float | None:
        """Time from the start of the request until the body was closed."""
        if self.end is None:
            return None
        return self.end - self.start

    def add_timer(self, name: str, seconds: float, *, metric: bool = False) -> None:
        """Note a span that ends now for ``Server-Timing`` (and for metrics when
        *metric* is set)."""
        timer = Timer(clean_token(name), seconds, metric, perf_counter())
        if isinstance(self.timers, list):
            self.timers.append(timer)
        else:
            self.timers = [timer]


def current_record() -> RequestRecord | None:
    """The record of the request being handled, or ``None`` outside a request, on an
    excluded path, or when Flask-Observe is not initialised on the app.

    When only timing headers are on, the middleware makes no record until something
    (a ``timed`` view, a user timer, the error path) asks for one here.

    .. versionadded:: 0.1.0
    """
    if not has_request_context():
        return None
    environ = request.environ
    record = environ.get(ENVIRON_KEY)
    if record is None:
        start = environ.get(START_KEY)
        if start is None:
            return None
        record = environ[ENVIRON_KEY] = RequestRecord()
        record.start = start
    return record if isinstance(record, RequestRecord) else None


_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def clean_token(name: str) -> str:
    """Make *name* a valid HTTP token for a ``Server-Timing`` metric name."""
    if name and len(name) <= 64 and all(c in _TOKEN_CHARS for c in name):
        return name
    cleaned = "".join(c if c in _TOKEN_CHARS else "_" for c in name[:64])
    return cleaned or "_"


def format_server_timing(app_seconds: float, timers: t.Iterable[Timer]) -> str:
    """``Server-Timing`` value: ``app;dur=<ms>`` then one entry per timer."""
    value = "app;dur=%.3f" % (app_seconds * 1000.0)
    for timer in timers:
        value += ", %s;dur=%.3f" % (timer.name, timer.seconds * 1000.0)
        if timer.desc:
            value += ';desc="%s"' % timer.desc
    return value
