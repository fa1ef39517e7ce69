"""The EXPLAIN page of the SQL panel: ``/_observe/sql/explain/<report>/<n>``, behind
our blueprint's gate like every toolbar page (:mod:`~flask_observe.panels.access`).

Re-runs statement *n* of a request only when it is one ``SELECT``, with the
parameters recorded when it ran, on the engine that ran it
(:func:`flask_observe.sql.explain.explain`); anything else is refused with 400.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import typing as t

from flask import abort
from flask import current_app
from flask import Response
from flask import url_for

from ..sql.explain import explain
from ..sql.explain import ExplainRefused
from .access import BLUEPRINT_NAME
from .sql_report import explain_store
from .templating import render

if t.TYPE_CHECKING:
    from flask import Blueprint


def add_routes(bp: Blueprint) -> None:
    """Add the EXPLAIN page to our blueprint (its ``before_request`` gate applies)."""

    @bp.get("/sql/explain/<report_id>/<int:index>")
    def sql_explain(report_id: str, index: int) -> Response:
        """EXPLAIN of statement *index* of a request: a SELECT only, its recorded
        parameters, the engine that ran it."""
        store = explain_store(current_app)
        statement = store.get(report_id, index) if store is not None else None
        if statement is None:
            abort(404)
        engine = statement.engine_ref() if statement.engine_ref is not None else None
        if engine is None:
            abort(404)
        try:
            plan = explain(engine, statement.text, statement.raw_parameters)  # type: ignore[arg-type]
        except ExplainRefused:
            abort(400, "Only a SELECT statement is explained.")
        html = render(
            "sql_explain.html",
            static=url_for(f"{BLUEPRINT_NAME}.static", filename=""),
            text=statement.text,
            parameters=statement.parameters,
            engine=statement.engine,
            plan=plan,
        )
        response = Response(iter([html]), mimetype="text/html")  # streamed: no toolbar
        response.headers["Cache-Control"] = "no-store"
        return response
