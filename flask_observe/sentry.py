"""Sentry capture: lean SDK set-up, the unhandled-error receiver, one capture per error,
the request data of events, the per-error rate limit, and fork safety.

Everything here runs at set-up or on the error path only; ``sentry_sdk`` is imported
lazily, so ``import flask_observe`` works without it. When the extension initialises the
SDK itself (``OBSERVE_SENTRY_DSN``) it enables no framework integration at all (no
``FlaskIntegration``, no logging breadcrumbs): the success path pays nothing. Unhandled
errors are captured by one ``got_request_exception`` receiver; ``abort(5xx)`` is captured
by the error handler of :mod:`flask_observe.errors` through :func:`capture_http_error`.

A capture does on the request thread only what must happen there: it checks the
throttle (:mod:`flask_observe.throttle`), notes the scrubbed request data, the tags and
the scopes, picks the event id the client gets, and queues the rest; the event itself is
built by the capture worker (:mod:`flask_observe.sentry_worker`,
:mod:`flask_observe.sentry_events`). :func:`flush` waits for both the worker and
sentry-sdk's transport.

Usage in a gunicorn config file, to initialise the SDK once per worker::

    def post_fork(server, worker):
        from flask_observe.sentry import init_sentry
        init_sentry("https://key@sentry.example/1")

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import contextvars
import dataclasses
import os
import sys
import time
import typing as t
import uuid

from flask import after_this_request
from flask import current_app
from flask import got_request_exception
from flask import has_request_context
from flask import request

from .config import ConfigError
from .containment import warn_limited
from .record import current_record
from .scrub import default_scrubber
from .scrub import is_scrubbing
from .scrub import make_before_send
from .scrub import Scrubber
from .sentry_events import head_locals
from .sentry_events import HINT_KEY
from .sentry_events import PendingEvent
from .sentry_events import SUPPRESSED_EXTRA
from .sentry_events import SUPPRESSED_TAG
from .sentry_worker import drain
from .sentry_worker import submit
from .state import find_state
from .throttle import ErrorThrottle
from .throttle import fingerprint

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from flask import Flask
    from flask import Request
    from flask import Response
    from sentry_sdk.client import BaseClient
    from sentry_sdk.scope import Scope

    from .config import ObserveConfig
    from .state import ObserveState

#: WSGI environ key holding the event id of the request's captured error.
EVENT_ID_KEY = "flask_observe.event_id"

#: WSGI environ key holding the exception Flask reported as unhandled
#: (``got_request_exception``) in this request.
UNHANDLED_KEY = "flask_observe.unhandled"

#: WSGI environ key holding the exception Flask-Observe captured (or suppressed) in
#: this request: another capture of it in the request is a duplicate.
CAPTURED_KEY = "flask_observe.captured"

#: WSGI environ key holding the token that gives the thread its own Sentry isolation
#: scope back once the response of a request with a captured error is processed.
ISOLATION_TOKEN_KEY = "flask_observe.sentry_isolation"

#: The longest request body (bytes) copied into an event.
MAX_EVENT_BODY = 10_000


#: Options :func:`init_sentry` passes unless the caller overrides them.
LEAN_OPTIONS: dict[str, t.Any] = {
    "default_integrations": False,
    "auto_enabling_integrations": False,
    "traces_sample_rate": None,
}

#: The pid in which :func:`init_sentry` created the client it last made, keyed by the
#: client's id: a capture in another pid means the process forked since.
_owned: dict[int, tuple[int, dict[str, t.Any]]] = {}


def init_sentry(dsn: str, **options: t.Any) -> BaseClient:
    """Initialise sentry-sdk with lean defaults and Flask-Observe's scrubbing.

    Only ``DedupeIntegration`` (drops a second capture of the same exception) and
    ``AtexitIntegration`` (sends queued events at exit) are enabled: no
    ``FlaskIntegration``, so no per-request cost and no performance tracing. The
    ``before_send`` option, if given, runs after scrubbing.

    Call it once per process; under gunicorn, in the ``post_fork`` hook.

    :param dsn: the project's DSN.
    :param options: any further ``sentry_sdk.init`` option; these win over ours.
    :return: the new client (also bound to the global scope).

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
        Runs in a copy of the caller's context: importing sentry-sdk sets its scope
        variables in the importing thread's context, which makes Flask's own context
        changes dearer for every request later served on that thread.
    """
    return contextvars.copy_context().run(_init_sentry, dsn, options)


def _init_sentry(dsn: str, options: dict[str, t.Any]) -> BaseClient:
    import sentry_sdk
    from sentry_sdk.integrations.atexit import AtexitIntegration
    from sentry_sdk.integrations.dedupe import DedupeIntegration

    settings: dict[str, t.Any] = {
        **LEAN_OPTIONS,
        "integrations": [DedupeIntegration(), AtexitIntegration()],
        **options,
    }
    then = settings.get("before_send")
    if not is_scrubbing(then):
        settings["before_send"] = make_before_send(then)
    sentry_sdk.init(dsn=dsn, **settings)
    client = sentry_sdk.get_client()
    _owned.clear()
    _owned[id(client)] = (os.getpid(), {"dsn": dsn, **settings})
    return client


def validate_dsn(dsn: str) -> str | None:
    """The reason *dsn* is unusable, or ``None`` when it is fine (set-up time)."""
    try:
        from sentry_sdk.utils import BadDsn
        from sentry_sdk.utils import Dsn
    except ImportError:
        return "needs sentry-sdk: pip install 'Flask-Observe[sentry]'"
    try:
        Dsn(dsn)
    except BadDsn as exc:
        return f"not a valid Sentry DSN ({exc})"
    return None


def setup_from_config(dsn: str | None) -> None:
    """Initialise the SDK for ``OBSERVE_SENTRY_DSN``, or adopt the active client.

    An active client with the same DSN is reused; one with another DSN is left in
    place (the SDK is process-global) with a warning. An active client the app set up
    itself gets Flask-Observe's scrubbing in front of its ``before_send``.
    """
    if dsn is None:
        # Only adopt: importing the SDK to learn that it is inactive would also set its
        # context variables in this thread's context, which makes each of Flask's own
        # context variable changes dearer for every request served on this thread.
        sdk = sys.modules.get("sentry_sdk")
        if sdk is not None and sdk.get_client().is_active():
            install_scrubber(sdk.get_client())
        return
    try:
        import sentry_sdk
    except ImportError:
        return
    client = sentry_sdk.get_client()
    if client.is_active():
        active = client.options.get("dsn")
        if active != dsn:
            warn_limited(
                "sentry-init",
                "Flask-Observe: sentry-sdk is already initialised with another DSN; "
                "OBSERVE_SENTRY_DSN is ignored (the SDK is process-global).",
            )
        install_scrubber(client)
        return
    init_sentry(dsn)


def install_scrubber(client: BaseClient) -> None:
    """Put Flask-Observe's scrubbing in front of *client*'s ``before_send`` (once)."""
    current = client.options.get("before_send")
    if not is_scrubbing(current):
        client.options["before_send"] = make_before_send(current)


def active_client() -> BaseClient | None:
    """The active sentry-sdk client, re-created when the process forked since it was
    made by :func:`init_sentry` (its queue holds the parent's events: sending them from
    the child would duplicate them). ``None`` when the SDK is missing or inactive.
    """
    sentry_sdk = sys.modules.get("sentry_sdk")  # an SDK never imported is not active
    if sentry_sdk is None:
        return None
    client: BaseClient = sentry_sdk.get_client()
    if not client.is_active():
        return None
    owned = _owned.get(id(client))
    if owned is not None and owned[0] != os.getpid():
        settings = dict(owned[1])
        dsn = settings.pop("dsn")
        settings.pop("integrations", None)
        client = init_sentry(dsn, **settings)
    else:
        install_scrubber(client)
    return client


def flask_integration_active(client: BaseClient) -> bool:
    """Whether sentry-sdk's own ``FlaskIntegration`` captures unhandled errors."""
    return client.get_integration("flask") is not None


