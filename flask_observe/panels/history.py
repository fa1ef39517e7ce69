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

import typing as t

from flask import current_app
from flask import request as flask_request
from flask import url_for

from ..record import current_record
from .access import BLUEPRINT_NAME
from .api import render_history
from .base import BlueprintPanel
from .report import keep_report
from .report import report_store
from .templating import render

if t.TYPE_CHECKING:
    from werkzeug import Request
    from werkzeug import Response


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
