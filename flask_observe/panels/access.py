"""Who may see the panels and when they run: whether Flask-DebugToolbar is on, the
``DEBUG_TB_HOSTS`` checks, the requests the panels leave alone, and the validated
configuration they read. Imports neither Flask-DebugToolbar nor Pympler.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import typing as t

from flask import current_app
from flask import request

from ..config import ConfigError
from ..config import ObserveConfig
from ..state import find_state

if t.TYPE_CHECKING:
    from flask import Flask

#: Name of our blueprint (pages, reports, static files), mounted at ``/_observe``.
BLUEPRINT_NAME = "observe_panels"
#: Name of Flask-DebugToolbar's blueprint: registered on an app when the toolbar is
#: enabled there (the toolbar keeps no other trace on the app).
TOOLBAR_BLUEPRINT = "debugtoolbar"


def panel_config(app: Flask) -> ObserveConfig:
    """The validated configuration of *app*: Flask-Observe's, or, for panels listed in
    ``DEBUG_TB_PANELS`` without Observe, validated from ``app.config`` on each call.

    :param app: the Flask application.
    :raises flask_observe.ConfigError: an ``OBSERVE_*`` value is invalid.
    """
    state = find_state(app)
    return state.config if state is not None else ObserveConfig.from_mapping(app.config)


def toolbar_active(app: Flask) -> bool:
    """Whether Flask-DebugToolbar has been initialised and enabled on *app*.

    :param app: the Flask application.
    """
    return TOOLBAR_BLUEPRINT in app.blueprints


def toolbar_enabled(app: Flask) -> bool:
    """Whether Flask-DebugToolbar is (or will be) enabled on *app*.

    :param app: the Flask application.
    """
    return bool(app.config.get("DEBUG_TB_ENABLED", app.debug))


def check_hosts(app: Flask) -> None:
    """Refuse an enabled toolbar outside debug mode without ``DEBUG_TB_HOSTS``, and a
    ``DEBUG_TB_HOSTS`` that is not a list or tuple of address strings (the toolbar tests
    ``remote_addr in hosts``: on a string that is a substring test).

    Run by ``init_app`` (the toolbar initialised first, or our panels asked for),
    before the first request (the toolbar initialised after Observe), and when the
    panels register their routes.

    :param app: the Flask application.
    :raises flask_observe.ConfigError: naming ``DEBUG_TB_HOSTS``.
    """
    hosts = app.config.get("DEBUG_TB_HOSTS")
    if hosts and (
        not isinstance(hosts, (list, tuple)) or not all(isinstance(h, str) for h in hosts)
    ):
        raise ConfigError(
            "DEBUG_TB_HOSTS",
            f"expected a list or tuple of client addresses such as ['127.0.0.1'], got "
            f"{hosts!r} ({type(hosts).__name__}): a string would be matched as a "
            "substring, letting 10.0.0.1 in through '10.0.0.10'.",
        )
    if toolbar_enabled(app) and not app.debug and not hosts:
        raise ConfigError(
            "DEBUG_TB_HOSTS",
            "the debug toolbar is enabled while app.debug is off: list the client "
            "addresses allowed to see it, e.g. DEBUG_TB_HOSTS = ['127.0.0.1'], or "
            "disable it with DEBUG_TB_ENABLED = False. Its panels show the app's "
            "internals to anyone who can reach it.",
        )


def request_allowed() -> bool:
    """Whether the current request may see the toolbar and our pages.

    Flask-DebugToolbar must be set up on the app (:func:`toolbar_active`: an app that
    has it installed but never initialised shows no report), enabled, and the client
    address (``request.remote_addr``, never
    a forwarding header) must be in ``DEBUG_TB_HOSTS``; without that list, only in
    debug mode.
    """
    app = current_app
    if not (toolbar_active(app) and toolbar_enabled(app)):
        return False
    hosts = app.config.get("DEBUG_TB_HOSTS")
    if hosts:  # addresses compared whole: a string (refused at start-up) lets nobody in
        return isinstance(hosts, (list, tuple)) and request.remote_addr in hosts
    return app.debug


def current_page() -> str:
    """The current request's page as a local path (script root, path, query), for the
    ``back`` link of the pages the panels open.

    .. versionadded:: 0.3.0
    """
    page = request.full_path if request.query_string else request.path
    return request.script_root + page


def skip_request() -> bool:
    """Whether the panels leave the current request alone: our own pages and static
    files (the toolbar's, the app's, any blueprint's), which a page pulls in by the
    dozen and which would each pay for the heap diff.
    """
    endpoint = request.endpoint or ""
    return (
        request.blueprint == BLUEPRINT_NAME or endpoint == "static" or endpoint.endswith(".static")
    )
