"""Request timing: the request clock, ``X-Runtime``, ``Server-Timing`` and ``timed``.

The clock starts in a thin WSGI middleware around ``app.wsgi_app`` (the earliest point
Flask allows, before the request context and routing), the headers are added when the
response starts, and the record is finished when the server closes the body, so a
streamed response reports time-to-headers in ``X-Runtime`` and its full duration to
metrics and the toolbar. Usage::

    from flask_observe import timed

    @app.get("/report")
    @timed("report")
    def report():
        return build_report()

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import functools
import inspect
import typing as t
import weakref
from time import perf_counter

from flask import current_app
from flask import make_response

from . import process
from .containment import warn_limited
from .paths import ExcludedPaths
from .record import clean_token
from .record import current_record
from .record import ENVIRON_KEY
from .record import format_server_timing
from .record import RequestRecord
from .record import START_KEY
from .record import Timer
from .routing import endpoint_of_unmatched
from .state import find_state

if t.TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Iterator

    from _typeshed import OptExcInfo  # noqa: F401 - used in type comments
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment
    from flask import Response

    from .aggregation import FinishedRequest
    from .state import FinishHook


P = t.ParamSpec("P")
Q = t.ParamSpec("Q")


def format_runtime(seconds: float) -> str:
    """``X-Runtime`` value: seconds with six decimals (the Rack convention)."""
    return "%0.6f" % seconds


#: Lower-case names of the headers the middleware adds; a view that set one of them
#: has its value merged with ours.
_OUR_NAMES = frozenset({"x-runtime", "server-timing"})
#: Their lengths and that of ``Content-Length``: a header of another length is skipped
#: without lower-casing its name.
_WATCHED_LENGTHS = frozenset({9, 13, 14})


class RequestSink(t.Protocol):
    """What the middleware hands each finished request to (metrics' sinks,
    :mod:`flask_observe.sinks`).

    .. versionadded:: 0.3.0
    """

    #: Whether every request must keep a :class:`~flask_observe.RequestRecord`.
    every_record: bool

    def add(self, request: FinishedRequest, /) -> None:
        """A finished request that made no record: ``(endpoint, method, status line,
        seconds)``."""

    def finish(self, record: RequestRecord) -> None:
        """A finished request that made a record."""

    def start(self) -> None:
        """Called before the first request of each process (a forked worker too)."""


# Process-wide bookkeeping for the fork hook, not per-app state: it lets the hook find
# the live middlewares with a sink, each owned by its app.
_with_sinks: weakref.WeakSet[ObserveMiddleware] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for middleware in list(_with_sinks):
        middleware._process_started = False
        middleware._update()


class ObserveMiddleware:
    """WSGI middleware that owns the request clock of one app.

    Installed by :meth:`~flask_observe.Observe.init_app` as ``app.wsgi_app``, with the
    app's settings, the metrics sink and the finish hooks of the other features; it
    knows nothing else of the extension. It never raises into the request: a failure
    while adding headers is logged and the response goes out unchanged. ::

        app.wsgi_app = ObserveMiddleware(app.wsgi_app, exclude_paths=("/health",))

    A request gets a :class:`~flask_observe.RequestRecord` only when something asks
    for one (:func:`~flask_observe.current_record`: a ``timed`` view, a user timer,
    the error path), when its body is a stream (it ends when the server closes it), or
    when finish hooks or the sink need every request's record. Otherwise the request
    path is a clock, the headers and, with a sink, one tuple handed over: endpoint,
    method, status and duration.

    :param wsgi_app: the wrapped WSGI callable (Flask's ``app.wsgi_app``).
    :param runtime_header: add ``X-Runtime``.
    :param server_timing: add ``Server-Timing``.
    :param exclude_paths: paths that bypass the middleware
        (:class:`~flask_observe.paths.ExcludedPaths`).
    :param finish_hooks: called with the record of every finished request; each one
        makes every request keep a record.
    :param sink: takes every finished request, with or without a record
        (:class:`RequestSink`).
    :param startup_checks: called before the first request is served; one that raises
        refuses the request (and the next ones, until it passes).

    The sink's ``start`` is called before the first request of each process: in a
    forked worker, again.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.3.0
        The *sink* parameter replaces *request_hook*, *request_table* and *table_size*.
    """

    def __init__(
        self,
        wsgi_app: WSGIApplication,
        *,
        runtime_header: bool = True,
        server_timing: bool = True,
        exclude_paths: t.Iterable[str] = (),
        finish_hooks: t.Iterable[FinishHook] = (),
        sink: RequestSink | None = None,
        startup_checks: t.Iterable[t.Callable[[], None]] = (),
    ) -> None:
        self.wsgi_app = wsgi_app
        self.excluded = ExcludedPaths(exclude_paths)
        self._runtime = runtime_header
        self._server_timing = server_timing
        #: Both headers: the common case, appended in one step.
        self._both = runtime_header and server_timing
        #: The finish hooks, run in order by :meth:`finish`.
        self.finish_hooks: tuple[FinishHook, ...] = tuple(finish_hooks)
        #: Takes each finished request (metrics), if any.
        self.sink = sink
        self._sink_add = sink.add if sink is not None else None
        self._startup_checks = tuple(startup_checks)
        #: Whether the sink was started in this process.
        self._process_started = sink is None
        if sink is not None:
            _with_sinks.add(self)
            process.after_fork_in_child(_after_fork_in_child)
        self._update()

    def _update(self) -> None:
        #: Every request keeps a record until its body is closed.
        self._every_record = bool(self.finish_hooks) or (
            self.sink is not None and self.sink.every_record
        )
        #: A rare case may apply: startup checks to run, a sink to start in this
        #: process, excluded paths to match, or records to keep while the timing-only
        #: path is installed.
        self._special = (
            bool(self._startup_checks)
            or not self._process_started
            or bool(self.excluded)
            or self._every_record
        )

    @property
    def entry(self) -> WSGIApplication:
        """The WSGI callable to install as ``app.wsgi_app``: the bound method of the
        request path for this configuration, one call less than :meth:`__call__`.

        .. versionadded:: 0.2.0
        """
        if self.sink is not None or self._every_record:
            return self._measured
        return self._timed

    def add_finish_hook(self, hook: FinishHook) -> None:
        """Also run *hook* for each finished request (see
        :meth:`ObserveState.add_finish_hook <flask_observe.state.ObserveState.add_finish_hook>`).
        """
        self.finish_hooks = (*self.finish_hooks, hook)
        self._update()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self.entry(environ, start_response)

    def _bypass(self, environ: WSGIEnvironment) -> bool:
        """The rare cases before the clock starts: run the startup checks (once they
        pass, never again), start the sink in a new process, then tell whether the
        request's path is excluded."""
        if self._startup_checks:
            for check in self._startup_checks:
                check()
            self._startup_checks = ()
            self._update()
        if not self._process_started:
            self._process_started = True
            self._update()
            self._start_sink()
        return bool(self.excluded) and self.excluded.match(environ.get("PATH_INFO", ""))

    def _start_sink(self) -> None:
        """Start the sink in this process (its statsd sender thread), contained."""
        if self.sink is not None:
            try:
                self.sink.start()
            except Exception:
                warn_limited("sink-start", "Flask-Observe: the metrics sink failed", exc_info=True)

    # The two request paths: flat on purpose (benchmarks/opcodes.py counts each
    # opcode they add to a request; a helper call costs about ten).

    def _timed(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Timing headers only: no record unless something asks for one."""
        __traceback_hide__ = True  # Werkzeug's debugger leaves this frame out
        if self._special:
            if self._every_record:  # a finish hook was added after init_app
                return self._measured(environ, start_response)
            if self._bypass(environ):
                return self.wsgi_app(environ, start_response)
        start = perf_counter()
        environ[START_KEY] = start
        wsgi_app = self.wsgi_app  # an instance attribute: self.wsgi_app() is not specialised

        # A type comment, not annotations: on Python 3.14 an annotated nested function
        # builds its __annotate__ function on every request (1.5 k instructions).
        def timed_start_response(status, headers, exc_info=None):
            # type: (str, list[tuple[str, str]], OptExcInfo | None) -> t.Callable[[bytes], object]
            now = perf_counter()
            try:
                if ENVIRON_KEY not in environ:  # no record made by current_record()
                    self._add_headers(headers, now - start)
                else:
                    record = environ[ENVIRON_KEY]
                    # Once, unless the app replaces the response after an error.
                    if record.headers_at is None or exc_info is not None:
                        self._start_record(record, environ, status, headers, now)
            except Exception:
                warn_limited("headers", "Flask-Observe could not add its headers", exc_info=True)
            return start_response(status, headers, exc_info)

        return wsgi_app(environ, timed_start_response)

    def _measured(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Timing headers, and every request handed to the sink and the finish hooks.

        A response with a ``Content-Length`` is complete as it starts: when nothing made
        a record, it goes to the sink's ``add`` right there. Any other request (a
        stream, a record made on demand, headers of ours to merge, records kept for
        every request) takes the record path and ends when its body is closed.

        A response the app replaces after an error (``start_response`` again, with
        ``exc_info``) gets the headers again; a record takes its status, while a complete
        response already handed over keeps its first one.
        """
        __traceback_hide__ = True  # Werkzeug's debugger leaves this frame out
        start = perf_counter()
        if self._special:
            if self._bypass(environ):
                return self.wsgi_app(environ, start_response)
            if self._every_record:  # finish hooks: the record is made now
                self._record(environ, start)
        environ[START_KEY] = start
        wsgi_app = self.wsgi_app  # an instance attribute: self.wsgi_app() is not specialised
        #: None: not started yet; False: complete and handed over; a record: ends when
        #: the body is closed.
        outcome: RequestRecord | t.Literal[False] | None = None

        def measured_start_response(status, headers, exc_info=None):  # as timed_start_response
            # type: (str, list[tuple[str, str]], OptExcInfo | None) -> t.Callable[[bytes], object]
            nonlocal outcome
            now = perf_counter()
            try:
                if outcome is None:
                    request = environ.get("werkzeug.request")
                    # Not Flask's request, or a record: made on demand by current_record()
                    # or kept for every request.
                    if request is None or ENVIRON_KEY in environ:
                        record = self._record(environ, start)
                        outcome = self._begin_record(record, environ, status, headers, now)
                    else:
                        elapsed = now - start
                        if self._add_headers(headers, elapsed):  # complete: hand it over
                            outcome = False
                            rule = request.url_rule
                            # The method as request.method reads it, without its (not
                            # specialised) attribute look-up; names upper-case it.
                            self._sink_add(  # type: ignore[misc]
                                (
                                    rule.endpoint
                                    if rule is not None
                                    else endpoint_of_unmatched(request),  # a 404, a 405
                                    environ.get("REQUEST_METHOD", "GET"),
                                    status,
                                    elapsed,
                                )
                            )
                        else:  # a stream: handed over when its body is closed
                            outcome = self._record(environ, start)
                            self._note_start(outcome, environ, status, now)
                elif outcome is False:  # complete, handed over with its first status
                    if exc_info is not None:  # the app replaces the response after an error
                        self._add_headers(headers, now - start)
                elif outcome.headers_at is None or exc_info is not None:
                    # The response starts while its body is iterated, or is replaced.
                    self._start_record(outcome, environ, status, headers, now)
            except Exception:
                warn_limited("headers", "Flask-Observe could not add its headers", exc_info=True)
            return start_response(status, headers, exc_info)

        try:
            body = wsgi_app(environ, measured_start_response)
        except BaseException:
            # Only with PROPAGATE_EXCEPTIONS (testing, debug): the server answers 500.
            if outcome is not False:
                record = outcome if outcome is not None else self._record(environ, start)
                if record.status_line is None:
                    record.status_line = "500 INTERNAL SERVER ERROR"
                self.finish(record)
            raise
        if outcome is False:
            return body
        if outcome is None:  # the app starts the response while its body is iterated
            outcome = self._record(environ, start)
        return _ObservedBody(body, self.finish, outcome)

    def _add_headers(self, headers: list[tuple[str, str]], elapsed: float) -> bool:
        """Add the enabled timing headers to the response of a request without a record,
        merged with any the view set itself.

        :return: whether the response is complete as it starts (has a
            ``Content-Length``).
        """
        sized = merge = False
        for name, _ in headers:
            if len(name) in _WATCHED_LENGTHS:
                # Werkzeug's spelling first: it needs no lower-casing.
                if name == "Content-Length" or name.lower() == "content-length":
                    sized = True
                elif name.lower() in _OUR_NAMES:
                    merge = True
        if self._both and not merge:
            headers += (
                ("X-Runtime", "%0.6f" % elapsed),
                ("Server-Timing", "app;dur=%.3f" % (elapsed * 1000.0)),
            )
        else:
            _add_timing_headers((), elapsed, headers, self._runtime, self._server_timing)
        return sized

    def _begin_record(
        self,
        record: RequestRecord,
        environ: WSGIEnvironment,
        status: str,
        headers: list[tuple[str, str]],
        now: float,
    ) -> RequestRecord | t.Literal[False]:
        """Start *record* as its response starts; ``False`` when the response is
        complete at once (it has a ``Content-Length``) and the record is finished."""
        if self._start_record(record, environ, status, headers, now):
            record.end = now
            self.finish(record)
            return False
        return record

    def _record(self, environ: WSGIEnvironment, start: float) -> RequestRecord:
        """The request's record, made now if nothing asked for one yet."""
        record = environ.get(ENVIRON_KEY)
        if not isinstance(record, RequestRecord):
            record = environ[ENVIRON_KEY] = RequestRecord()
            record.start = start
        return record

    def _start_record(
        self,
        record: RequestRecord,
        environ: WSGIEnvironment,
        status: str,
        headers: list[tuple[str, str]],
        now: float,
    ) -> bool:
        """Note status, method and endpoint as the response starts, add the headers
        with the record's timers.

        :return: whether the response has a ``Content-Length`` (is complete now).
        """
        self._note_start(record, environ, status, now)
        sized = False
        for name, _ in headers:
            if len(name) == 14 and name.lower() == "content-length":
                sized = True
                break
        if self._runtime or self._server_timing:
            timers = record.timers
            if record.sql is not None:  # db;dur=...;desc="N queries"
                timers = (*timers, record.sql.timer())
            record.server_timing = _add_timing_headers(
                timers, now - record.start, headers, self._runtime, self._server_timing
            )
        return sized

    @staticmethod
    def _note_start(
        record: RequestRecord, environ: WSGIEnvironment, status: str, now: float
    ) -> None:
        """Note on *record* when the response started, its status, method and endpoint."""
        record.headers_at = now
        record.status_line = status
        # Flask's request is still alive while the response starts.
        flask_request = environ.get("werkzeug.request")
        if flask_request is not None:
            record.method = flask_request.method
            rule = getattr(flask_request, "url_rule", None)  # a plain Werkzeug request
            if rule is not None:
                record.endpoint = rule.endpoint
            else:  # a 404, a 405 on a known path
                record.endpoint = endpoint_of_unmatched(flask_request)

    def finish(self, record: RequestRecord) -> None:
        """Stop the clock and hand the record to the sink and the finish hooks (the
        toolbar's), each contained."""
        if record.end is None:
            record.end = perf_counter()
        if self.sink is not None:
            try:
                self.sink.finish(record)
            except Exception:
                warn_limited("finish:sink", "Flask-Observe: the metrics sink failed", exc_info=True)
        for hook in self.finish_hooks:
            try:
                hook(record)
            except Exception:
                warn_limited(
                    f"finish:{getattr(hook, '__qualname__', hook)}",
                    "Flask-Observe: a finish hook failed",
                    exc_info=True,
                )


def _add_timing_headers(
    timers: t.Sequence[Timer],
    elapsed: float,
    headers: list[tuple[str, str]],
    runtime: bool,
    timing: bool,
) -> str | None:
    """Add ``X-Runtime`` and ``Server-Timing`` to the WSGI header list in place.

    An ``X-Runtime`` already present is kept; a ``Server-Timing`` already present gets
    our entries appended to its value.

    :return: the ``Server-Timing`` value sent, if any.
    """
    timing_at = -1
    index = 0
    for name, _ in headers:
        size = len(name)
        if size == 9 and runtime and name.lower() == "x-runtime":
            runtime = False
        elif size == 13 and name.lower() == "server-timing":
            timing_at = index
        index += 1
    if runtime:
        headers.append(("X-Runtime", "%0.6f" % elapsed))
    if not timing:
        return None
    value = format_server_timing(elapsed, timers)
    if timing_at >= 0:
        value = headers[timing_at][1] + ", " + value
        headers[timing_at] = (headers[timing_at][0], value)
    else:
        headers.append(("Server-Timing", value))
    return value


class _ObservedBody:
    """The app's response body, unchanged, plus a ``close`` that stops the clock.

    Iteration is handed straight to the wrapped body, so streaming costs nothing per
    chunk; only ``close`` is ours (servers must call it, PEP 3333).
    """

    __slots__ = ("_body", "_finish", "_record")

    def __init__(
        self,
        body: Iterable[bytes],
        finish: t.Callable[[RequestRecord], None],
        record: RequestRecord,
    ) -> None:
        self._body = body
        self._finish = finish
        self._record = record

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._finish(self._record)


class _TimedDecorator(t.Protocol):
    def __call__(self, view: t.Callable[P, object], /) -> t.Callable[P, Response]: ...


@t.overload
def timed(view: t.Callable[P, object], /) -> t.Callable[P, Response]: ...


@t.overload
def timed(name: str | None = None, /) -> _TimedDecorator: ...


def timed(
    view_or_name: t.Callable[P, object] | str | None = None, /
) -> t.Callable[P, Response] | _TimedDecorator:
    """Time a view and report it in ``Server-Timing`` (and ``X-Runtime`` standalone).

    Built on :func:`flask.make_response`: the view's return value (anything Flask
    accepts, including a custom type the app's own ``make_response`` converts) is turned
    into a response inside the timed span, so the duration includes rendering.
    ``async def`` views run through :meth:`flask.Flask.ensure_sync`.

    With :class:`~flask_observe.Observe` initialised on the app, the span becomes one
    ``Server-Timing`` entry (``view;dur=...`` or the name given) and, when named, a
    statsd timer; ``X-Runtime`` keeps timing the whole request. Without the
    extension, the decorator sets ``X-Runtime`` (unless the view set it) and a
    ``Server-Timing`` entry itself.

    Usable as ``@timed`` or ``@timed("name")``; in ``View.decorators`` too::

        @app.get("/")
        @timed
        def index():
            return "hello"

    :param view_or_name: the view when used bare, else the span's name.

    .. versionadded:: 0.1.0
    """
    if callable(view_or_name):
        return _timed(view_or_name, "view", metric=False)
    name = view_or_name

    def decorator(view: t.Callable[Q, object], /) -> t.Callable[Q, Response]:
        return _timed(view, name or "view", metric=name is not None)

    return decorator


def _timed(view: t.Callable[P, object], name: str, *, metric: bool) -> t.Callable[P, Response]:
    token = clean_token(name)
    is_async = inspect.iscoroutinefunction(view)

    @functools.wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Response:
        __traceback_hide__ = True  # Werkzeug's debugger leaves this frame out
        start = perf_counter()
        if is_async:
            rv = current_app.ensure_sync(view)(*args, **kwargs)
        else:
            rv = view(*args, **kwargs)
        response = make_response(rv)
        elapsed = perf_counter() - start
        record = current_record()
        if record is not None:
            record.add_timer(token, elapsed, metric=metric)
        elif find_state(current_app) is None:
            if "X-Runtime" not in response.headers:
                response.headers["X-Runtime"] = format_runtime(elapsed)
            entry = "%s;dur=%.3f" % (token, elapsed * 1000.0)
            existing = response.headers.get("Server-Timing")
            response.headers["Server-Timing"] = f"{existing}, {entry}" if existing else entry
        return response

    return wrapper
