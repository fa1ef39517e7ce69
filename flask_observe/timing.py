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
from time import perf_counter

from flask import current_app
from flask import make_response

from .containment import warn_limited
from .record import clean_token
from .record import current_record
from .record import ENVIRON_KEY
from .record import format_server_timing
from .record import RequestRecord
from .record import START_KEY
from .record import Timer
from .state import find_state

if t.TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Iterator

    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment
    from flask import Response

    from .aggregation import RequestSlot
    from .state import FinishHook
    from .state import RequestHook


P = t.ParamSpec("P")
Q = t.ParamSpec("Q")


def format_runtime(seconds: float) -> str:
    """``X-Runtime`` value: seconds with six decimals (the Rack convention)."""
    return "%0.6f" % seconds


#: Lengths and lower-case names of the headers the middleware adds; a view that set one
#: of them sends the response through the general (merging) path.
_OUR_LENGTHS = frozenset({9, 13})
_OUR_NAMES = frozenset({"x-runtime", "server-timing"})
#: Lengths of the headers the measured path looks at: ours and ``Content-Length``.
_WATCHED_LENGTHS = frozenset({9, 13, 14})


class ObserveMiddleware:
    """WSGI middleware that owns the request clock of one app.

    Installed by :meth:`~flask_observe.Observe.init_app` as ``app.wsgi_app``, with the
    app's settings and the hooks of every feature; it knows nothing else of the
    extension. It never raises into the request: a failure while adding headers is
    logged and the response goes out unchanged. ::

        app.wsgi_app = ObserveMiddleware(app.wsgi_app, exclude_paths=("/health",))

    A request gets a :class:`~flask_observe.RequestRecord` only when something asks for
    one (:func:`~flask_observe.current_record`: a ``timed`` view, a user timer, the
    error path) or when a finish hook must see every request. Otherwise the request
    path is a clock, the headers and, with a *request_hook*, one call handing over what
    the response was.

    :param wsgi_app: the wrapped WSGI callable (Flask's ``app.wsgi_app``).
    :param runtime_header: add ``X-Runtime``.
    :param server_timing: add ``Server-Timing``.
    :param exclude_paths: paths (``*`` suffix: prefixes) that bypass the middleware.
    :param finish_hooks: called with the record of every finished request; each one
        makes every request keep a record.
    :param request_hook: called once per finished request, before the finish hooks,
        with its endpoint, method, status line, duration in seconds and record (``None``
        when the request made none).
    :param request_table: with *request_hook*, a table of (method, status line,
        durations) slots per endpoint (:attr:`Aggregator.requests
        <flask_observe.aggregation.Aggregator.requests>`): a request that made no record
        and whose slot is there appends its duration in seconds to the slot's list
        itself, while the list holds fewer than *table_size*; any other request goes to
        the hook. The table's owner adds the slots and empties the lists in place.
    :param table_size: the most durations the middleware leaves in a list of
        *request_table*.
    :param startup_checks: called before the first request is served; one that raises
        refuses the request (and the next ones, until it passes).

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
        The *request_hook*, *request_table* and *table_size* parameters; records only
        on demand with a request hook.
    """

    def __init__(
        self,
        wsgi_app: WSGIApplication,
        *,
        runtime_header: bool = True,
        server_timing: bool = True,
        exclude_paths: t.Iterable[str] = (),
        finish_hooks: t.Iterable[FinishHook] = (),
        request_hook: RequestHook | None = None,
        request_table: dict[str | None, list[RequestSlot]] | None = None,
        table_size: int = 0,
        startup_checks: t.Iterable[t.Callable[[], None]] = (),
    ) -> None:
        self.wsgi_app = wsgi_app
        paths = tuple(exclude_paths)
        self._excluded = frozenset(p for p in paths if not p.endswith("*"))
        self._prefixes = tuple(p[:-1] for p in paths if p.endswith("*"))
        self._runtime = runtime_header
        self._server_timing = server_timing
        #: Both headers: the common case, appended in one step.
        self._both = runtime_header and server_timing
        self._check_paths = bool(paths)
        #: The finish hooks, run in order by :meth:`finish`.
        self.finish_hooks: tuple[FinishHook, ...] = tuple(finish_hooks)
        #: The request hook, run by :meth:`finish` and on the record-less path.
        self.request_hook = request_hook
        #: Where the record-less path appends durations itself (see *request_table*).
        self.request_table = request_table if request_hook is not None else None
        self._slots = self.request_table if self.request_table is not None else {}
        self._table_size = table_size
        self._startup_checks = tuple(startup_checks)
        self._pending_checks = bool(self._startup_checks)
        self._update()

    def _update(self) -> None:
        #: Something other than the plain path may apply: startup checks to run,
        #: excluded paths to match, or hooks that need every request's record.
        self._special = self._pending_checks or self._check_paths or bool(self.finish_hooks)

    @property
    def entry(self) -> WSGIApplication:
        """The WSGI callable to install as ``app.wsgi_app``: the bound method of the
        request path for this configuration, one call less than :meth:`__call__`.

        .. versionadded:: 0.2.0
        """
        return self._measured if self.request_hook is not None else self._timed

    def add_finish_hook(self, hook: FinishHook) -> None:
        """Also run *hook* for each finished request (see
        :meth:`ObserveState.add_finish_hook <flask_observe.state.ObserveState.add_finish_hook>`).
        """
        self.finish_hooks = (*self.finish_hooks, hook)
        self._update()

    def is_excluded(self, path: str) -> bool:
        """Whether requests for *path* bypass Flask-Observe entirely."""
        return path in self._excluded or (bool(self._prefixes) and path.startswith(self._prefixes))

    def _route(self, environ: WSGIEnvironment) -> int:
        """The rare cases of the request path: 0 the plain path, 1 excluded (bypass),
        2 a record for every request."""
        if self._pending_checks:
            for check in self._startup_checks:
                check()
            self._pending_checks = False
            self._update()
        if self._check_paths and self.is_excluded(environ.get("PATH_INFO", "")):
            return 1
        return 2 if self.finish_hooks else 0

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        return self.entry(environ, start_response)

    # The request paths: kept flat on purpose (benchmarks/overhead.py measures them
    # against bare Flask and a floor; each attribute look-up and call shows there).

    def _timed(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Timing headers only: no record unless something asks for one."""
        if self._special:
            route = self._route(environ)
            if route == 1:
                return self.wsgi_app(environ, start_response)
            if route == 2:
                return self._observe(environ, start_response)
        start = perf_counter()
        environ[START_KEY] = start
        wsgi_app = self.wsgi_app  # an instance attribute: self.wsgi_app() is not specialised

        def timed_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> t.Callable[[bytes], object]:
            now = perf_counter()
            try:
                record = environ.get(ENVIRON_KEY)  # made on demand by current_record()
                if record is None:
                    elapsed = now - start
                    for name, _ in headers:
                        if len(name) in _OUR_LENGTHS and name.lower() in _OUR_NAMES:
                            self._add_headers(headers, elapsed)  # merged with the view's
                            break
                    else:
                        if self._both:
                            headers += (
                                ("X-Runtime", "%0.6f" % elapsed),
                                ("Server-Timing", "app;dur=%.3f" % (elapsed * 1000.0)),
                            )
                        else:
                            self._add_headers(headers, elapsed)
                elif record.headers_at is None:  # not again when called with exc_info
                    self._start_record(record, environ, status, headers, now)
            except Exception:
                warn_limited("headers", "Flask-Observe could not add its headers", exc_info=True)
            return start_response(status, headers, exc_info)

        return wsgi_app(environ, timed_start_response)

    def _measured(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """Timing headers and the request hook: a response with a ``Content-Length`` is
        complete as it starts and is handed over then, with no record; a stream, a
        request that made a record, or a response whose headers we must merge takes
        the record path and ends when its body is closed."""
        if self._special:
            route = self._route(environ)
            if route == 1:
                return self.wsgi_app(environ, start_response)
            if route == 2:
                return self._observe(environ, start_response)
        start = perf_counter()
        environ[START_KEY] = start
        wsgi_app = self.wsgi_app  # an instance attribute: self.wsgi_app() is not specialised
        #: None: not started; False: handed over; a record: ends when the body closes.
        outcome: RequestRecord | t.Literal[False] | None = None

        def measured_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> t.Callable[[bytes], object]:
            nonlocal outcome
            now = perf_counter()
            if outcome is None:
                try:
                    record = environ.get(ENVIRON_KEY)  # made on demand by current_record()
                    if record is None:
                        sized = False
                        for name, _ in headers:
                            if len(name) in _WATCHED_LENGTHS:
                                if name == "Content-Length" or name.lower() == "content-length":
                                    sized = True
                                elif name.lower() in _OUR_NAMES:
                                    sized = False
                                    break
                        request = environ.get("werkzeug.request")
                        if sized and request is not None:
                            rule = request.url_rule
                            endpoint = rule.endpoint if rule is not None else None
                            elapsed = now - start
                            if self._both:
                                headers += (
                                    ("X-Runtime", "%0.6f" % elapsed),
                                    ("Server-Timing", "app;dur=%.3f" % (elapsed * 1000.0)),
                                )
                            else:
                                self._add_headers(headers, elapsed)
                            outcome = False
                            # What request.method is made of, without its attribute
                            # look-up (not specialised: Werkzeug's cached properties
                            # give the request a real __dict__); names upper-case it.
                            method = environ.get("REQUEST_METHOD", "GET")
                            # find_samples(), inlined; a new pair or a full list is
                            # handed over.
                            for slot_method, slot_status, samples in self._slots.get(endpoint, ()):
                                if slot_status == status and slot_method == method:
                                    if len(samples) < self._table_size:
                                        samples.append(elapsed)
                                    else:
                                        self._hand_over(endpoint, method, status, elapsed)
                                    break
                            else:
                                self._hand_over(endpoint, method, status, elapsed)
                        else:  # a stream, or headers to merge: the record path
                            record = self._record(environ, start)
                            outcome = self._begin_record(record, environ, status, headers, now)
                    else:
                        outcome = self._begin_record(record, environ, status, headers, now)
                except Exception:
                    warn_limited(
                        "headers", "Flask-Observe could not add its headers", exc_info=True
                    )
            elif outcome is not False and outcome.headers_at is None:  # a lazy start
                self._start_record(outcome, environ, status, headers, now)
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

    def _hand_over(self, endpoint: str | None, method: str, status: str, seconds: float) -> None:
        """Give a record-less request to the request hook (a new slot, a full list)."""
        hook = self.request_hook
        if hook is not None:
            hook(endpoint, method, status, seconds, None)

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

    def _add_headers(self, headers: list[tuple[str, str]], elapsed: float) -> None:
        """Add the enabled timing headers, merged with any the view set itself."""
        _add_timing_headers((), elapsed, headers, self._runtime, self._server_timing)

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
        record.headers_at = now
        record.status_line = status
        # Flask's request is still alive while the response starts.
        flask_request = environ.get("werkzeug.request")
        if flask_request is not None:
            record.method = flask_request.method
            rule = getattr(flask_request, "url_rule", None)  # a plain Werkzeug request
            if rule is not None:
                record.endpoint = rule.endpoint
        sized = False
        for name, _ in headers:
            if len(name) == 14 and name.lower() == "content-length":
                sized = True
                break
        if self._runtime or self._server_timing:
            record.server_timing = _add_timing_headers(
                record.timers, now - record.start, headers, self._runtime, self._server_timing
            )
        return sized

    def _observe(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        """The request path when finish hooks need every record: method, endpoint and
        status as the response starts, then the end. A response with a
        ``Content-Length`` is complete when it starts (its body is already built), so it
        ends there; any other body (a stream) ends when the server closes it."""
        record = RequestRecord()
        record.start = perf_counter()
        environ[ENVIRON_KEY] = record

        def observed_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> t.Callable[[bytes], object]:
            now = perf_counter()
            if record.headers_at is None:  # not again when called with exc_info
                try:
                    sized = self._start_record(record, environ, status, headers, now)
                except Exception:
                    sized = False
                    warn_limited(
                        "headers", "Flask-Observe could not add its headers", exc_info=True
                    )
                if sized:
                    record.end = now
                    self.finish(record)
            return start_response(status, headers, exc_info)

        try:
            body = self.wsgi_app(environ, observed_start_response)
        except BaseException:
            # Only with PROPAGATE_EXCEPTIONS (testing, debug): the server answers 500.
            if record.end is None:
                if record.status_line is None:
                    record.status_line = "500 INTERNAL SERVER ERROR"
                self.finish(record)
            raise
        if record.end is not None:  # finished as it started: nothing to wait for
            return body
        return _ObservedBody(body, self.finish, record)

    def finish(self, record: RequestRecord) -> None:
        """Stop the clock and run the request hook and the finish hooks (metrics,
        toolbar), each contained."""
        if record.end is None:
            record.end = perf_counter()
        if self.request_hook is not None:
            try:
                self.request_hook(
                    record.endpoint,
                    record.method,
                    record.status_line,
                    record.end - record.start,
                    record,
                )
            except Exception:
                warn_limited(
                    "finish:request", "Flask-Observe: the request hook failed", exc_info=True
                )
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
