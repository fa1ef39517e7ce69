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

import typing as t

from ..config import ConfigError
from ..containment import logger
from ..containment import warn_limited
from ..secrets import state_scrubber
from ..state import find_state
from .access import BLUEPRINT_NAME as BLUEPRINT_NAME
from .access import check_hosts
from .access import toolbar_active
from .access import toolbar_enabled

if t.TYPE_CHECKING:
    from flask import Flask

    from ..config import ObserveConfig
    from ..state import FinishHook
    from ..state import ObserveState

#: Dotted path of the Memory panel, for ``DEBUG_TB_PANELS``.
MEMORY_PANEL = "flask_observe.panels.memory.MemoryPanel"
#: Dotted path of the Observe panel, for ``DEBUG_TB_PANELS``.
OBSERVE_PANEL = "flask_observe.panels.observe.ObservePanel"
#: Dotted path of the sampling Profiler panel, for ``DEBUG_TB_PANELS``.
PROFILER_PANEL = "flask_observe.panels.profiler.ProfilerPanel"
#: Dotted path of the History panel, for ``DEBUG_TB_PANELS``.
HISTORY_PANEL = "flask_observe.panels.history.HistoryPanel"
#: Dotted path of the SQL panel, for ``DEBUG_TB_PANELS``.
SQL_PANEL = "flask_observe.panels.sql.SqlPanel"

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


def check(app: Flask, config: ObserveConfig) -> bool:
    """Whether the panels go on *app*; refuses a configuration that cannot work, or
    that would show the toolbar to anyone, before anything is registered (``init_app``
    calls it first, then :func:`install`).

    :param app: the Flask application.
    :param config: its validated Flask-Observe configuration.
    :raises flask_observe.ConfigError: Flask-DebugToolbar is enabled on the app outside
        debug mode without ``DEBUG_TB_HOSTS`` (whether our panels are on or not); or the
        panels were asked for and Flask-DebugToolbar or Pympler is missing.
    """
    if toolbar_active(app):
        check_hosts(app)
    wanted = config.toolbar_panels
    if not (app.debug if wanted is None else wanted):
        return False
    if not toolbar_enabled(app):
        if wanted:  # once per init_app: at start-up
            logger.warning(
                "Flask-Observe: OBSERVE_TOOLBAR_PANELS is True but the debug toolbar is "
                "off on app %r (app.debug is off and DEBUG_TB_ENABLED is not True): "
                "no panel will be shown.",
                app.name,
            )
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


def startup_check(app: Flask) -> t.Callable[[], None]:
    """A check for the first request: refuses to serve while Flask-DebugToolbar,
    initialised after Observe, is enabled outside debug mode without
    ``DEBUG_TB_HOSTS``; warns once when the panels were asked for
    (``OBSERVE_TOOLBAR_PANELS = True``) but the toolbar was never set up on the app.

    :param app: the Flask application.
    """

    def check_toolbar_hosts() -> None:
        if toolbar_active(app):
            check_hosts(app)
            return
        state = find_state(app)
        if state is not None and state.config.toolbar_panels and toolbar_enabled(app):
            logger.warning(
                "Flask-Observe: OBSERVE_TOOLBAR_PANELS is True but Flask-DebugToolbar is "
                "not set up on app %r: no panel, no /_observe page and no "
                "X-Observe-Report header. Call DebugToolbarExtension(app).",
                app.name,
            )

    return check_toolbar_hosts


def add_panels(app: Flask) -> None:
    """Append our panels to ``DEBUG_TB_PANELS`` (keeping the toolbar's own).

    :param app: the Flask application.
    """
    panels = list(app.config.get("DEBUG_TB_PANELS", TOOLBAR_DEFAULT_PANELS))
    for path in (HISTORY_PANEL, SQL_PANEL, PROFILER_PANEL, MEMORY_PANEL, OBSERVE_PANEL):
        if path not in panels:
            panels.append(path)
    app.config["DEBUG_TB_PANELS"] = tuple(panels)


def install(app: Flask, state: ObserveState) -> tuple[FinishHook, ...]:
    """Set up the panels on *app* (after :func:`check` said they go on).

    Adds our panels to ``DEBUG_TB_PANELS``, keeps the app's
    :class:`~flask_observe.panels.report.ReportStore` in its state (the panels' one
    part of it; in the SQLite file of ``OBSERVE_HISTORY_PATH`` when set) and adds the
    hooks keeping every request's report and adding ``X-Observe-Report`` to non-HTML
    responses; they do nothing on an app where Flask-DebugToolbar is not set up
    (:func:`~flask_observe.panels.access.request_allowed`).

    Our blueprint (``/_observe``) goes on only where the toolbar is: registered here
    when the toolbar was initialised first, else by the toolbar's own ``init_app``
    later, which calls each listed panel's ``init_app``. An app that never sets up the
    toolbar gets no ``/_observe`` route.

    :param app: the Flask application.
    :param state: the app's Flask-Observe state.
    :return: the finish hook filling the report store.
    """
    from .report import install_report_hooks
    from .report import ReportStore
    from .sql_report import ExplainStore
    from .views import register_routes

    config = state.config
    reports = None  # this process's memory
    if config.history_path is not None:
        from .sqlite_store import SqliteReports

        reports = SqliteReports(config.history_path, config.report_store_size)
    store = ReportStore(
        config.report_store_size,
        reports,
        min(config.history_size, config.report_store_size),  # every row has its report
    )
    state.add_part(store)
    state.add_part(ExplainStore(config.report_store_size))
    add_panels(app)
    if toolbar_active(app):  # initialised before us: it will not call our panels' init_app
        register_routes(app)
    return (install_report_hooks(app, store, state_scrubber(state), config.server_timing),)
