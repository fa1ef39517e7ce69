"""The history's page and JSON API, for people, scripts and tests.

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

import json
import typing as t

from flask import abort
from flask import current_app
from flask import Response
from flask import url_for

from .access import BLUEPRINT_NAME
from .codec import dump
from .history import render_history
from .history import summary
from .report import report_store

if t.TYPE_CHECKING:
    from flask import Blueprint

    from .report import ReportStore


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
