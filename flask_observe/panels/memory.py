"""The Memory panel for Flask-DebugToolbar (Pympler), in three cost tiers.

1. Always on: RSS before and after the view, GC collections and counts, tracemalloc
   figures when tracing; well under a millisecond, shown with its cost.
2. Switched on from the toolbar (the panel's on/off switch): an object summary diff
   around the view, bounded by ``OBSERVE_MEMORY_BUDGET``; summary rows only.
3. On demand, from the panel's links: full heap summary, ``asizeof`` of the app's
   config, extensions and ``g``, and a class tracker (pages of our blueprint).

List it as ``"flask_observe.panels.memory.MemoryPanel"`` in ``DEBUG_TB_PANELS``, or
let :class:`~flask_observe.Observe` add it.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import functools
import typing as t
from time import perf_counter

from flask import current_app
from flask import url_for

from ..containment import contained
from ..record import current_record
from .access import BLUEPRINT_NAME
from .access import current_page
from .access import panel_config
from .access import skip_request
from .base import BlueprintPanel
from .heap import heap_after
from .heap import heap_before
from .heap import sample
from .heap import Tier1
from .report import MEMORY_KEY
from .report import note_view_time
from .templating import format_bytes
from .templating import render

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from werkzeug import Request


class MemoryPanel(BlueprintPanel):
    """Flask-DebugToolbar panel: process memory and, when switched on, a heap diff.

    .. versionadded:: 0.1.0
    """

    name = "Memory"
    heading = "Memory (Pympler)"
    #: The toolbar shows an on/off switch; "on" runs the heap-diff tier.
    user_activate = True

    tier1: Tier1 | None = None
    tier2: t.Any = None

    def process_view(
        self,
        request: Request,
        view_func: Callable[..., t.Any],
        view_kwargs: dict[str, t.Any],
    ) -> Callable[..., t.Any] | None:
        """Wrap the view to sample memory around it.

        The toolbar calls the wrapper without ``ensure_sync``; the wrapper runs the view
        through ``app.ensure_sync``, so ``async def`` views work with the toolbar on.
        """
        if skip_request():
            return None
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        view = app.ensure_sync(view_func)
        budget = panel_config(app).memory_budget if self.is_active else 0.0
        panel = self

        def call(kwargs: dict[str, t.Any]) -> t.Any:
            __traceback_hide__ = True  # Werkzeug's debugger leaves this frame out
            start = perf_counter()
            try:
                return view(**kwargs)
            finally:
                note_view_time(perf_counter() - start)

        @functools.wraps(view_func)
        def measured(**kwargs: t.Any) -> t.Any:
            # Order: heap summary, RSS sample, view, RSS sample, heap summary, so
            # that tier 1 measures the view and not the heap walks.
            __traceback_hide__ = True  # Werkzeug's debugger leaves this frame out
            heap = before = None
            if budget:
                with contained("memory panel heap summary"):
                    heap = heap_before(budget)
            with contained("memory panel sample"):
                start = perf_counter()
                before = sample()
                cost = perf_counter() - start
            try:
                return call(kwargs)
            finally:
                # Also when the view raised (abort(404), an error): its figures count.
                if before is not None:
                    with contained("memory panel sample"):
                        start = perf_counter()
                        after = sample()
                        panel.tier1 = Tier1(before, after, cost + perf_counter() - start)
                if heap is not None:
                    with contained("memory panel heap summary"):
                        panel.tier2 = heap_after(budget, heap)
                with contained("memory panel record"):
                    record = current_record()
                    if record is not None:
                        if record.extra is None:
                            record.extra = {}
                        record.extra[MEMORY_KEY] = (panel.tier1, panel.tier2)

        return measured

    def nav_subtitle(self) -> str:
        if self.tier1 is None:
            return "view not run"
        return f"\u0394RSS {format_bytes(self.tier1.rss_delta, signed=True)}"

    def render_content(self) -> str:
        back = current_page()  # the tier-3 pages link back to it
        links = {
            "heap": url_for(f"{BLUEPRINT_NAME}.heap", back=back),
            "sizes": url_for(f"{BLUEPRINT_NAME}.sizes", back=back),
            "classes": url_for(f"{BLUEPRINT_NAME}.classes", back=back),
        }
        return render(
            "memory.html",
            tier1=self.tier1,
            tier2=self.tier2,
            active=self.is_active,
            budget=panel_config(current_app).memory_budget,
            links=links,
            standalone=False,
        )
