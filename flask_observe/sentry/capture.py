"""Capture on the request thread: what a request's error needs noted before it answers.

:func:`capture` checks the throttle (:mod:`flask_observe.sentry.throttle`), notes the
scrubbed request data, the tags and forks of the scopes, picks the event id the client
gets, and hands the rest to the capture worker (:mod:`flask_observe.sentry.worker`),
which builds the event (:mod:`flask_observe.sentry.events`). Each exception is captured
at most once per request: asked again, :func:`capture` answers the id it gave. The JSON
errors of :mod:`flask_observe.errors` get an :class:`AppCapture` for their app and call
it for unhandled errors and for HTTP errors with a 5xx status.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import contextvars
import dataclasses
import typing as t
import uuid

from flask import current_app
from flask import has_request_context
from flask import request

from ..containment import warn_limited
from ..scrub import default_scrubber
from ..state import find_state
from .events import deliver
from .events import head_locals
from .events import HINT_KEY
from .events import PendingEvent
from .scopes import answer_last_event_id
from .scopes import fork
from .scopes import thread_scopes
from .setup import active_client
from .setup import flask_integration_active
from .throttle import fingerprint
from .worker import submit

if t.TYPE_CHECKING:
    from flask import Request

    from ..scrub import Scrubber
    from .throttle import ErrorThrottle

#: WSGI environ key holding the :class:`Noted` capture of this request's last captured
#: (or suppressed) exception: another capture of it in the request is a duplicate.
CAPTURED_KEY = "flask_observe.captured"

#: The longest request body (bytes) copied into an event.
MAX_EVENT_BODY = 10_000


@dataclasses.dataclass(eq=False)
class SentryState:
    """The capture part of one app's state (``app.extensions["observe"].sentry``).

    .. versionadded:: 0.1.0
    """

    #: ``abort(5xx)`` statuses that are captured (``OBSERVE_SENTRY_CAPTURE_STATUSES``).
    capture_statuses: frozenset[int]
    #: Scrubs request data and events (``OBSERVE_SCRUB_KEYS`` added).
    scrubber: Scrubber
    #: The per-fingerprint rate limit (``OBSERVE_SENTRY_ERROR_RATE``), ``None`` when off.
    #:
    #: .. versionadded:: 0.2.0
    throttle: ErrorThrottle | None = None
    #: Builds and captures each noted event in the request thread, instead of the
    #: capture worker: ``benchmarks/sentry_baseline.py`` sets it to its in-request
    #: build, to compare the two. Not a setting.
    #:
    #: .. versionadded:: 0.2.0
    deliver_inline: t.Callable[[PendingEvent], str | None] | None = None


class Noted(t.NamedTuple):
    """What a request's capture of one exception came to."""

    exception: BaseException
    #: The event id; ``None`` when suppressed, dropped, or left to ``FlaskIntegration``.
    event_id: str | None
    #: ``False`` when sentry-sdk's own ``FlaskIntegration`` captures it instead.
    ours: bool = True


class AppCapture:
    """The capture callable the JSON errors of one app get (see
    :class:`flask_observe.errors.Capture`): unhandled errors, and HTTP errors whose
    status ``OBSERVE_SENTRY_CAPTURE_STATUSES`` lists.

    :param sentry: the app's capture state.

    .. versionadded:: 0.2.0
    """

    def __init__(self, sentry: SentryState) -> None:
        self.sentry = sentry

    def __call__(self, exception: BaseException, *, status: int, handled: bool) -> str | None:
        """Capture *exception*, answered with *status*; the event id or ``None``.

        An unhandled error is left to sentry-sdk's own ``FlaskIntegration`` when it is
        active (its receiver of ``got_request_exception`` captures it): the first call
        answers ``None``, a later one, from the error handler, that event's id.
        """
        if handled and status not in self.sentry.capture_statuses:
            return None
        return _capture(exception, handled, self.sentry, leave_unhandled=True)


def capture(exception: BaseException, *, handled: bool) -> str | None:
    """Capture *exception* with the current request's data; the event id or ``None``.

    In the request thread: the throttle check, the request data (scrubbed), tags and
    scopes, and the event id; the event is built and sent by the capture worker
    (:mod:`flask_observe.sentry.worker`) with that id. Returns ``None``, and captures
    nothing, when sentry-sdk is missing or not initialised, or when the throttle
    (``OBSERVE_SENTRY_ERROR_RATE``) suppresses this repeat. Captured once per request:
    a second call with the same exception answers the first one's id. Never raises.

    :param exception: the exception to report.
    :param handled: ``False`` for unhandled exceptions, ``True`` for ``abort(5xx)``.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
        The event is built off the request thread; repeats may be suppressed.
    """
    state = find_state(current_app)
    sentry = state.part(SentryState) if state is not None else None
    return _capture(exception, handled, sentry, leave_unhandled=False)


