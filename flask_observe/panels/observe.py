"""The Observe panel for Flask-DebugToolbar: this request as Flask-Observe saw it.

Shows the request clock (total, view, user timers and the ``Server-Timing`` value),
the statsd lines recorded for the request and the error captured with its event id,
plus Flask-Observe's configuration with secrets masked (:mod:`flask_observe.secrets`).

The toolbar renders in ``after_request``, before the timing headers exist: the panel
computes them as of rendering and says so. The exact values sent are in the report
behind ``X-Observe-Report`` for non-HTML responses.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing as t
from time import perf_counter

from flask import current_app
from flask import request as flask_request
from flask import url_for

from ..config import OPTIONS
from ..record import current_record
from ..secrets import app_scrubber
from ..secrets import state_scrubber
from ..state import find_state
from .access import BLUEPRINT_NAME
from .access import skip_request
from .base import BlueprintPanel
from .report import keep_report
from .report import note_view_time
from .report import Snapshot
from .report import snapshot
from .templating import format_config_value
from .templating import format_ms
from .templating import render

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from flask import Flask
    from werkzeug import Request
    from werkzeug import Response


def config_rows(app: Flask) -> list[tuple[str, str]]:
    """Flask-Observe's configuration of *app* as ``(key, shown value)``, masked.

    :param app: the Flask application.
    """
    scrubber = app_scrubber(app)
    rows = []
    for option in OPTIONS:
        value = app.config.get(option.key, option.default)
        rows.append((option.key, format_config_value(scrubber, option.key, value)))
    return rows


class ObservePanel(BlueprintPanel):
    """Flask-DebugToolbar panel: clock, timers, ``Server-Timing``, metrics and error.

    .. versionadded:: 0.1.0
    """

    name = "Observe"
    heading = "Flask-Observe"

    status: int = 0
    data: Snapshot | None = None

    def process_view(
        self,
        request: Request,
        view_func: Callable[..., t.Any],
        view_kwargs: dict[str, t.Any],
    ) -> Callable[..., t.Any] | None:
        """Time the view; run ``async def`` views through ``app.ensure_sync``."""
        if skip_request() or current_record() is None:
            if inspect.iscoroutinefunction(view_func):
                return current_app.ensure_sync(view_func)
            return None
        view = current_app.ensure_sync(view_func)

        @functools.wraps(view_func)
        def timed_view(**kwargs: t.Any) -> t.Any:
            __traceback_hide__ = True  # Werkzeug's debugger leaves this frame out
            start = perf_counter()
            try:
                return view(**kwargs)
            finally:
                note_view_time(perf_counter() - start)

        return timed_view

    def process_response(self, request: Request, response: Response) -> None:
        super().process_response(request, response)
        self.status = response.status_code

    def _snapshot(self) -> Snapshot | None:
        if self.data is None:
            record = current_record()
            state = find_state(current_app)
            if record is None or state is None:
                return None
            report_id = keep_report(record, flask_request.path)
            data = snapshot(
                record,
                path=flask_request.path,
                final=False,
                scrubber=state_scrubber(state),
                server_timing=state.config.server_timing,
                report_id=report_id,
            )
            self.data = dataclasses.replace(data, status=self.status)
        return self.data

    def nav_subtitle(self) -> str:
        try:
            data = self._snapshot()
        except Exception:
            self.warn_failed()
            return "failed"
        if data is None:
            return "not observed"
        if data.toolbar_seconds is not None:  # the toolbar's own rendering left out
            return f"app {format_ms(data.app_total)}"
        return format_ms(data.total)

    def render_content(self) -> str:
        data = self._snapshot()
        report_url = None
        if data is not None and data.id:
            report_url = url_for(f"{BLUEPRINT_NAME}.report", report_id=data.id)
        return render(
            "observe.html",
            data=data,
            report_url=report_url,
            config=config_rows(current_app),
            initialised=find_state(current_app) is not None,
            standalone=False,
        )
