"""A sampling profiler panel for Flask-DebugToolbar: wall-clock flame graphs of the view
without a trace function or a ``sys.monitoring`` tool id. List it as
``"flask_observe.panels.profiler.ProfilerPanel"`` in ``DEBUG_TB_PANELS``, or let
:class:`~flask_observe.Observe` add it.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

from .panel import ProfilerPanel as ProfilerPanel
