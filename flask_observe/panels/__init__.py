"""Flask-DebugToolbar panels: Memory (Pympler) and Observe (this request's clock,
metrics and error), with their own blueprint, templates and static files.

Nothing here runs unless the panels are on (``OBSERVE_TOOLBAR_PANELS``, ``None`` meaning
``app.debug``) and the toolbar is enabled; importing this package imports neither
Flask-DebugToolbar nor Pympler. Usage::

    app.config["DEBUG_TB_ENABLED"] = True  # the toolbar's default is app.debug
    Observe(app)                 # adds both panels to DEBUG_TB_PANELS
    DebugToolbarExtension(app)   # either order works

or list :data:`MEMORY_PANEL` / :data:`OBSERVE_PANEL` in ``DEBUG_TB_PANELS`` yourself.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import typing as t

from flask import current_app
from flask import request

from ..config import as_float
from ..config import as_int
from ..config import ConfigError
from ..config import OPTIONS
from ..containment import warn_limited

if t.TYPE_CHECKING:
    from flask import Flask

    from ..config import ObserveConfig
    from ..extension import ObserveState
    from .report import ReportStore

#: Dotted path of the Memory panel, for ``DEBUG_TB_PANELS``.
MEMORY_PANEL = "flask_observe.panels.memory.MemoryPanel"
#: Dotted path of the Observe panel, for ``DEBUG_TB_PANELS``.
OBSERVE_PANEL = "flask_observe.panels.observe.ObservePanel"
#: Name of our blueprint (pages, reports, static files), mounted at ``/_observe``.
BLUEPRINT_NAME = "observe_panels"
#: ``app.extensions`` key of the panel state when the panels are used without Observe.
PANELS_KEY = "observe_panels"

#: Flask-DebugToolbar 0.16's default ``DEBUG_TB_PANELS``, used when the toolbar has not
#: set its defaults yet (our panels are appended to them).
TOOLBAR_DEFAULT_PANELS = (
    "flask_debugtoolbar.panels.versions.VersionDebugPanel",
    "flask_debugtoolbar.panels.timer.TimerDebugPanel",
    "flask_debugtoolbar.panels.headers.HeaderDebugPanel",
    "flask_debugtoolbar.panels.request_vars.RequestVarsDebugPanel",
    "flask_debugtoolbar.panels.config_vars.ConfigVarsDebugPanel",
    "flask_debugtoolbar.panels.template.TemplateDebugPanel",
    "flask_debugtoolbar.panels.sqlalchemy.SQLAlchemyDebugPanel",
    "flask_debugtoolbar.panels.logger.LoggingPanel",
    "flask_debugtoolbar.panels.route_list.RouteListDebugPanel",
    "flask_debugtoolbar.panels.profiler.ProfilerDebugPanel",
    "flask_debugtoolbar.panels.g.GDebugPanel",
)


@dataclasses.dataclass(eq=False)
class ToolbarState:
    """What the panels keep for one app (``app.extensions["observe"].toolbar``).

    :param memory_budget: seconds the heap-diff tier may take per request.
    :param reports: recent requests for ``X-Observe-Report``.
    """

    memory_budget: float
    reports: ReportStore
    #: The Pympler ``ClassTracker`` of the class-tracker page, once started.
    tracker: t.Any = None
    #: Names of the classes the tracker follows.
    tracked: list[str] = dataclasses.field(default_factory=list)
    #: Guards :attr:`tracker` (pages may be served by several threads).
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    #: Token the class-tracker form must send back (no cross-site posts).
    form_token: str = dataclasses.field(default_factory=lambda: secrets.token_urlsafe(16))


def _default(key: str) -> object:
    return next(option.default for option in OPTIONS if option.key == key)


def _new_state(budget: float, store_size: int) -> ToolbarState:
    from .report import ReportStore

    return ToolbarState(memory_budget=budget, reports=ReportStore(store_size))


def get_toolbar_state(app: Flask) -> ToolbarState:
    """The panel state of *app*, created (from its config) on first use.

    :param app: the Flask application.
    """
    observe = app.extensions.get("observe")
    if observe is not None and observe.toolbar is not None:
        return t.cast(ToolbarState, observe.toolbar)
    state = app.extensions.get(PANELS_KEY)
    if state is None:
        key = "OBSERVE_MEMORY_BUDGET"
        budget = as_float(key, app.config.get(key, _default(key)), 0.0, 60.0, low_open=True)
        key = "OBSERVE_REPORT_STORE_SIZE"
        size = as_int(key, app.config.get(key, _default(key)), 1, 100_000)
        state = app.extensions[PANELS_KEY] = _new_state(budget, size)
    return t.cast(ToolbarState, state)


def toolbar_enabled(app: Flask) -> bool:
    """Whether Flask-DebugToolbar is (or will be) enabled on *app*.

    :param app: the Flask application.
    """
    return bool(app.config.get("DEBUG_TB_ENABLED", app.debug))


def toolbar_wanted(app: Flask, config: ObserveConfig) -> bool:
    """Whether the panels go on *app*; refuses a configuration that cannot work before
    anything is registered (``init_app`` calls it first, then :func:`init_toolbar`).

    :param app: the Flask application.
    :param config: its validated Flask-Observe configuration.
    :raises flask_observe.ConfigError: the panels were asked for and Flask-DebugToolbar
        or Pympler is missing, or the toolbar is enabled outside debug mode without
        ``DEBUG_TB_HOSTS``.
    """
    wanted = config.toolbar_panels
    if not (app.debug if wanted is None else wanted) or not toolbar_enabled(app):
        return False
    try:
        import flask_debugtoolbar  # noqa: F401
        import pympler  # noqa: F401
    except ImportError as exc:
        if wanted is None:
            warn_limited(
                "toolbar-import",
                "Flask-Observe: toolbar panels are off, %s is not installed "
                "(pip install 'Flask-Observe[toolbar]').",
                exc.name,
            )
            return False
        raise ConfigError(
            "OBSERVE_TOOLBAR_PANELS",
            f"the panels need Flask-DebugToolbar and Pympler, but {exc.name!r} is not "
            "installed: pip install 'Flask-Observe[toolbar]'",
        ) from exc
    check_hosts(app)
    return True


def check_hosts(app: Flask) -> None:
    """Refuse an enabled toolbar outside debug mode without ``DEBUG_TB_HOSTS``.

    :param app: the Flask application.
    :raises flask_observe.ConfigError: naming ``DEBUG_TB_HOSTS``.
    """
    if toolbar_enabled(app) and not app.debug and not app.config.get("DEBUG_TB_HOSTS"):
        raise ConfigError(
            "DEBUG_TB_HOSTS",
            "the debug toolbar is enabled while app.debug is off: list the client "
            "addresses allowed to see it, e.g. DEBUG_TB_HOSTS = ['127.0.0.1'], or "
            "disable it with DEBUG_TB_ENABLED = False. Its panels show the app's "
            "internals to anyone who can reach it.",
        )


def request_allowed() -> bool:
    """Whether the current request may see the toolbar and our pages.

    The toolbar must be enabled and the client address (``request.remote_addr``, never
    a forwarding header) must be in ``DEBUG_TB_HOSTS``; without that list, only in
    debug mode.
    """
    app = current_app
    if not toolbar_enabled(app):
        return False
    hosts = app.config.get("DEBUG_TB_HOSTS")
    if hosts:
        return request.remote_addr in hosts
    return app.debug


def skip_request() -> bool:
    """Whether the panels leave the current request alone: our own pages and static
    files (the toolbar's, the app's, any blueprint's), which a page pulls in by the
    dozen and which would each pay for the heap diff.
    """
    endpoint = request.endpoint or ""
    return (
        request.blueprint == BLUEPRINT_NAME or endpoint == "static" or endpoint.endswith(".static")
    )


def register_routes(app: Flask) -> None:
    """Register our blueprint on *app* once (pages, reports, static files).

    Called from each panel's ``init_app`` and from :func:`init_toolbar`; the second
    call does nothing.

    :param app: the Flask application.
    """
    if BLUEPRINT_NAME in app.blueprints:
        return
    check_hosts(app)
    from .views import make_blueprint

    app.register_blueprint(make_blueprint(get_toolbar_state(app)))


def add_panels(app: Flask) -> None:
    """Append both panels to ``DEBUG_TB_PANELS`` (keeping the toolbar's own).

    :param app: the Flask application.
    """
    panels = list(app.config.get("DEBUG_TB_PANELS", TOOLBAR_DEFAULT_PANELS))
    for path in (MEMORY_PANEL, OBSERVE_PANEL):
        if path not in panels:
            panels.append(path)
    app.config["DEBUG_TB_PANELS"] = tuple(panels)


def init_toolbar(app: Flask, state: ObserveState) -> None:
    """Set up the panels on *app* when ``OBSERVE_TOOLBAR_PANELS`` (or ``app.debug``)
    says so and the toolbar is enabled; otherwise register nothing at all.

    Adds both panels to ``DEBUG_TB_PANELS``, registers our blueprint, an
    ``after_request`` hook adding ``X-Observe-Report`` to non-HTML responses and a
    finish hook filling the report store.

    :param app: the Flask application.
    :param state: the app's Flask-Observe state (``state.toolbar`` is set here).
    :raises flask_observe.ConfigError: the panels were asked for and Flask-DebugToolbar
        or Pympler is missing, or the toolbar is enabled outside debug mode without
        ``DEBUG_TB_HOSTS``.
    """
    if not toolbar_wanted(app, state.config):
        return
    existing = app.extensions.get(PANELS_KEY)
    state.toolbar = existing or _new_state(
        state.config.memory_budget, state.config.report_store_size
    )
    add_panels(app)
    if BLUEPRINT_NAME not in app.blueprints:
        from .views import make_blueprint

        app.register_blueprint(make_blueprint(state.toolbar))
    from .report import install_report_hooks

    install_report_hooks(app, state)
