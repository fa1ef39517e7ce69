"""The History panel for Flask-DebugToolbar: the last requests the toolbar saw (HTML
pages, JSON, fetch/XHR, HTMX, errors, redirects), each linking to its report.

The history is the report store itself (:meth:`ReportStore.recent
<flask_observe.panels.report.ReportStore.recent>`): every request of an allowed client
keeps a report. The panel lists them with their durations as bars, and a small script
served by our blueprint (``history.js``) follows the page's own ``fetch`` and
``XMLHttpRequest`` calls: it reads ``X-Observe-Report`` from their responses and adds
their rows from the JSON API (:mod:`~flask_observe.panels.api`) without a reload.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import datetime
import typing as t

from flask import current_app
from flask import request as flask_request
from flask import url_for

from ..record import current_record
from .access import BLUEPRINT_NAME
from .base import BlueprintPanel
from .report import keep_report
from .report import report_store
from .templating import format_bytes
from .templating import format_ms
from .templating import render

if t.TYPE_CHECKING:
    from werkzeug import Request
    from werkzeug import Response

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
        "at": datetime.datetime.fromtimestamp(item.at, datetime.timezone.utc).isoformat(),
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
        page=url_for(f"{BLUEPRINT_NAME}.history"),
        script=url_for(f"{BLUEPRINT_NAME}.static", filename="history.js"),
        standalone=standalone,
        **context,
    )


class HistoryPanel(BlueprintPanel):
    """Flask-DebugToolbar panel: the last requests, followed live on this page.

    .. versionadded:: 0.3.0
    """

    name = "History"
    heading = "Request history"

    status: int = 0

    def process_response(self, request: Request, response: Response) -> None:
        super().process_response(request, response)
        self.status = response.status_code

    def nav_subtitle(self) -> str:
        store = report_store(current_app)
        if store is None:
            return "Observe is not initialised"
        return f"{min(len(store), store.history_size)} requests"

    def render_content(self) -> str:
        store = report_store(current_app)
        if store is None:
            return render("history.html", missing=True, standalone=False)
        record = current_record()
        current = None
        if record is not None:
            report_id = keep_report(record, flask_request.path)
            current = {
                "method": flask_request.method,
                "path": flask_request.path,
                "status": self.status,
                "report_url": url_for(f"{BLUEPRINT_NAME}.report", report_id=report_id),
            }
        return render_history(store.recent(), standalone=False, current=current)
