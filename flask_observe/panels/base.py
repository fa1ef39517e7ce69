"""The base of our Flask-DebugToolbar panels: their pages come from our own blueprint,
and a failure of a panel shows a note instead of breaking the page.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import typing as t

from flask_debugtoolbar.panels import DebugPanel

from ..containment import contained
from ..containment import warn_limited
from .report import note_toolbar_start
from .templating import FAILED
from .views import register_routes

if t.TYPE_CHECKING:
    from flask import Flask
    from werkzeug import Request
    from werkzeug import Response


class BlueprintPanel(DebugPanel):
    """A panel whose pages and static files are served by Flask-Observe's blueprint,
    registered per app (never routes added to the toolbar's module-level blueprint).

    Subclasses set :attr:`name` and :attr:`heading` and implement
    :meth:`render_content`; the toolbar's rendering methods are here.
    """

    has_content = True
    #: The title of the open panel.
    heading = ""

    @classmethod
    def init_app(cls, app: Flask) -> None:
        """Register our blueprint on *app* (called by the toolbar's ``init_app``).

        :raises flask_observe.ConfigError: the toolbar is enabled outside debug mode
            without ``DEBUG_TB_HOSTS``.
        """
        register_routes(app)

    def process_response(self, request: Request, response: Response) -> None:
        """The toolbar is injecting itself into this HTML page: note when its work
        began, for the timeline (the first of our panels to hear it wins)."""
        with contained("toolbar start"):
            note_toolbar_start()

    def nav_title(self) -> str:
        return str(self.name)

    def title(self) -> str:
        return self.heading or str(self.name)

    def url(self) -> str:
        return ""

    def warn_failed(self) -> None:
        """Log (rate-limited) that this panel failed; call from an ``except`` block."""
        warn_limited(
            f"panel:{self.name}", "Flask-Observe: the %s panel failed", self.name, exc_info=True
        )

    def content(self) -> str:
        """The panel's HTML; a failure shows a note instead of breaking the page."""
        try:
            return self.render_content()
        except Exception:
            self.warn_failed()
            return FAILED

    def render_content(self) -> str:
        """The panel's HTML (may raise: :meth:`content` contains it)."""
        raise NotImplementedError
