"""Sentry capture: one event per error, built off the request thread, scrubbed and
rate-limited, with the event id in the response.

Everything here runs at set-up or on the error path only; ``sentry_sdk`` is imported
lazily, so ``import flask_observe`` works without it. The feature's modules, one job
each:

- :mod:`~flask_observe.sentry.setup`: the lean SDK initialisation (:func:`init_sentry`),
  adopting a client the app set up itself, one client per process;
- :mod:`~flask_observe.sentry.capture`: what the request thread notes (:func:`capture`);
- :mod:`~flask_observe.sentry.events`: the one way an event is built and captured;
- :mod:`~flask_observe.sentry.worker`: the bounded queue and the thread building events;
- :mod:`~flask_observe.sentry.throttle`: the per-error rate limit;
- :mod:`~flask_observe.sentry.scopes`: sentry-sdk's scopes seen from the request thread.

``init_app`` calls :func:`check`, then :func:`install`, which hands the JSON errors of
:mod:`flask_observe.errors` their capture callable: they call it from their one
``got_request_exception`` receiver (unhandled errors) and from their error handler
(``abort(5xx)``). :func:`flush` waits for the worker and sentry-sdk's transport.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import contextvars
import importlib.util
import time
import typing as t

from ..config import ConfigError
from ..containment import warn_limited
from ..secrets import state_scrubber
from .capture import AppCapture as AppCapture
from .capture import capture as capture
from .capture import SentryState as SentryState
from .setup import init_sentry as init_sentry
from .setup import is_active
from .setup import setup_from_config
from .setup import validate_dsn
from .throttle import ErrorThrottle as ErrorThrottle
from .throttle import fingerprint as fingerprint
from .worker import drain as drain
from .worker import MAX_PENDING as MAX_PENDING
from .worker import QueueStats as QueueStats
from .worker import stats as stats

if t.TYPE_CHECKING:
    from flask import Flask

    from ..config import ObserveConfig
    from ..state import ObserveState


def flush(timeout: float = 2.0) -> bool:
    """Build every error noted so far in this process and send the events, waiting at
    most *timeout* seconds in all.

    ``sentry_sdk.flush()`` alone waits only for events already built: call this one
    wherever an app would call that (tests, short-lived scripts, before a serverless
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
    """Whether errors of an app with *config* can be captured right away: a DSN is
    configured, or sentry-sdk is already initialised when ``init_app`` runs."""
    return config.sentry_dsn is not None or is_active()


def install(app: Flask, state: ObserveState) -> AppCapture | None:
    """Set up capture for *app* (called by ``init_app``, after :func:`check`).

    Initialises sentry-sdk when ``OBSERVE_SENTRY_DSN`` is set, or puts the scrubber in
    front of a client the app set up. Registers nothing on the app.

    :return: the app's capture callable, for :mod:`flask_observe.errors`; ``None`` when
        sentry-sdk is not installed. A client the app initialises after ``init_app``
        (in gunicorn's ``post_fork`` hook, say) is used too.
    """
    config = state.config
    rate = config.sentry_error_rate
    sentry = SentryState(
        capture_statuses=config.sentry_capture_statuses,
        scrubber=state_scrubber(state),  # the app's one scrubber, also for before_send
        throttle=ErrorThrottle(*rate) if rate is not None else None,
    )
    state.add_part(sentry)
    try:
        # In a copy of this context: see init_sentry.
        contextvars.copy_context().run(setup_from_config, config.sentry_dsn)
    except Exception:
        warn_limited("sentry-init", "Flask-Observe could not set up sentry-sdk", exc_info=True)
    if config.sentry_dsn is None and not _installed():
        return None
    return AppCapture(sentry)


def _installed() -> bool:
    """Whether sentry-sdk can be imported, found without importing it."""
    try:
        return importlib.util.find_spec("sentry_sdk") is not None
    except (ImportError, ValueError):
        return False
