"""JSON errors and Sentry capture: one problem shape for every failure.

Every error response, from ``abort()``, routing (404, 405), request parsing (400) and
unhandled exceptions (500), becomes an ``application/problem+json`` body (RFC 9457)
with ``type``, ``title``, ``status``, ``detail`` and, when the error was captured,
``event_id``. Built on Flask's own machinery, never on ``errorhandler(Exception)``:

- one handler for :class:`~werkzeug.exceptions.HTTPException`, which Flask calls for
  HTTP errors and, as :class:`~werkzeug.exceptions.InternalServerError` with
  ``original_exception``, for unhandled exceptions *after* it has logged them, sent
  ``got_request_exception`` and re-raised them under ``PROPAGATE_EXCEPTIONS``;
- one handler per class mapped with :meth:`Observe.register_error
  <flask_observe.Observe.register_error>`;
- a ``got_request_exception`` receiver that captures the unhandled exception to Sentry.

None of them runs on the success path. Usage::

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
import weakref

from flask import current_app
from flask import got_request_exception
from flask import request
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.routing import RoutingException
from werkzeug.wrappers import Response

from . import sentry
from .config import ConfigError
from .containment import warn_limited
from .record import current_record
from .scrub import Scrubber

if t.TYPE_CHECKING:
    from flask import Flask

    from .config import ObserveConfig
    from .extension import Observe
    from .extension import ObserveState
    from .record import RequestRecord

#: The media type of problem bodies (RFC 9457).
PROBLEM_MIMETYPE = "application/problem+json"

#: The media type used when ``OBSERVE_ERROR_BODY`` builds the body.
CUSTOM_MIMETYPE = "application/json"

#: WSGI environ key holding the event id of the request's captured error.
EVENT_ID_KEY = "flask_observe.event_id"

#: The ``detail`` of a 5xx from an unhandled exception outside debug mode.
GENERIC_DETAIL = "The server encountered an internal error and could not complete your request."

#: The body of the last-resort response: constant bytes, nothing left to fail.
LAST_RESORT_BODY = (
    b'{"type":"about:blank","title":"Internal Server Error","status":500,'
    b'"detail":"The server encountered an internal error and could not complete '
    b'your request."}'
)

#: The longest request body (bytes) copied into an event.
MAX_EVENT_BODY = 10_000

BodyBuilder = t.Callable[[dict[str, t.Any]], t.Any]


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
    """The error-handling state of one app, in ``app.extensions["observe"].errors``.

    .. versionadded:: 0.1.0
    """

    #: Answer errors with problem JSON (``OBSERVE_JSON_ERRORS``).
    json_errors: bool
    #: ``abort(5xx)`` statuses that are captured (``OBSERVE_SENTRY_CAPTURE_STATUSES``).
    capture_statuses: frozenset[int]
    #: Custom body builder (``OBSERVE_ERROR_BODY``).
    body_builder: BodyBuilder | None
    #: Response header carrying the event id (``OBSERVE_EVENT_ID_HEADER``).
    event_id_header: str | None
    #: Scrubs request data and events (``OBSERVE_SCRUB_KEYS`` added).
    scrubber: Scrubber
    #: Domain exception classes mapped to statuses (the extension's live map).
    error_map: dict[type[BaseException], int]


#: Apps initialised by each extension object, for ``register_error`` after
#: ``init_app``. Weak on both sides: nothing here keeps an app or extension alive.
_apps: weakref.WeakKeyDictionary[Observe, weakref.WeakSet[Flask]]
_apps = weakref.WeakKeyDictionary()


def check_errors_config(config: ObserveConfig) -> None:
    """Refuse a configuration :func:`init_errors` could not apply, before anything is
    registered on the app.

    :raises flask_observe.ConfigError: ``OBSERVE_SENTRY_DSN`` is not a valid DSN or
        sentry-sdk is not installed.
    """
    if config.sentry_dsn is not None:
        reason = sentry.validate_dsn(config.sentry_dsn)
        if reason is not None:
            raise ConfigError("OBSERVE_SENTRY_DSN", reason)


def init_errors(app: Flask, state: ObserveState) -> None:
    """Set up JSON errors and Sentry capture for *app* (called by ``init_app``).

    Registers the ``HTTPException`` handler (unless the app already has one), a handler
    per class mapped with ``register_error`` (unless the app has one for that class)
    and a ``got_request_exception`` receiver; initialises sentry-sdk when
    ``OBSERVE_SENTRY_DSN`` is set. Nothing here runs on the success path.

    :raises flask_observe.ConfigError: ``OBSERVE_SENTRY_DSN`` is not a valid DSN or
        sentry-sdk is not installed.
    """
    config = state.config
    check_errors_config(config)
    errors = ErrorsState(
        json_errors=config.json_errors,
        capture_statuses=config.sentry_capture_statuses,
        body_builder=config.error_body,
        event_id_header=config.event_id_header,
        scrubber=Scrubber(config.scrub_keys),
        error_map=state.extension.error_map,
    )
    state.errors = errors
    try:
        sentry.setup_from_config(config.sentry_dsn)
    except Exception:
        warn_limited("sentry-init", "Flask-Observe could not set up sentry-sdk", exc_info=True)
    if _app_handler(app, HTTPException) is None:
        app.register_error_handler(HTTPException, handle_http_exception)
    for exception in list(errors.error_map):
        _register_mapped(app, exception)
    got_request_exception.connect(_on_unhandled, app, weak=False)
    _apps.setdefault(state.extension, weakref.WeakSet()).add(app)


def on_register_error(extension: Observe, exception: type[BaseException]) -> None:
    """Register the handler for a newly mapped class on the apps already initialised."""
    for app in list(_apps.get(extension, ())):
        try:
            _register_mapped(app, exception)
        except AssertionError:
            warn_limited(
                f"register_error:{app.name}",
                "Flask-Observe: register_error(%s) came after the app %r served its "
                "first request; call it at set-up time.",
                exception.__name__,
                app.name,
            )


def _app_handler(app: Flask, exception: type[BaseException]) -> object:
    handlers = t.cast(
        "dict[type[BaseException], object]", app.error_handler_spec.get(None, {}).get(None, {})
    )
    return handlers.get(exception)


def _register_mapped(app: Flask, exception: type[BaseException]) -> None:
    if _app_handler(app, exception) is None and issubclass(exception, Exception):
        app.register_error_handler(exception, handle_mapped_exception)


# --- handlers (error path only) -------------------------------------------------------


def handle_http_exception(error: HTTPException) -> Response | HTTPException:
    """The app's ``HTTPException`` handler: a problem response for *error*.

    Unhandled exceptions arrive as ``InternalServerError`` with ``original_exception``
    (already logged and captured). Redirects and ``abort(response)`` are returned
    untouched. Never raises: a failure gives the constant last-resort response.

    .. versionadded:: 0.1.0
    """
    try:
        if error.code is None or error.response is not None:
            return error
        if isinstance(error, RoutingException):
            return error
        original = getattr(error, "original_exception", None)
        if isinstance(error, InternalServerError) and original is not None:
            return _answer(error, error.code, cause=original, unhandled=True)
        return _answer(error, error.code, cause=error, unhandled=False)
    except Exception:
        return last_resort()


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
    state = current_app.extensions["observe"]
    return t.cast(ErrorsState, state.errors)


def _answer(
    error: HTTPException, status: int, *, cause: BaseException, unhandled: bool
) -> Response:
    errors = _errors()
    record = current_record()
    environ = request.environ
    event_id: str | None = None
    if unhandled:
        _note_exception(record, cause)
        event_id = environ.get(EVENT_ID_KEY)
        if event_id is None:
            event_id = _integration_event_id()
    else:
        if cause is not error or isinstance(error, APIError):
            _note_exception(record, cause)
        if status in errors.capture_statuses:
            event_id = capture(cause, handled=True)
    if event_id is not None:
        environ[EVENT_ID_KEY] = event_id
        if record is not None:
            record.event_id = event_id

    if errors.json_errors:
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
    if event_id is not None and errors.event_id_header:
        response.headers[errors.event_id_header] = event_id
    return response


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
    """What the client is told: never an unexpected exception's text outside debug."""
    if unhandled or (cause is not error and status >= 500):
        if current_app.debug:
            text = _safe_str(cause)
            name = type(cause).__name__
            return f"{name}: {text}" if text else name
        return GENERIC_DETAIL
    if cause is not error:  # a mapped domain exception, 4xx: its message is for clients
        text = _safe_str(cause)
        if text:
            return text
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
    if record is not None and record.exception is None:
        record.exception = exception


