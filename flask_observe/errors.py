"""JSON errors: one problem shape (RFC 9457) for every error response.

Every error response, from ``abort()``, routing (404, 405), request parsing (400) and
unhandled exceptions (500), becomes an ``application/problem+json`` body with ``type``,
``title``, ``status``, ``detail`` and, when the error was captured, ``event_id``. Built
on Flask's own machinery, never on ``errorhandler(Exception)``:

- one handler for :class:`~werkzeug.exceptions.HTTPException`, which Flask calls for
  HTTP errors and, as :class:`~werkzeug.exceptions.InternalServerError` with
  ``original_exception``, for unhandled exceptions *after* it has logged them, sent
  ``got_request_exception`` and re-raised them under ``PROPAGATE_EXCEPTIONS``. It is
  the default, never an override: a handler of the app's that Flask would have chosen
  without ours (``errorhandler(Exception)`` included) gets the error instead, and a
  trapped exception (``TRAP_HTTP_EXCEPTIONS``, ``TRAP_BAD_REQUEST_ERRORS``) is
  re-raised as in plain Flask;
- one handler per class mapped with :meth:`Observe.register_error
  <flask_observe.Observe.register_error>`;
- one ``got_request_exception`` receiver, which notes the unhandled exception on the
  request record (the metrics' exception counter) before Flask logs it.

Errors are captured through the :class:`Capture` callable ``init_app`` hands over (the
one of :mod:`flask_observe.sentry`, or none): this module notes its event id on the
record and in the response. Nothing here runs on the success path. Usage::

    from flask_observe import APIError

    @app.post("/sum")
    def add():
        numbers = request.get_json()["numbers"]
        if not all(isinstance(n, int) for n in numbers):
            raise APIError("Numbers must be integers", status=400, field="numbers")
        return {"sum": sum(numbers)}

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import dataclasses
import typing as t

from flask import after_this_request
from flask import current_app
from flask import got_request_exception
from flask import has_request_context
from flask import request
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.routing import RoutingException
from werkzeug.wrappers import Response

from .containment import warn_limited
from .record import current_record
from .secrets import app_scrubber
from .state import find_state

if t.TYPE_CHECKING:
    from flask import Flask

    from .record import RequestRecord
    from .state import ObserveState

#: The media type of problem bodies (RFC 9457).
PROBLEM_MIMETYPE = "application/problem+json"

#: The media type used when ``OBSERVE_ERROR_BODY`` builds the body.
CUSTOM_MIMETYPE = "application/json"

#: The ``detail`` of a 5xx from an unhandled exception outside debug mode.
GENERIC_DETAIL = "The server encountered an internal error and could not complete your request."

#: The body of the last-resort response: constant bytes, nothing left to fail.
LAST_RESORT_BODY = (
    b'{"type":"about:blank","title":"Internal Server Error","status":500,'
    b'"detail":"The server encountered an internal error and could not complete '
    b'your request."}'
)

#: WSGI environ key holding the exception Flask reported as unhandled
#: (``got_request_exception``) in this request.
UNHANDLED_KEY = "flask_observe.unhandled"

#: WSGI environ key holding the event id of the request's captured error.
EVENT_ID_KEY = "flask_observe.event_id"

BodyBuilder = t.Callable[[dict[str, t.Any]], t.Any]


class Capture(t.Protocol):
    """Reports an error to an error tracker; the event id, or ``None`` when nothing was
    sent. Called for every unhandled exception (``handled=False``, from the
    ``got_request_exception`` receiver, and again from the error handler when that
    call gave no id) and for each HTTP error answered with a 5xx status
    (``handled=True``). It captures an exception once per request: asked again, it
    answers the same id. Never raises.

    .. versionadded:: 0.2.0
    """

    def __call__(self, exception: BaseException, *, status: int, handled: bool) -> str | None: ...


class APIError(HTTPException):
    """An error answered with *status* and *message* as the problem ``detail``.

    Raise it from a view; every keyword becomes an extra member of the problem body
    (``type`` and ``title`` replace the defaults)::

        raise APIError("Numbers must be integers", status=400, field="numbers")

    gives ``400`` with ``{"type": "about:blank", "title": "Bad Request", "status": 400,
    "detail": "Numbers must be integers", "field": "numbers"}``. It is an
    :class:`~werkzeug.exceptions.HTTPException`, so without JSON errors Flask answers
    it with its usual HTML page. A 5xx ``APIError`` is captured like ``abort(5xx)``.

    :param message: the ``detail``, shown to the client as it is.
    :param status: the HTTP status, 400-599.
    :param extra: extra problem members; must be JSON-serialisable.

    .. versionadded:: 0.1.0
    """

    def __init__(self, message: str, status: int = 400, **extra: t.Any) -> None:
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"APIError needs a status from 400 to 599, got {status!r}")
        super().__init__(description=message)
        self.code = status
        #: The message, used as ``detail``.
        self.message = message
        #: Extra members of the problem body.
        self.extra = extra

    def __reduce__(self) -> tuple[t.Any, ...]:
        return (_rebuild_api_error, (self.message, self.code, self.extra))


def _rebuild_api_error(message: str, status: int, extra: dict[str, t.Any]) -> APIError:
    return APIError(message, status, **extra)


@dataclasses.dataclass(eq=False)
class ErrorsState:
    """The error-response part of one app's state (``get_state(app).part(ErrorsState)``).

    .. versionadded:: 0.1.0
    """

    #: Answer errors with problem JSON (``OBSERVE_JSON_ERRORS``): ``True`` always,
    #: ``None`` when the client prefers it (:func:`wants_problem`); when ``False``, the
    #: handler only captures ``abort(5xx)`` and adds the event-id header.
    #:
    #: .. versionchanged:: 0.3.0
    #:     ``None``, the default, negotiates.
    json_errors: bool | None
    #: Custom body builder (``OBSERVE_ERROR_BODY``).
    body_builder: BodyBuilder | None
    #: Response header carrying the event id (``OBSERVE_EVENT_ID_HEADER``).
    event_id_header: str | None
    #: Domain exception classes mapped to statuses (the extension's live map).
    error_map: dict[type[BaseException], int]
    #: Reports errors to Sentry; ``None`` when Sentry is off.
    #:
    #: .. versionadded:: 0.2.0
    capture: Capture | None = None


def install(
    app: Flask, state: ObserveState, capture: Capture | None = None, *, capturing: bool = False
) -> None:
    """Set up error responses for *app* (called by ``init_app``).

    Connects the ``got_request_exception`` receiver. With ``OBSERVE_JSON_ERRORS`` on,
    registers the ``HTTPException`` handler (unless the app already has one) and a
    handler per class mapped with ``register_error`` (unless the app has one for that
    class). With it off, only the mapped classes get a handler; the ``HTTPException``
    handler is registered only when *capturing* (it captures ``abort(5xx)`` and adds the
    event-id header, and leaves Flask's HTML body as it is).

    :param capture: reports errors to Sentry, ``None`` when Sentry is off.
    :param capturing: errors can be captured already (a DSN is configured, or the SDK
        is initialised).
    """
    config = state.config
    errors = ErrorsState(
        json_errors=config.json_errors,
        body_builder=config.error_body,
        event_id_header=config.event_id_header,
        error_map=state.extension.error_map,
        capture=capture,
    )
    state.add_part(errors)
    got_request_exception.connect(on_unhandled, app, weak=False)
    for exception in list(errors.error_map):
        register_mapped(app, exception)
    if errors.json_errors is False and not (capture is not None and capturing):
        return
    if _app_handler(app, HTTPException) is None:
        app.register_error_handler(HTTPException, handle_http_exception)


def _app_handler(app: Flask, exception: type[BaseException]) -> object:
    handlers = t.cast(
        "dict[type[BaseException], object]", app.error_handler_spec.get(None, {}).get(None, {})
    )
    return handlers.get(exception)


def register_mapped(app: Flask, exception: type[BaseException]) -> None:
    """Answer *exception* on *app* through the ``register_error`` map, unless the app
    has its own handler for the class.

    :raises AssertionError: *app* already served its first request (Flask's rule).
    """
    if _app_handler(app, exception) is None and issubclass(exception, Exception):
        app.register_error_handler(exception, handle_mapped_exception)


# --- the error path -------------------------------------------------------------------


def on_unhandled(sender: Flask, exception: BaseException, **extra: object) -> None:
    """``got_request_exception`` receiver: note and capture the unhandled exception.

    Flask sends the signal only for exceptions no handler took, before it re-raises
    them under ``PROPAGATE_EXCEPTIONS`` or logs them, so errors are noted and captured
    in debug and testing mode too, and before a logging integration sees them. The
    exception goes on the request record (the metrics' exception counter) and in the
    environ (the error handler recognises Flask's ``InternalServerError`` wrapper by
    it). Never raises.

    .. versionadded:: 0.2.0
    """
    try:
        environ = request.environ
        environ[UNHANDLED_KEY] = exception
        record = current_record()
        _note_exception(record, exception)
        state = find_state(sender)
        errors = state.part(ErrorsState) if state is not None else None
        capture = errors.capture if errors is not None else None
        if capture is not None:
            _note_event_id(record, capture(exception, status=500, handled=False))
    except Exception:
        warn_limited("error-unhandled", "Flask-Observe could not note an error", exc_info=True)


def handle_http_exception(error: HTTPException) -> t.Any:
    """The app's ``HTTPException`` handler: a problem response for *error*.

    In order:

    1. a handler the app (or the request's blueprints) registered that Flask would
       have chosen had ours not been there, such as ``errorhandler(Exception)``,
       answers instead, whenever it was registered;
    2. an exception Flask traps (``TRAP_HTTP_EXCEPTIONS``, ``TRAP_BAD_REQUEST_ERRORS``
       or its debug default) is re-raised, as plain Flask does when no handler exists;
    3. redirects and ``abort(response)`` are returned untouched;
    4. otherwise the problem response. Unhandled exceptions arrive as
       ``InternalServerError`` with ``original_exception`` (already logged and
       captured).

    Never fails: a failure building the body gives the constant last-resort response.

    .. versionadded:: 0.1.0
    """
    other = _handler_without_ours(error)
    if other is not None:
        _capture_for_other(error)
        return current_app.ensure_sync(other)(error)
    original = getattr(error, "original_exception", None)
    unhandled = (
        isinstance(error, InternalServerError)
        and original is not None
        and request.environ.get(UNHANDLED_KEY) is original
    )
    if not unhandled and current_app.trap_http_exception(error):
        raise error
    try:
        if error.code is None or error.response is not None:
            return error
        if isinstance(error, RoutingException):
            return error
        if unhandled:
            return _answer(error, error.code, cause=t.cast(BaseException, original), unhandled=True)
        return _answer(error, error.code, cause=error, unhandled=False)
    except Exception:
        return last_resort()


def _capture_for_other(error: HTTPException) -> None:
    """Capture an ``abort(5xx)`` that another handler of the app answers (an unhandled
    exception was captured by :func:`on_unhandled` already). Never raises."""
    try:
        if error.code is None or error.code < 500 or error.response is not None:
            return
        original = getattr(error, "original_exception", None)
        if original is not None and request.environ.get(UNHANDLED_KEY) is original:
            return
        capture = _errors().capture
        if capture is not None:
            _note_event_id(current_record(), capture(error, status=error.code, handled=True))
    except Exception:
        warn_limited("error-capture", "Flask-Observe could not capture an error", exc_info=True)


def _handler_without_ours(error: HTTPException) -> t.Callable[[t.Any], t.Any] | None:
    """The handler Flask would have chosen for *error* if ours were not registered.

    Flask looks for handlers by status code, then by class, each time in the request's
    blueprints then the app, each class along the MRO; it chose ours, so the first
    other handler in that same order is the one it would have chosen without it.
    """
    exc_class = type(error)
    code = exc_class.code if issubclass(exc_class, HTTPException) else None
    spec = current_app.error_handler_spec
    names = (*request.blueprints, None)
    for c in (code, None) if code is not None else (None,):
        for name in names:
            handler_map = spec.get(name, {}).get(c)
            if not handler_map:
                continue
            for cls in exc_class.__mro__:
                handler = handler_map.get(cls)
                if handler is not None and handler is not handle_http_exception:
                    return handler
    return None


def handle_mapped_exception(error: Exception) -> Response:
    """The handler for classes mapped with ``register_error``.

    .. versionadded:: 0.1.0
    """
    try:
        errors = _errors()
        status = 500
        for cls in type(error).__mro__:
            if cls in errors.error_map:
                status = errors.error_map[cls]
                break
        http_error = HTTPException()
        http_error.code = status
        return _answer(http_error, status, cause=error, unhandled=False)
    except Exception:
        return last_resort()


def last_resort() -> Response:
    """A 500 problem response made of constant bytes, for when building one failed.

    .. versionadded:: 0.1.0
    """
    warn_limited("error-body", "Flask-Observe could not build an error body", exc_info=True)
    response = Response(LAST_RESORT_BODY, status=500, mimetype=PROBLEM_MIMETYPE)
    try:
        header = _errors().event_id_header
        event_id = request.environ.get(EVENT_ID_KEY)
        if header and isinstance(event_id, str):
            response.headers[header] = event_id
    except Exception:
        pass
    return response


def _errors() -> ErrorsState:
    state = find_state(current_app)
    errors = state.part(ErrorsState) if state is not None else None
    if errors is None:
        raise RuntimeError("Flask-Observe errors are not set up on this app.")
    return errors


def _answer(
    error: HTTPException, status: int, *, cause: BaseException, unhandled: bool
) -> Response:
    errors = _errors()
    record = current_record()
    capture = errors.capture
    event_id: str | None = None
    if unhandled:
        _note_exception(record, cause)
        noted = request.environ.get(EVENT_ID_KEY)  # by the receiver
        if isinstance(noted, str):
            event_id = noted
        elif capture is not None:
            event_id = _note_event_id(record, capture(cause, status=status, handled=False))
    else:
        if cause is not error or isinstance(error, APIError):
            _note_exception(record, cause)
        if capture is not None:
            event_id = _note_event_id(record, capture(cause, status=status, handled=True))

    if errors.json_errors or (errors.json_errors is None and wants_problem()):
        problem = _problem(error, status, cause, unhandled, event_id)
        response = error.get_response()
        if errors.body_builder is not None:
            body = errors.body_builder(problem)
            mimetype = CUSTOM_MIMETYPE
        else:
            body = problem
            mimetype = PROBLEM_MIMETYPE
        response.set_data(current_app.json.dumps(body))
        response.headers["Content-Type"] = mimetype
    else:
        if cause is not error and error.description is None:
            error.description = _detail(error, status, cause, unhandled)
        response = error.get_response()
    if errors.json_errors is None:
        response.vary.add("Accept")
    return response


#: The media types :func:`wants_problem` weighs, in the order that wins a tie.
NEGOTIATED = (PROBLEM_MIMETYPE, "application/json", "text/html", "application/xhtml+xml")


def wants_problem() -> bool:
    """Whether the current request's client gets a problem+json body under the
    negotiated default (``OBSERVE_JSON_ERRORS = None``): yes for a JSON request body,
    and for an ``Accept`` header that is missing, accepts anything (``*/*``), names
    none of the types below, or ranks problem+json or JSON at least as high as HTML;
    no (an HTML page) when it ranks ``text/html`` or ``application/xhtml+xml`` higher,
    as browsers do.

    .. versionadded:: 0.3.0
    """
    if request.is_json:
        return True
    best = request.accept_mimetypes.best_match(NEGOTIATED)
    return best is None or best.endswith("json")


def _problem(
    error: HTTPException,
    status: int,
    cause: BaseException,
    unhandled: bool,
    event_id: str | None,
) -> dict[str, t.Any]:
    problem: dict[str, t.Any] = {
        "type": "about:blank",
        "title": HTTP_STATUS_CODES.get(status, "Unknown Error"),
        "status": status,
        "detail": _detail(error, status, cause, unhandled),
    }
    if isinstance(error, APIError):
        for key, value in error.extra.items():
            if key not in ("status", "detail", "event_id"):
                problem[key] = value
    if event_id is not None:
        problem["event_id"] = event_id
    return problem


def _detail(error: HTTPException, status: int, cause: BaseException, unhandled: bool) -> str:
    """What the client is told: never an unexpected exception's text outside debug, and
    an exception's text only with its secrets masked (:mod:`flask_observe.secrets`)."""
    if unhandled or (cause is not error and status >= 500):
        if current_app.debug:
            text = _safe_str(cause)
            name = type(cause).__name__
            return f"{name}: {app_scrubber(current_app).scrub_text(text)}" if text else name
        return GENERIC_DETAIL
    if cause is not error:  # a mapped domain exception, 4xx: its message is for clients
        text = _safe_str(cause)
        if text:
            return app_scrubber(current_app).scrub_text(text)
    description = error.description
    if isinstance(description, str) and description:
        return description
    return HTTP_STATUS_CODES.get(status, "Unknown Error")


def _safe_str(value: object) -> str | None:
    try:
        text = str(value)
    except Exception:
        return None
    return text if isinstance(text, str) else None


def _note_exception(record: RequestRecord | None, exception: BaseException) -> None:
    """The one writer of ``record.exception``: the first error noted in the request."""
    if record is not None and record.exception is None:
        record.exception = exception


def _note_event_id(record: RequestRecord | None, event_id: str | None) -> str | None:
    """The one writer of the request's event id, on the record and in the environ (the
    last-resort response and :func:`event_id` read it there); *event_id* is returned.
    The first id noted in a request also puts the event-id header on the response,
    whichever handler makes it (:func:`_add_event_id_header`)."""
    if event_id is not None:
        environ = request.environ
        if EVENT_ID_KEY not in environ:
            after_this_request(_add_event_id_header)
        environ[EVENT_ID_KEY] = event_id
        if record is not None:
            record.event_id = event_id
    return event_id


def _add_event_id_header(response: Response) -> Response:
    """Put the request's event id in the ``OBSERVE_EVENT_ID_HEADER`` of the error
    response, be it ours, the app's own page or a handler's; a value already there is
    kept. Runs only in requests whose error was captured (``after_this_request``)."""
    try:
        header = _errors().event_id_header
        event_id = request.environ.get(EVENT_ID_KEY)
        if header and isinstance(event_id, str) and header not in response.headers:
            response.headers[header] = event_id
    except Exception:
        warn_limited("error-header", "Flask-Observe could not add the event id", exc_info=True)
    return response


def event_id() -> str | None:
    """The id of the Sentry event captured for the current request's error, or
    ``None`` (no request, nothing captured, Sentry off, or a repeat the throttle
    suppressed). The same id is in the ``X-Sentry-Event-Id`` header; an app's own
    error page can show it, so that a visitor can quote it to support::

        from flask_observe import event_id

        @app.errorhandler(500)
        def server_error(error):
            return render_template("500.html", event_id=event_id()), 500

    .. code-block:: html+jinja

        {% if event_id %}<p>Quote {{ event_id }} when you contact us.</p>{% endif %}

    .. versionadded:: 0.3.0
    """
    if not has_request_context():
        return None
    noted = request.environ.get(EVENT_ID_KEY)
    return noted if isinstance(noted, str) else None