def _capture(
    exception: BaseException, handled: bool, sentry: SentryState | None, *, leave_unhandled: bool
) -> str | None:
    try:
        client = active_client()
        if client is None:
            return None
        req = t.cast("Request", request._get_current_object())  # type: ignore[attr-defined]
        environ = req.environ
        noted = environ.get(CAPTURED_KEY)
        if isinstance(noted, Noted) and noted.exception is exception:
            return noted.event_id if noted.ours else _last_event_id()
        if leave_unhandled and not handled and flask_integration_active(client):
            # Its own got_request_exception receiver captures the error; its id is known
            # once every receiver has run, when the error handler asks again.
            environ[CAPTURED_KEY] = Noted(exception, None, ours=False)
            return None
        _ensure_duplicate_filter()
        environ[CAPTURED_KEY] = Noted(exception, None)
        tb = exception.__traceback__
        suppressed = 0
        if sentry is not None and sentry.throttle is not None:
            carried = sentry.throttle.admit(fingerprint(exception, tb))
            if carried is None:
                return None
            suppressed = carried
        rule = req.url_rule
        endpoint = req.endpoint
        tags: dict[str, str] = {}
        if rule is not None:
            tags["route"] = rule.rule
        if endpoint:
            tags["endpoint"] = endpoint
        scrubber = sentry.scrubber if sentry else default_scrubber
        # Forks: what the app set in its scopes so far goes with the event, and nothing
        # it sets later in the request.
        isolation, current = thread_scopes()
        pending = PendingEvent(
            exc_info=(type(exception), exception, tb),
            handled=handled,
            event_id=uuid.uuid4().hex,
            request_data=request_data(scrubber, req),
            transaction=endpoint,
            tags=tags,
            suppressed=suppressed,
            client=client,
            isolation_scope=fork(isolation),
            current_scope=fork(current),
            scrubber=scrubber,
            head_locals=head_locals(tb),
        )
        event_id: str | None
        if sentry is not None and sentry.deliver_inline is not None:
            event_id = contextvars.copy_context().run(sentry.deliver_inline, pending)
        elif client.options.get("add_full_stack"):  # the stack to add is this thread's
            event_id = contextvars.copy_context().run(deliver, pending)
        else:
            submit(pending)
            event_id = pending.event_id
        environ[CAPTURED_KEY] = Noted(exception, event_id)
        if event_id is not None:
            answer_last_event_id(environ, isolation, event_id)
        return event_id
    except Exception:
        warn_limited("sentry-capture", "Flask-Observe could not capture an error", exc_info=True)
        return None


def _last_event_id() -> str | None:
    """The id of the last event captured in this request's isolation scope (read in a
    copy of the context: the getter sets the scope it makes)."""
    import sentry_sdk

    return contextvars.copy_context().run(sentry_sdk.last_event_id)


#: Whether :func:`_drop_second_capture` is registered (once per process: sentry-sdk's
#: global event processors are process-wide).
_duplicate_filter: list[bool] = []


def _ensure_duplicate_filter() -> None:
    if _duplicate_filter:
        return
    from sentry_sdk.scope import add_global_event_processor

    _duplicate_filter.append(True)
    add_global_event_processor(_drop_second_capture)


def _drop_second_capture(event: t.Any, hint: t.Any) -> t.Any:
    """Global event processor: drop another capture, in the same request, of the
    exception Flask-Observe captured or suppressed there, such as the one sentry-sdk's
    logging integration makes from Flask's error log.

    ``DedupeIntegration`` did that while Flask-Observe captured in the request; it
    cannot see a capture made on the worker. Applies only where it would have applied:
    with ``DedupeIntegration`` enabled. Never raises.
    """
    try:
        if not hint or hint.get(HINT_KEY) or not has_request_context():
            return event
        exc_info = hint.get("exc_info")
        noted = request.environ.get(CAPTURED_KEY)
        if not exc_info or not isinstance(noted, Noted) or not noted.ours:
            return event
        if noted.exception is not exc_info[1]:
            return event
        import sentry_sdk

        if sentry_sdk.get_client().get_integration("dedupe") is None:
            return event
        return None
    except Exception:
        return event


def request_data(scrubber: Scrubber, req: Request | None = None) -> dict[str, t.Any]:
    """The request part of an event: method, URL, query, headers, small bodies.

    :param scrubber: scrubs every value.
    :param req: the request (default: the current one).
    """
    if req is None:
        req = t.cast("Request", request._get_current_object())  # type: ignore[attr-defined]
    data: dict[str, t.Any] = {
        "method": req.method,
        "url": scrubber.scrub_text(req.base_url),
        "query_string": scrubber.scrub_text(req.query_string.decode("latin-1")),
        "headers": scrubber.scrub({name: value for name, value in req.headers}),
    }
    length = req.content_length
    if length is not None and 0 < length <= MAX_EVENT_BODY:
        body: object = None
        if req.is_json:
            body = req.get_json(silent=True)
        elif req.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            body = req.form.to_dict()
        if body is not None:
            data["data"] = scrubber.scrub(body)
    return data
