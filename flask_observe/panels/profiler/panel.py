"""The Profiler panel for Flask-DebugToolbar: a sampling, wall-clock profile of the
view, off until switched on from the toolbar.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
import typing as t

from flask import current_app

from ...containment import contained
from ...record import current_record
from ..access import skip_request
from ..base import BlueprintPanel
from ..report import PROFILE_KEY
from ..templating import format_ms
from ..templating import render
from .report import RequestProfile
from .sampler import Collector
from .sampler import default_sampler

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Coroutine

    from werkzeug import Request


def follow_coroutine(
    view_func: Callable[..., Coroutine[t.Any, t.Any, t.Any]], collector: Collector
) -> Callable[..., Coroutine[t.Any, t.Any, t.Any]]:
    """Wrap an ``async def`` view so that *collector* follows its coroutine in the
    thread that runs it (asgiref runs it on an event loop in a thread of its own)."""

    @functools.wraps(view_func)
    async def followed(**kwargs: t.Any) -> t.Any:
        __traceback_hide__ = True  # Werkzeug's debugger leaves this frame out
        coroutine = view_func(**kwargs)
        collector.attach_coroutine(coroutine, threading.get_ident())
        try:
            return await coroutine
        finally:
            collector.detach_coroutine()

    return followed


class ProfilerPanel(BlueprintPanel):
    """Flask-DebugToolbar panel: a sampling profile of the view as a flame graph.

    Switched on with its toggle in the toolbar, it samples the view's stack every
    millisecond from a separate thread (:mod:`~flask_observe.panels.profiler.sampler`),
    so overlapping requests are each profiled, and shows an icicle graph, the hottest
    functions and a speedscope download. List it before panels that wrap the view
    (Observe does) so ``async def`` views are followed across their awaits.

    .. versionadded:: 0.3.0
    """

    name = "Sampling Profiler"
    heading = "Profiler (sampling, wall clock)"
    #: The toolbar shows an on/off switch; off by default.
    user_activate = True

    profile: RequestProfile | None = None

    def process_view(
        self,
        request: Request,
        view_func: Callable[..., t.Any],
        view_kwargs: dict[str, t.Any],
    ) -> Callable[..., t.Any] | None:
        """When switched on, wrap the view to sample it; ``async def`` views run
        through ``app.ensure_sync`` either way."""
        is_async = inspect.iscoroutinefunction(view_func)
        if not self.is_active or skip_request():
            return current_app.ensure_sync(view_func) if is_async else None
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        sampler = default_sampler()
        label = f"{request.method} {request.path}"
        panel = self

        @functools.wraps(view_func)
        def profiled(**kwargs: t.Any) -> t.Any:
            __traceback_hide__ = True  # Werkzeug's debugger leaves this frame out
            collector = Collector(threading.get_ident(), sys._getframe())
            try:
                sampler.register(collector)
            except RuntimeError:  # already profiled in this thread (a nested app)
                return app.ensure_sync(view_func)(**kwargs)
            try:
                if is_async:
                    return app.ensure_sync(follow_coroutine(view_func, collector))(**kwargs)
                return view_func(**kwargs)
            finally:
                sampler.unregister(collector)
                with contained("profiler panel"):
                    result = RequestProfile(label, collector.finish(), sampler.interval)
                    panel.profile = result
                    record = current_record()
                    if record is not None:
                        if record.extra is None:
                            record.extra = {}
                        record.extra[PROFILE_KEY] = result

        return profiled

    def nav_subtitle(self) -> str:
        if not self.is_active:
            return "off"
        if self.profile is None:
            return "view not run"
        return f"{format_ms(self.profile.profile.sampled)}, {self.profile.profile.samples} samples"

    def render_content(self) -> str:
        return render(
            "profiler.html", profile=self.profile, active=self.is_active, standalone=False
        )
