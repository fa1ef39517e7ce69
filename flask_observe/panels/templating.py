"""The panels' own Jinja environment (the toolbar's cannot find our templates).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import functools

from jinja2 import Environment
from jinja2 import PackageLoader
from jinja2 import select_autoescape

#: What a panel shows when it failed (the failure is logged at WARNING).
FAILED = "<p>Flask-Observe: this panel failed; the warning in the log says why.</p>"


def format_bytes(value: float | None, signed: bool = False) -> str:
    """Bytes as ``B``, ``KiB``, ``MiB`` or ``GiB`` with one decimal.

    :param value: a number of bytes (``None`` shows as a dash).
    :param signed: show a ``+`` sign for growth.
    """
    if value is None:
        return "\u2013"
    sign = "+" if signed and value > 0 else ("-" if value < 0 else "")
    size = abs(float(value))
    for unit in ("B", "KiB", "MiB"):
        if size < 1024.0:
            return f"{sign}{size:.0f} {unit}" if unit == "B" else f"{sign}{size:.1f} {unit}"
        size /= 1024.0
    return f"{sign}{size:.1f} GiB"


def format_ms(seconds: float | None) -> str:
    """Seconds as milliseconds with three decimals, e.g. ``12.345 ms``.

    :param seconds: a duration (``None`` shows as a dash).
    """
    if seconds is None:
        return "\u2013"
    return "%.3f ms" % (seconds * 1000.0)


@functools.lru_cache(maxsize=1)
def environment() -> Environment:
    """The autoescaping environment loading ``flask_observe/panels/templates``.

    It holds no app and no per-app state, so one serves every app of the process.
    """
    env = Environment(
        loader=PackageLoader("flask_observe", "panels/templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.filters["bytes"] = format_bytes
    env.filters["ms"] = format_ms
    return env


def render(template: str, **context: object) -> str:
    """Render one of our templates with *context* (escaped).

    :param template: file name under ``panels/templates``.
    """
    return environment().get_template(template).render(**context)
