"""The :class:`Observe` extension: validates the configuration and sets up each feature.

This is the one module that imports the features; they import only what lies below
them (state, record, config), never this module. ``init_app`` runs, in order: the
configuration check, each feature's ``check`` (so a refusal leaves the app as it was),
each feature's ``install`` (which returns its finish hooks), then the request-clock
middleware built from plain settings, those hooks and the metrics' request hook, and
the CLI.

Usage, directly or with an app factory::

    observe = Observe()

    def create_app():
        app = Flask(__name__)
        observe.init_app(app)
        return app

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import typing as t
import weakref

from . import errors
from . import metrics
from . import panels
from . import process_metrics
from . import sentry
from . import sql
from .cli import observe_cli
from .config import ObserveConfig
from .containment import warn_limited
from .state import EXTENSION_KEY
from .state import find_state
from .state import get_state as get_state
from .state import ObserveState as ObserveState
from .timing import ObserveMiddleware

if t.TYPE_CHECKING:
    from flask import Flask

    from .state import FinishHook


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
        #: The apps this object initialised (weakly: it keeps none alive), for
        #: :meth:`register_error` after ``init_app``.
        self._apps: weakref.WeakSet[Flask] = weakref.WeakSet()
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Validate the ``OBSERVE_*`` configuration and register every hook on *app*.

        Runs once per app, at set-up time. Registers a WSGI middleware around
        ``app.wsgi_app`` (the request clock and timing headers) and the hooks of each
        enabled feature. A refused configuration leaves the app untouched.

        :param app: the Flask application.
        :raises RuntimeError: Flask-Observe is already registered on *app*.
        :raises flask_observe.ConfigError: an ``OBSERVE_*`` value is invalid, or the
            debug toolbar is enabled outside debug mode without ``DEBUG_TB_HOSTS``.
        """
        if find_state(app) is not None or EXTENSION_KEY in app.extensions:
            raise RuntimeError(
                f"Flask-Observe is already registered on the app {app.name!r}. Call "
                "init_app() once per app; create a new app for a new configuration."
            )
        config = ObserveConfig.from_mapping(app.config)
        sentry.check(config)
        with_panels = panels.check(app, config)
        with_process = process_metrics.check(config)

        state = ObserveState(extension=self, config=config)
        app.extensions[EXTENSION_KEY] = state
        finish: list[FinishHook] = []
        sink = metrics.install(app, state)
        capture = sentry.install(app, state)
        errors.install(app, state, capture, capturing=sentry.may_capture(config))
        if with_panels:
            finish += panels.install(app, state)
        sql_check = sql.install(state, detail=with_panels)

        middleware = ObserveMiddleware(
            app.wsgi_app,
            runtime_header=config.runtime_header,
            server_timing=config.server_timing,
            exclude_paths=config.exclude_paths,
            finish_hooks=finish,
            sink=sink,
            startup_checks=(panels.startup_check(app), *([sql_check] if sql_check else [])),
        )
        state.middleware = middleware
        # The request path's bound method, not the instance: a call through __call__
        # costs more.
        app.wsgi_app = middleware.entry  # type: ignore[method-assign,assignment]
        if with_process:
            process_metrics.install(app, state)
        if observe_cli.name not in app.cli.commands:
            app.cli.add_command(observe_cli)
        self._apps.add(app)

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
        for app in list(self._apps):
            try:
                errors.register_mapped(app, exception)
            except AssertionError:
                warn_limited(
                    f"register_error:{app.name}",
                    "Flask-Observe: register_error(%s) came after the app %r served its "
                    "first request; call it at set-up time.",
                    exception.__name__,
                    app.name,
                )
