"""The panels' side of Flask-DebugToolbar: per-app panel state, the security checks and
who may see the panels. Imports neither Flask-DebugToolbar nor Pympler.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import collections
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

if t.TYPE_CHECKING:
    from flask import Flask

    from .report import Snapshot

#: Name of our blueprint (pages, reports, static files), mounted at ``/_observe``.
BLUEPRINT_NAME = "observe_panels"
#: ``app.extensions`` key of the panel state (one per app, with or without Observe).
PANELS_KEY = "observe_panels"
#: Name of Flask-DebugToolbar's blueprint: registered on an app when the toolbar is
#: enabled there (the toolbar keeps no other trace on the app).
TOOLBAR_BLUEPRINT = "debugtoolbar"


class ReportStore:
    """The last *size* snapshots by id; adding one more evicts the oldest. Thread-safe.

    :param size: how many snapshots to keep (``OBSERVE_REPORT_STORE_SIZE``).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: collections.OrderedDict[str, Snapshot] = collections.OrderedDict()
        self._lock = threading.Lock()

    def add(self, item: Snapshot) -> None:
        """Keep *item* under its id, evicting the oldest beyond :attr:`size`."""
        with self._lock:
            self._items[item.id] = item
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get(self, report_id: str) -> Snapshot | None:
        """The snapshot stored under *report_id*, or ``None`` (unknown or evicted)."""
        with self._lock:
            return self._items.get(report_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


@dataclasses.dataclass(eq=False)
class ToolbarState:
    """What the panels keep for one app (``app.extensions["observe_panels"]``).

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
    return ToolbarState(memory_budget=budget, reports=ReportStore(store_size))


def get_toolbar_state(app: Flask) -> ToolbarState:
    """The panel state of *app*, created on first use: by ``init_app`` from the
    validated configuration, or from the app's config when the panels are used without
    Observe.

    :param app: the Flask application.
    """
    state = app.extensions.get(PANELS_KEY)
    if state is None:
        key = "OBSERVE_MEMORY_BUDGET"
        budget = as_float(key, app.config.get(key, _default(key)), 0.0, 60.0, low_open=True)
        key = "OBSERVE_REPORT_STORE_SIZE"
        size = as_int(key, app.config.get(key, _default(key)), 1, 100_000)
        state = app.extensions[PANELS_KEY] = _new_state(budget, size)
    return t.cast(ToolbarState, state)


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
    """Refuse an enabled toolbar outside debug mode without ``DEBUG_TB_HOSTS``.

    Run by ``init_app`` (the toolbar initialised first, or our panels asked for),
    before the first request (the toolbar initialised after Observe), and when the
    panels register their routes.

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
