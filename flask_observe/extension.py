"""The :class:`Observe` extension: configuration, per-app state and hook registration.

Usage, directly or with an app factory::

    observe = Observe()

    def create_app():
        app = Flask(__name__)
        observe.init_app(app)
        return app

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import dataclasses
import typing as t

from flask import current_app
from flask import got_request_exception

from .config import ObserveConfig
from .record import current_record
from .timing import ObserveMiddleware

if t.TYPE_CHECKING:
    from flask import Flask

    from .errors import ErrorsState
    from .metrics import MetricsState
    from .panels import ToolbarState
    from .record import RequestRecord

#: Key of the per-app state in ``app.extensions``.
EXTENSION_KEY = "observe"

FinishHook = t.Callable[["RequestRecord"], None]


@dataclasses.dataclass(eq=False)
class ObserveState:
    """Everything Flask-Observe keeps for one app, in ``app.extensions["observe"]``.

    .. versionadded:: 0.1.0
    """

    #: The extension object that initialised the app.
    extension: Observe
    #: The validated configuration.
    config: ObserveConfig
    #: Called with the :class:`~flask_observe.record.RequestRecord` when a response
    #: body is closed. Each hook is contained: a failure is logged, never raised.
    finish_hooks: list[FinishHook] = dataclasses.field(default_factory=list)
    #: The WSGI middleware owning the request clock.
    middleware: ObserveMiddleware | None = None
    #: Metrics state (statsd client, recorder), when metrics are set up.
    metrics: MetricsState | None = None
    #: Error-handling state (capture rules, body builder, scrubber).
    errors: ErrorsState | None = None
    #: Toolbar state (report store), when the panels are on.
    toolbar: ToolbarState | None = None

    def add_finish_hook(self, hook: FinishHook) -> None:
        """Call *hook* with each completed record, once the response body is closed.

        Hooks run after the request context is gone, so they read only the record.
        A hook that raises is logged (rate-limited) and the others still run.
        """
        self.finish_hooks.append(hook)
        if self.middleware is not None:
            self.middleware.refresh()


class Observe:
    """Timing headers, metrics, JSON errors and toolbar panels for a Flask app.

    The object keeps no app: everything per app lives in ``app.extensions["observe"]``,
    so one ``Observe`` can serve any number of apps with different configurations.

    :param app: initialise this app right away (same as calling :meth:`init_app`).

    .. versionadded:: 0.1.0
    """

    def __init__(self, app: Flask | None = None) -> None:
        #: Domain exception classes mapped to HTTP statuses by :meth:`register_error`.
        self.error_map: dict[type[BaseException], int] = {}
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Validate the ``OBSERVE_*`` configuration and register every hook on *app*.

        Runs once per app, at set-up time. Registers a WSGI middleware around
        ``app.wsgi_app`` (the request clock and timing headers) and the hooks of each
        enabled feature. A failure here leaves the app untouched.

        :param app: the Flask application.
        :raises RuntimeError: Flask-Observe is already registered on *app*.
        :raises flask_observe.ConfigError: an ``OBSERVE_*`` value is invalid.
        """
        if EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                f"Flask-Observe is already registered on the app {app.name!r}. Call "
                "init_app() once per app; create a new app for a new configuration."
            )
        config = ObserveConfig.from_mapping(app.config)
        state = ObserveState(extension=self, config=config)
        _init_features(app, state)
        got_request_exception.connect(_note_unhandled, app, weak=False)
        state.middleware = ObserveMiddleware(app.wsgi_app, state)
        # The bound method, not the instance: a call through __call__ costs more.
        app.wsgi_app = state.middleware.__call__  # type: ignore[method-assign]
        app.extensions[EXTENSION_KEY] = state

    def register_error(self, exception: type[BaseException], status: int) -> None:
        """Answer *exception* (and its subclasses) with *status* in every app.

        Applies to the apps this object initialises later and to those it already
        initialised, as long as they have not served a request yet (Flask allows no
        new error handler after that). A handler the app registered itself for the
        class wins. The problem ``detail`` is the exception's text for 4xx statuses
        and the generic message for 5xx; 5xx statuses listed in
        ``OBSERVE_SENTRY_CAPTURE_STATUSES`` are captured::

            observe.register_error(DoesNotExist, 404)

        :param exception: a domain exception class, e.g. ``DoesNotExist``.
        :param status: the HTTP status to answer with, 400-599.

        .. versionadded:: 0.1.0
        """
        if not (isinstance(exception, type) and issubclass(exception, Exception)):
            raise TypeError(f"register_error() needs an exception class, got {exception!r}")
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"register_error() needs a status from 400 to 599, got {status!r}")
        self.error_map[exception] = status
        from .errors import on_register_error

        on_register_error(self, exception)


def _note_unhandled(sender: Flask, exception: BaseException, **extra: object) -> None:
    """``got_request_exception`` receiver: keep the unhandled exception on the record.

    Flask sends the signal only for exceptions no handler took, after logging them,
    and before ``PROPAGATE_EXCEPTIONS`` re-raises; it never fires on the success path.
    """
    record = current_record()
    if record is not None and record.exception is None:
        record.exception = exception


def _init_features(app: Flask, state: ObserveState) -> None:
    """Set up each feature; they share the already validated configuration. The checks
    that need more than the configuration run first, so a refusal leaves the app as it
    was."""
    from .errors import check_errors_config
    from .errors import init_errors
    from .metrics import init_metrics
    from .panels import init_toolbar
    from .panels import toolbar_wanted

    check_errors_config(state.config)
    toolbar_wanted(app, state.config)

    init_metrics(app, state)
    init_errors(app, state)
    init_toolbar(app, state)


def get_state(app: Flask | None = None) -> ObserveState:
    """The Flask-Observe state of *app* (default: the current app).

    :raises RuntimeError: outside an app context, or Flask-Observe was not initialised.

    .. versionadded:: 0.1.0
    """
    if app is None:
        try:
            app = current_app._get_current_object()  # type: ignore[attr-defined]
        except RuntimeError:
            raise RuntimeError(
                "Flask-Observe needs an application context here. Use it inside a "
                "request, or push one with 'with app.app_context():'."
            ) from None
    state = app.extensions.get(EXTENSION_KEY)
    if state is None:
        raise RuntimeError(
            f"Flask-Observe is not initialised on the app {app.name!r}. Did you forget "
            "to call Observe.init_app(app)?"
        )
    return t.cast(ObserveState, state)
