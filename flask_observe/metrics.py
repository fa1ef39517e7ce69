"""statsd metrics per endpoint, method and status (built by the Metrics issue)."""

from __future__ import annotations

import typing as t

if t.TYPE_CHECKING:
    from flask import Flask

    from .extension import ObserveState


def init_metrics(app: Flask, state: ObserveState) -> None:
    """Set up metrics for *app*. Placeholder until the Metrics issue lands."""