def _integration_event_id() -> str | None:
    """The event id sentry-sdk's own ``FlaskIntegration`` captured in this request."""
    try:
        client = sentry.active_client()
        if client is not None and sentry.flask_integration_active(client):
            return sentry.last_event_id()
    except Exception:
        warn_limited("sentry-event-id", "Flask-Observe could not read the event id")
    return None


def _on_unhandled(sender: Flask, exception: BaseException, **extra: object) -> None:
    """``got_request_exception`` receiver: note and capture the unhandled exception.

    Runs before ``PROPAGATE_EXCEPTIONS`` re-raises, so errors are captured in debug
    and testing mode too. With sentry-sdk's ``FlaskIntegration`` active, capturing is
    left to it (its receiver sees the same signal); the id is read in the handler.
    """
    try:
        _note_exception(current_record(), exception)
        client = sentry.active_client()
        if client is None or sentry.flask_integration_active(client):
            return
        event_id = capture(exception, handled=False)
        if event_id is not None:
            request.environ[EVENT_ID_KEY] = event_id
            record = current_record()
            if record is not None:
                record.event_id = event_id
    except Exception:
        warn_limited("sentry-capture", "Flask-Observe could not capture an error", exc_info=True)


def capture(exception: BaseException, *, handled: bool) -> str | None:
    """Capture *exception* with the current request's data; the event id or ``None``.

    Does nothing (``None``) when sentry-sdk is missing or not initialised. Never raises.

    :param exception: the exception to report.
    :param handled: ``False`` for unhandled exceptions, ``True`` for ``abort(5xx)``.

    .. versionadded:: 0.1.0
    """
    try:
        if sentry.active_client() is None:
            return None
        rule = request.url_rule
        tags: dict[str, str] = {}
        if rule is not None:
            tags["route"] = rule.rule
        if request.endpoint:
            tags["endpoint"] = request.endpoint
        return sentry.capture(
            exception,
            handled=handled,
            request_data=_request_data(_errors().scrubber),
            transaction=request.endpoint,
            tags=tags,
        )
    except Exception:
        warn_limited("sentry-capture", "Flask-Observe could not capture an error", exc_info=True)
        return None


def _request_data(scrubber: Scrubber) -> dict[str, t.Any]:
    """The request part of an event: method, URL, query, headers, small bodies."""
    data: dict[str, t.Any] = {
        "method": request.method,
        "url": scrubber.scrub_text(request.base_url),
        "query_string": scrubber.scrub_text(request.query_string.decode("latin-1")),
        "headers": scrubber.scrub(dict(request.headers)),
    }
    length = request.content_length
    if length is not None and 0 < length <= MAX_EVENT_BODY:
        body: object = None
        if request.is_json:
            body = request.get_json(silent=True)
        elif request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            body = request.form.to_dict()
        if body is not None:
            data["data"] = scrubber.scrub(body)
    return data