def last_event_id() -> str | None:
    """The id of the last event captured in this request's isolation scope."""
    import sentry_sdk

    return sentry_sdk.last_event_id()


def capture_event(
    exception: BaseException,
    *,
    handled: bool,
    request_data: Mapping[str, t.Any] | None,
    transaction: str | None,
    tags: Mapping[str, str],
    suppressed: int = 0,
    scopes: tuple[Scope | None, Scope | None] | None = None,
) -> str | None:
    """Build and capture an event for *exception* right here, in the request thread;
    return the event id or ``None``.

    This is what :func:`capture` did in 0.1, and still does with ``add_full_stack``
    (the stack to add is the request thread's) or ``SentryState.synchronous``. The
    event goes through the client's event processors (``DedupeIntegration`` drops a
    second capture of the same exception object) and ``before_send`` (scrubbing).
    Capture only enqueues: the transport sends from a background thread. It runs in a
    copy of the caller's context, so sentry-sdk's scopes are not left set in it.

    :param suppressed: repeats the throttle suppressed before this one (extra data).
    :param scopes: the isolation and current scope to capture in (forks of the
        caller's, by default; ``None`` for a fresh one).
    """
    if scopes is None:
        isolation, current = thread_scopes()
        scopes = (
            isolation.fork() if isolation is not None else None,
            current.fork() if current is not None else None,
        )
    return contextvars.copy_context().run(
        _capture_here, exception, handled, request_data, transaction, tags, suppressed, scopes
    )


