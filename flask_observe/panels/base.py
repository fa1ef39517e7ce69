"""The base of our Flask-DebugToolbar panels: their pages come from our own blueprint.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import typing as t

from flask_debugtoolbar.panels import DebugPanel

from . import register_routes

if t.TYPE_CHECKING:
    from flask import Flask


class BlueprintPanel(DebugPanel):
    """A panel whose pages and static files are served by Flask-Observe's blueprint,
    registered per app (never routes added to the toolbar's module-level blueprint)."""

    @classmethod
    def init_app(cls, app: Flask) -> None:
        """Register our blueprint on *app* (called by the toolbar's ``init_app``).

        :raises flask_observe.ConfigError: the toolbar is enabled outside debug mode
            without ``DEBUG_TB_HOSTS``.
        """
        register_routes(app)
