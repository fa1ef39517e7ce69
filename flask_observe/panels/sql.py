"""The SQL panel for Flask-DebugToolbar: the statements of this request, grouped.

Statements are grouped by their normalised text (literals and parameters collapsed);
a group run ``OBSERVE_SQL_REPEATS`` times or more is flagged (an N+1 pattern, or
duplicates when the parameters repeat too) with its call sites; statements taking
``OBSERVE_SQL_SLOW`` seconds or more are highlighted. The same table is on the report
page of JSON and HTMX requests (``X-Observe-Report``).

EXPLAIN on demand (``/_observe/sql/explain/<report>/<n>``, gated like every page of our
blueprint) re-runs a recorded ``SELECT`` only, with the parameters recorded when it
ran, on the engine that ran it (:mod:`flask_observe.sql.explain`). Those parameters
stay in this process, in the :class:`ExplainStore`: never in a report, never shown.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

from flask import current_app
from flask import request as flask_request
from flask import url_for

from ..record import current_record
from ..sql.capture import SqlSettings
from ..state import find_state
from .access import BLUEPRINT_NAME
from .base import BlueprintPanel
from .report import keep_report
from .sql_report import explain_store
from .sql_report import sql_report
from .sql_report import SqlReport
from .templating import render


class SqlPanel(BlueprintPanel):
    """Flask-DebugToolbar panel: this request's SQL statements, grouped, N+1 and slow
    ones flagged, EXPLAIN on demand.

    .. versionadded:: 0.3.0
    """

    name = "SQL"
    heading = "SQL statements"

    def _report(self) -> tuple[SqlReport | None, str]:
        record = current_record()
        if record is None:
            return None, ""
        report_id = keep_report(record, flask_request.path)
        store = explain_store(current_app)
        if store is not None:
            store.keep(report_id, record)
        return sql_report(record), report_id

    def nav_subtitle(self) -> str:
        try:
            report, _ = self._report()
        except Exception:
            self.warn_failed()
            return "failed"
        if report is None:
            return "no statement"
        count = report.count
        words = f"{count} quer{'y' if count == 1 else 'ies'} in {report.seconds * 1000.0:.1f} ms"
        return words + (f", {report.repeated} repeated" if report.repeated else "")

    def render_content(self) -> str:
        report, report_id = self._report()
        observed = (
            find_state(current_app) is not None
            and find_state(current_app).part(SqlSettings) is not None  # type: ignore[union-attr]
        )
        return render(
            "sql.html",
            sql=report,
            observed=observed,
            explain_url=_explain_url(report_id),
        )


def _explain_url(report_id: str) -> str:
    """The EXPLAIN URL of statement 0 of *report_id*, its last part the index."""
    if not report_id:
        return ""
    return url_for(f"{BLUEPRINT_NAME}.sql_explain", report_id=report_id, index=0)[:-1]