def _capture_here(
    exception: BaseException,
    handled: bool,
    request_data: Mapping[str, t.Any] | None,
    transaction: str | None,
    tags: Mapping[str, str],
    suppressed: int,
    scopes: tuple[Scope | None, Scope | None],
) -> str | None:
    from sentry_sdk.scope import Scope
    from sentry_sdk.scope import ScopeType
    from sentry_sdk.scope import use_isolation_scope
    from sentry_sdk.scope import use_scope
    from sentry_sdk.utils import event_from_exception

    isolation = scopes[0] if scopes[0] is not None else Scope(ty=ScopeType.ISOLATION)
    scope = scopes[1] if scopes[1] is not None else Scope(ty=ScopeType.CURRENT)
    with use_isolation_scope(isolation), use_scope(scope):
        client = scope.get_client()
        event, hint = event_from_exception(
            exception,
            client_options=client.options,
            mechanism={"type": "flask_observe", "handled": handled},
        )
        hint[HINT_KEY] = True
        if request_data is not None:
            event["request"] = dict(request_data)
        if transaction:
            event["transaction"] = transaction
            event["transaction_info"] = {"source": "component"}
        if suppressed:
            event.setdefault("extra", {})[SUPPRESSED_EXTRA] = suppressed
        for key, value in tags.items():
            scope.set_tag(key, value)
        if suppressed:
            scope.set_tag(SUPPRESSED_TAG, "yes")
        if transaction:
            scope.set_transaction_name(transaction, source="component")
        return scope.capture_event(event, hint=hint)


def thread_scopes() -> tuple[Scope | None, Scope | None]:
    """The caller's sentry-sdk isolation and current scope, ``None`` for one its context
    has none of, read without creating or setting one: sentry-sdk's own getters set a
    scope they create, and each variable set in a thread's context makes Flask's own
    context changes dearer for every later request on that thread. An event captured
    with no scope gets fresh ones, made where it is built (a fresh scope costs several
    microseconds: no need on the request thread). Without sentry-sdk's private names,
    the getters run in a copy of the context instead."""
    import sentry_sdk.scope

    isolation_var = getattr(sentry_sdk.scope, "_isolation_scope", None)
    current_var = getattr(sentry_sdk.scope, "_current_scope", None)
    if isinstance(isolation_var, contextvars.ContextVar) and isinstance(
        current_var, contextvars.ContextVar
    ):
        return isolation_var.get(None), current_var.get(None)

    def made() -> tuple[Scope | None, Scope | None]:
        return sentry_sdk.get_isolation_scope(), sentry_sdk.get_current_scope()

    return contextvars.copy_context().run(made)


def flush(timeout: float = 2.0) -> bool:
    """Build every error noted so far in this process and send the events, waiting at
    most *timeout* seconds in all.

    ``sentry_sdk.flush()`` alone waits only for events already built: call this one
    where you used to call that (tests, short-lived scripts, before a serverless
    function returns). Interpreter exit does the same by itself.

    :param timeout: the longest wait, in seconds.
    :return: whether every noted error was built and handed to sentry-sdk in time.

    .. versionadded:: 0.2.0
    """
    deadline = time.monotonic() + timeout
    drained = drain(timeout)
    try:
        import sentry_sdk
    except ImportError:
        return drained
    sentry_sdk.flush(timeout=max(0.0, deadline - time.monotonic()))
    return drained


# --- set-up (init_app) ----------------------------------------------------------------


