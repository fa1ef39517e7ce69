"""The panels' own Jinja environment (the toolbar's cannot find our templates) and how
values are shown: sizes, durations, and config values with secrets masked.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import functools
import typing as t

from jinja2 import Environment
from jinja2 import PackageLoader
from jinja2 import select_autoescape

from ..secrets import FILTERED

if t.TYPE_CHECKING:
    from ..secrets import Scrubber

#: What a panel shows when it failed (the failure is logged at WARNING).
FAILED = "<p>Flask-Observe: this panel failed; the warning in the log says why.</p>"

#: Longest text shown for one value.
MAX_LENGTH = 200


def shorten(text: str, limit: int = MAX_LENGTH) -> str:
    """Cut *text* to *limit* characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def format_config_value(scrubber: Scrubber, name: str, value: object) -> str:
    """The text shown for the config value *value* of the key *name*.

    A value whose key is secret is shown as ``[Filtered]`` (unless empty); any other
    value as its ``repr`` with the secrets inside masked and long text cut.

    :param scrubber: the app's secret rules.
    :param name: the configuration key.
    :param value: its value.
    """
    if scrubber.hides(name, value):
        return FILTERED
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} object>"
    return shorten(scrubber.scrub_text(text))


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
