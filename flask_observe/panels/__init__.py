"""Flask-DebugToolbar panels (built by the Toolbar panels issue)."""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from flask import Flask

    from ..extension import ObserveState


def init_toolbar(app: Flask, state: ObserveState) -> None:
    """Add the panels to the toolbar of *app*. Placeholder until the Toolbar issue lands."""