@dataclasses.dataclass(eq=False)
class SentryState:
    """The capture part of one app's state (``get_state(app).part(SentryState)``).

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
    #: Build each event in the request thread, as 0.1 did, instead of on the capture
    #: worker. Not a setting: for benchmarks and tests comparing the two.
    #:
    #: .. versionadded:: 0.2.0
    synchronous: bool = False


def check(config: ObserveConfig) -> None:
    """Refuse a configuration :func:`install` could not apply, before anything is
    registered on the app.

    :raises flask_observe.ConfigError: ``OBSERVE_SENTRY_DSN`` is not a valid DSN or
        sentry-sdk is not installed.
    """
    if config.sentry_dsn is not None:
        # In a copy of this context: the first import of sentry-sdk (see init_sentry).
        reason = contextvars.copy_context().run(validate_dsn, config.sentry_dsn)
        if reason is not None:
            raise ConfigError("OBSERVE_SENTRY_DSN", reason)


def may_capture(config: ObserveConfig) -> bool:
    """Whether errors of an app with *config* can be captured: a DSN is configured, or
    sentry-sdk is already initialised when ``init_app`` runs."""
    if config.sentry_dsn is not None:
        return True
    sentry_sdk = sys.modules.get("sentry_sdk")  # an SDK never imported is not active
    return sentry_sdk is not None and bool(sentry_sdk.get_client().is_active())


def install(app: Flask, state: ObserveState) -> None:
    """Set up capture for *app* (called by ``init_app``, after :func:`check`).

    Initialises sentry-sdk when ``OBSERVE_SENTRY_DSN`` is set (or puts the scrubber in
    front of a client the app set up) and connects the one ``got_request_exception``
    receiver, which notes the unhandled exception for metrics and captures it. The
    signal is sent only for unhandled errors: nothing here runs on the success path.
    """
    config = state.config
    rate = config.sentry_error_rate
    scrubber = Scrubber(config.scrub_keys)
    state.add_part(scrubber)  # the app's scrubber, for before_send (scrub.py)
    state.add_part(
        SentryState(
            capture_statuses=config.sentry_capture_statuses,
            scrubber=scrubber,
            throttle=ErrorThrottle(*rate) if rate is not None else None,
        )
    )
    try:
        # In a copy of this context: see init_sentry.
        contextvars.copy_context().run(setup_from_config, config.sentry_dsn)
    except Exception:
        warn_limited("sentry-init", "Flask-Observe could not set up sentry-sdk", exc_info=True)
    got_request_exception.connect(on_unhandled, app, weak=False)


# --- the error path -------------------------------------------------------------------


def on_unhandled(sender: Flask, exception: BaseException, **extra: object) -> None:
    """``got_request_exception`` receiver: note and capture the unhandled exception.

    Flask sends the signal only for exceptions no handler took, after logging them and
    before ``PROPAGATE_EXCEPTIONS`` re-raises them, so errors are captured in debug and
    testing mode too. The exception goes on the request record (the metrics'
    exception counter) and in the environ (the error handler recognises Flask's
    ``InternalServerError`` wrapper by it). With sentry-sdk's ``FlaskIntegration``
    active, capturing is left to it (its receiver sees the same signal); the error
    handler reads its event id. Never raises.
    """
    try:
        request.environ[UNHANDLED_KEY] = exception
        record = current_record()
        if record is not None and record.exception is None:
            record.exception = exception
        client = active_client()
        if client is None or flask_integration_active(client):
            return
        event_id = capture(exception, handled=False)
        if event_id is not None:
            request.environ[EVENT_ID_KEY] = event_id
            if record is not None:
                record.event_id = event_id
    except Exception:
        warn_limited("sentry-capture", "Flask-Observe could not capture an error", exc_info=True)


def unhandled_event_id() -> str | None:
    """The event id of this request's unhandled error: ours, or the one sentry-sdk's
    own ``FlaskIntegration`` captured. Never raises."""
    event_id = request.environ.get(EVENT_ID_KEY)
    if isinstance(event_id, str):
        return event_id
    try:
        client = active_client()
        if client is not None and flask_integration_active(client):
            return last_event_id()
    except Exception:
        warn_limited("sentry-event-id", "Flask-Observe could not read the event id")
    return None


def capture_http_error(exception: BaseException, status: int) -> str | None:
    """Capture an HTTP error answered with *status* (``abort(5xx)``, a 5xx
    ``APIError`` or mapped class) when ``OBSERVE_SENTRY_CAPTURE_STATUSES`` lists it.

    :return: the event id, or ``None`` when not captured. Never raises.
    """
    sentry = _sentry_state()
    if sentry is None or status not in sentry.capture_statuses:
        return None
    event_id = capture(exception, handled=True)
    if event_id is not None:
        request.environ[EVENT_ID_KEY] = event_id
    return event_id


def capture(exception: BaseException, *, handled: bool) -> str | None:
    """Capture *exception* with the current request's data; the event id or ``None``.

    In the request thread: the throttle check, the request data (scrubbed), tags and
    scopes, and the event id; the event is built and sent by the capture worker
    (:mod:`flask_observe.sentry_worker`) with that id. Returns ``None``, and captures
    nothing, when sentry-sdk is missing or not initialised, or when the throttle
    (``OBSERVE_SENTRY_ERROR_RATE``) suppresses this repeat. Never raises.

    :param exception: the exception to report.
    :param handled: ``False`` for unhandled exceptions, ``True`` for ``abort(5xx)``.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
        The event is built off the request thread; repeats may be suppressed.
    """
    try:
        client = active_client()
        if client is None:
            return None
        _ensure_duplicate_filter()
        req = t.cast("Request", request._get_current_object())  # type: ignore[attr-defined]
        req.environ[CAPTURED_KEY] = exception
        sentry = _sentry_state()
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
        data = request_data(scrubber, req)
        # Forks: what the app set in its scopes so far goes with the event, and nothing
        # it sets later in the request.
        isolation, current = thread_scopes()
        scopes = (
            isolation.fork() if isolation is not None else None,
            current.fork() if current is not None else None,
        )
        if (sentry is not None and sentry.synchronous) or client.options.get("add_full_stack"):
            event_id = capture_event(
                exception,
                handled=handled,
                request_data=data,
                transaction=endpoint,
                tags=tags,
                suppressed=suppressed,
                scopes=scopes,
            )
        else:
            event_id = uuid.uuid4().hex
            submit(
                PendingEvent(
                    exc_info=(type(exception), exception, tb),
                    handled=handled,
                    event_id=event_id,
                    request_data=data,
                    transaction=endpoint,
                    tags=tags,
                    suppressed=suppressed,
                    client=client,
                    isolation_scope=scopes[0],
                    current_scope=scopes[1],
                    scrubber=scrubber,
                    head_locals=head_locals(tb),
                )
            )
        if event_id is not None:
            _answer_last_event_id(req.environ, isolation, event_id)
        return event_id
    except Exception:
        warn_limited("sentry-capture", "Flask-Observe could not capture an error", exc_info=True)
        return None


def _answer_last_event_id(
    environ: dict[str, t.Any], thread_isolation: Scope | None, event_id: str
) -> None:
    """Make ``sentry_sdk.last_event_id()`` answer *event_id* for the rest of the request
    (an app's own 500 page may show it, Sentry's user feedback pattern), as when the
    capture ran in the request.

    A fork of the thread's isolation scope *thread_isolation* (a fresh scope if it has
    none), noting the id, is this request's isolation scope until its response is
    processed, then the thread's own is back, or none if it had none: as with
    sentry-sdk's ``FlaskIntegration``, an id does
    not leak into the next request, and the thread's context does not keep a scope
    only the error path needed. sentry-sdk has no public setter for either; without the
    private names this falls back to noting the id on the thread's isolation scope.
    """
    import sentry_sdk.scope

    if thread_isolation is not None:
        isolation = thread_isolation.fork()
    else:
        isolation = sentry_sdk.scope.Scope(ty=sentry_sdk.scope.ScopeType.ISOLATION)
    if hasattr(isolation, "_last_event_id"):
        isolation._last_event_id = event_id
    variable = getattr(sentry_sdk.scope, "_isolation_scope", None)
    if not isinstance(variable, contextvars.ContextVar):
        thread_scope = sentry_sdk.get_isolation_scope()
        if hasattr(thread_scope, "_last_event_id"):
            thread_scope._last_event_id = event_id
        return
    first = ISOLATION_TOKEN_KEY not in environ
    token = variable.set(isolation)
    if not first:  # the first token restores the thread's scope
        return
    environ[ISOLATION_TOKEN_KEY] = token

    def restore(response: Response) -> Response:
        try:
            variable.reset(environ.pop(ISOLATION_TOKEN_KEY))
        except Exception:
            warn_limited("sentry-scope", "Flask-Observe could not restore the Sentry scope")
        return response

    after_this_request(restore)


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
        if not exc_info or request.environ.get(CAPTURED_KEY) is not exc_info[1]:
            return event
        import sentry_sdk

        if sentry_sdk.get_client().get_integration("dedupe") is None:
            return event
        return None
    except Exception:
        return event


def _sentry_state() -> SentryState | None:
    state = find_state(current_app)
    return state.part(SentryState) if state is not None else None


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
