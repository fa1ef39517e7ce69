"""The history's rows, its page and JSON API, for people, scripts and tests.

``GET /_observe/history``
    The history as a page: each request with its duration as a bar, linking to its
    report.
``GET /_observe/api/requests``
    The history as JSON, newest first: ``{"size": N, "requests": [row, ...]}``; each
    row has ``id``, ``at`` (ISO 8601, UTC), ``method``, ``path``, ``endpoint``,
    ``status``, ``duration_ms``, ``view_ms``, ``memory_delta`` (bytes of RSS, or
    ``null``), ``error`` (``{"type", "message"}`` or ``null``), ``event_id``,
    ``report_url`` and ``url`` (the request's JSON).
``GET /_observe/api/requests/<id>``
    One request's whole report as JSON (:func:`flask_observe.panels.codec.dump`), with
    its history row under ``summary``; 404 once evicted.

Gated like every page of our blueprint (404 unless the client may see the toolbar);
never cached; the toolbar never injects itself into them.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import datetime
import json
import typing as t

from flask import abort
from flask import current_app
from flask import request
from flask import Response
from flask import url_for

from .access import BLUEPRINT_NAME
from .access import current_page
from .codec import dump
from .report import report_store
from .templating import format_bytes
from .templating import format_ms
from .templating import local_path
from .templating import render

if t.TYPE_CHECKING:
    from flask import Blueprint

    from .report import ReportStore
    from .report import Snapshot

#: Width of the duration bars, in SVG user units.
BAR_WIDTH = 120.0


def summary(item: Snapshot) -> dict[str, t.Any]:
    """One history row as JSON values: what the panel, the page and
    ``GET /_observe/api/requests`` show of a request.

    :param item: the request's report.
    """
    memory = item.memory.rss_delta if item.memory is not None else None
    toolbar = item.timeline.toolbar_seconds if item.timeline is not None else None
    return {
        "id": item.id,
        "at": datetime.datetime.fromtimestamp(item.at, datetime.UTC).isoformat(
            timespec="microseconds"  # one width: the strings sort as the times do
        ),
        "method": item.method,
        "path": item.path,
        "endpoint": item.endpoint,
        "status": item.status,
        "duration_ms": round(item.total * 1000.0, 3) if item.total is not None else None,
        "view_ms": round(item.view * 1000.0, 3) if item.view is not None else None,
        "toolbar_ms": round(toolbar * 1000.0, 3) if toolbar is not None else None,
        "memory_delta": memory,
        "error": {"type": item.error[0], "message": item.error[1]} if item.error else None,
        "event_id": item.event_id,
        "report_url": url_for(f"{BLUEPRINT_NAME}.report", report_id=item.id),
        "url": url_for(f"{BLUEPRINT_NAME}.api_request", report_id=item.id),
    }


class Row(t.NamedTuple):
    """A history row as the template shows it."""

    data: dict[str, t.Any]
    duration: str
    memory: str
    #: Width of the duration bar.
    bar: float
    #: Width of its part that was the toolbar's own work (drawn in red at its end).
    toolbar_bar: float
    time: str


def rows(items: list[Snapshot]) -> list[Row]:
    """The rows of *items* with their bars scaled to the slowest one.

    :param items: the reports, newest first.
    """
    slowest = max((item.total or 0.0 for item in items), default=0.0)
    out = []
    for item in items:
        data = summary(item)
        share = (item.total or 0.0) / slowest if slowest > 0 else 0.0
        toolbar = (data["toolbar_ms"] or 0.0) / 1000.0 / slowest if slowest > 0 else 0.0
        memory = data["memory_delta"]
        out.append(
            Row(
                data,
                format_ms(item.total),
                format_bytes(memory, signed=True) if memory is not None else "\u2013",
                max(round(share * BAR_WIDTH, 2), 1.0),
                round(min(toolbar, share) * BAR_WIDTH, 2),
                data["at"][11:19],
            )
        )
    return out


def render_history(items: list[Snapshot], *, standalone: bool, **context: object) -> str:
    """The history table (the panel's content and the page's body).

    :param items: the reports, newest first.
    :param standalone: on our own page rather than in the toolbar.
    """
    store = report_store(current_app)
    return render(
        "history.html",
        rows=rows(items),
        bar_width=BAR_WIDTH,
        size=store.history_size if store is not None else 0,
        api=url_for(f"{BLUEPRINT_NAME}.api_requests"),
        # From the toolbar, the page remembers the way back to the page it was opened on.
        page=url_for(f"{BLUEPRINT_NAME}.history", back=None if standalone else current_page()),
        script=url_for(f"{BLUEPRINT_NAME}.static", filename="history.js"),
        standalone=standalone,
        **context,
    )


def _json(data: object) -> Response:
    response = Response(json.dumps(data, indent=1), mimetype="application/json")
    response.headers["Cache-Control"] = "no-store"
    return response


def _store() -> ReportStore:
    store = report_store(current_app)
    if store is None:  # the panels listed by hand, Observe not initialised
        abort(404)
    return store


def add_routes(bp: Blueprint) -> None:
    """Add the history page and the JSON API to our blueprint *bp*.

    :param bp: the blueprint made for one app.
    """

    @bp.get("/history")
    def history() -> Response:
        """The history as a page."""
        html = render_history(
            _store().recent(),
            standalone=True,
            static=url_for(f"{BLUEPRINT_NAME}.static", filename=""),
            back=local_path(request.args.get("back")),
        )
        response = Response(iter([html]), mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        return response

    @bp.get("/api/requests")
    def api_requests() -> Response:
        """The history as JSON, newest first."""
        store = _store()
        return _json(
            {"size": store.history_size, "requests": [summary(item) for item in store.recent()]}
        )

    @bp.get("/api/requests/<report_id>")
    def api_request(report_id: str) -> Response:
        """One request's whole report as JSON."""
        item = _store().get(report_id)
        if item is None:
            abort(404)
        return _json({**dump(item), "summary": summary(item)})
