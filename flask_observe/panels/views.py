"""Our blueprint: the Memory panel's on-demand pages, the ``X-Observe-Report`` pages
and static files, mounted at ``/_observe``.

A fresh blueprint is made for each app by :func:`make_blueprint` (never routes added to
the toolbar's module-level blueprint). Every route answers 404 unless the toolbar is
enabled and the client address is allowed (:func:`~flask_observe.panels.access.request_allowed`).
Pages are served as a stream so the toolbar does not inject itself into them.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import dataclasses
import hmac
import re
import sys
import threading
import typing as t
from secrets import token_urlsafe

from flask import abort
from flask import Blueprint
from flask import current_app
from flask import g
from flask import request
from flask import Response
from flask import url_for

from ..secrets import app_scrubber
from .access import BLUEPRINT_NAME
from .access import check_hosts
from .access import panel_config
from .access import request_allowed
from .heap import asizeof_rows
from .heap import pympler_summary
from .report import report_store
from .templating import format_config_value
from .templating import local_path
from .templating import render

if t.TYPE_CHECKING:
    from flask import Flask

#: Classes the tracker follows at most.
MAX_TRACKED = 20

_CLASS_NAME = re.compile(r"^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$")


@dataclasses.dataclass(eq=False)
class ClassTracking:
    """The class-tracker page's state for one app, made with the app's blueprint."""

    #: The Pympler ``ClassTracker``, once started.
    tracker: t.Any = None
    #: Names of the classes the tracker follows.
    tracked: list[str] = dataclasses.field(default_factory=list)
    #: Guards :attr:`tracker` (pages may be served by several threads).
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    #: Token the form must send back (no cross-site posts).
    form_token: str = dataclasses.field(default_factory=lambda: token_urlsafe(16))


def _page(template: str, *, back: str | None = None, **context: object) -> Response:
    """An HTML page of ours, streamed so the toolbar leaves it alone, never cached.

    Its top links back to the page it was opened from (the ``back`` query argument,
    a local path only, else *back*) and to the request history.
    """
    html = render(
        template,
        static=url_for(f"{BLUEPRINT_NAME}.static", filename=""),
        back=local_path(request.args.get("back")) or back,
        history=url_for(f"{BLUEPRINT_NAME}.history"),
        **context,
    )
    response = Response(iter([html]), mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def resolve_class(name: str) -> type | None:
    """The class *name* (``package.module.Class``) from an already imported module.

    Nothing is imported: a name whose module is not loaded yet is not found.

    :param name: dotted path of the class.
    """
    if not _CLASS_NAME.match(name):
        return None
    module_name, _, attr = name.rpartition(".")
    module = sys.modules.get(module_name)
    cls = getattr(module, attr, None) if module is not None else None
    return cls if isinstance(cls, type) else None


def tracker_rows(tracker: t.Any) -> list[tuple[str, int, int, int]]:
    """Snapshot the tracker: ``(class, instances alive, created, bytes alive)``.

    :param tracker: a Pympler ``ClassTracker``.
    """
    tracker.create_snapshot()
    stamp = tracker.snapshots[-1].timestamp
    rows = []
    for name, tracked in sorted(tracker.index.items()):
        alive = [obj for obj in tracked if obj.ref() is not None]
        size = sum(obj.get_size_at_time(stamp) for obj in alive)
        rows.append((name, len(alive), len(tracked), size))
    return rows


def register_routes(app: Flask) -> None:
    """Register our blueprint on *app* once (pages, reports, static files).

    Called from each panel's ``init_app`` and when Observe installs the panels; the
    second call does nothing.

    :param app: the Flask application.
    :raises flask_observe.ConfigError: the toolbar is enabled outside debug mode
        without ``DEBUG_TB_HOSTS``, or an ``OBSERVE_*`` value is invalid.
    """
    if BLUEPRINT_NAME in app.blueprints:
        return
    check_hosts(app)
    panel_config(app)  # a bad value fails here, not at the first page
    app.register_blueprint(make_blueprint())


def make_blueprint() -> Blueprint:
    """A new blueprint with our routes for one app, with its own class tracker."""
    tracking = ClassTracking()
    bp = Blueprint(
        BLUEPRINT_NAME,
        __name__,
        url_prefix="/_observe",
        static_folder="static",
        static_url_path="/static",
    )

    @bp.before_request
    def only_allowed_clients() -> None:
        """Answer 404 unless the toolbar is enabled and the client is allowed."""
        if not request_allowed():
            abort(404)

    @bp.get("/memory/heap")
    def heap() -> Response:
        """Tier 3: Pympler's summary of every live object by type (unbounded: seconds
        on a big heap, as the page says)."""
        rows, objects, seconds = pympler_summary(50)
        return _page("heap.html", rows=rows, objects=objects, seconds=seconds)

    @bp.get("/memory/sizes")
    def sizes() -> Response:
        """Tier 3: ``asizeof`` of the app's config, extensions and ``g``."""
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        objects: dict[str, object] = {
            "app.config": app.config,
            "app.extensions": app.extensions,
            "g (this request)": g._get_current_object(),
        }
        for name, extension in app.extensions.items():
            objects[f"app.extensions[{name!r}]"] = extension
        config = sorted(
            asizeof_rows({key: value for key, value in app.config.items()}),
            key=lambda row: row[1],
            reverse=True,
        )[:25]
        scrubber = app_scrubber(app)
        config_rows = [
            (key, size, format_config_value(scrubber, key, app.config.get(key)))
            for key, size, _ in config
        ]
        return _page("sizes.html", rows=asizeof_rows(objects), config=config_rows)

    @bp.route("/memory/classes", methods=["GET", "POST"])
    def classes() -> Response:
        """Tier 3: Pympler's class tracker for the classes the user names."""
        messages: list[str] = []
        if request.method == "POST":
            token = request.form.get("token", "")
            if not hmac.compare_digest(token, tracking.form_token):
                abort(400)
            names = request.form.get("names", "").replace(",", " ").split()
            with tracking.lock:
                if request.form.get("action") == "stop":
                    if tracking.tracker is not None:
                        tracking.tracker.detach_all()
                    tracking.tracker = None
                    tracking.tracked = []
                    messages.append("The class tracker is stopped.")
                else:
                    messages.extend(_track(tracking, names))
        with tracking.lock:
            rows = tracker_rows(tracking.tracker) if tracking.tracker is not None else []
            tracked = list(tracking.tracked)
        return _page(
            "classes.html",
            rows=rows,
            tracked=tracked,
            messages=messages,
            token=tracking.form_token,
            action=url_for(f"{BLUEPRINT_NAME}.classes", back=local_path(request.args.get("back"))),
        )

    @bp.get("/report/<report_id>")
    def report(report_id: str) -> Response:
        """The panels' data for a request that got an ``X-Observe-Report`` header."""
        store = report_store(current_app)
        item = store.get(report_id) if store is not None else None
        if item is None:
            abort(404)
        page = None  # the page the request was for, when following it repeats nothing
        if item.method in ("GET", "HEAD") and not item.path.startswith("/_observe/"):
            page = local_path(request.script_root + item.path)
        explain_url = url_for(f"{BLUEPRINT_NAME}.sql_explain", report_id=item.id, index=0)[:-1]
        return _page(
            "report.html",
            back=page,
            data=item,
            tier1=item.memory,
            tier2=item.heap,
            standalone=True,
            explain_url=explain_url,
        )

    from .api import add_routes  # the history's page and API (imports the panel base)
    from .sql_explain import add_routes as add_sql_routes

    add_routes(bp)
    add_sql_routes(bp)
    return bp


def _track(tracking: ClassTracking, names: list[str]) -> list[str]:
    """Start tracking *names* (caller holds ``tracking.lock``); messages for the page."""
    from pympler.classtracker import ClassTracker

    messages = []
    for name in names:
        if name in tracking.tracked:
            continue
        if len(tracking.tracked) >= MAX_TRACKED:
            messages.append(f"At most {MAX_TRACKED} classes are tracked; {name} is not.")
            continue
        cls = resolve_class(name)
        if cls is None:
            messages.append(
                f"No class {name} in the loaded modules (give module.Class; nothing is imported)."
            )
            continue
        if tracking.tracker is None:
            tracking.tracker = ClassTracker()
        tracking.tracker.track_class(cls, name=name)
        tracking.tracked.append(name)
        messages.append(f"Tracking new instances of {name}.")
    return messages
