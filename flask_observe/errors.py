"""JSON errors and Sentry capture (built by the Errors issue)."""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from flask import Flask

    from .extension import ObserveState


def init_errors(app: Flask, state: ObserveState) -> None:
    """Set up error handling for *app*. Placeholder until the Errors issue lands."""
