"""The panels' own Jinja environment (the toolbar's cannot find our templates) and how
values are shown: sizes, durations, and config values with secrets masked.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import datetime
import functools
import os
import re
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
    value as it reads in a settings file (:func:`readable`), with the secrets inside
    masked and long text cut.

    :param scrubber: the app's secret rules.
    :param name: the configuration key.
    :param value: its value.

    .. versionchanged:: 0.3.0
        Values read as written (``500, 502``, ``/health``), not as Python reprs
        (``frozenset({500, 502})``, ``'/health'``).
    """
    if scrubber.hides(name, value):
        return FILTERED
    try:
        text = readable(value, scrubber)
    except Exception:
        text = f"<{type(value).__name__} object>"
    return shorten(scrubber.scrub_text(text))


#: Containers shown this deep at most; deeper ones show as ``...``.
MAX_DEPTH = 3


def readable(value: object, scrubber: Scrubber, depth: int = 0) -> str:
    """*value* as a person reads it in a settings table.

    A string as itself at the top (quoted inside a container), a list or tuple as
    ``[a, b]``, a set as its sorted items in braces (no ``frozenset(...)``), a mapping as
    ``{key: value}`` with a secret key's value masked, ``timedelta`` and paths as
    ``str()``, a compiled pattern as its text, a function or class by its dotted name,
    anything else as its ``repr``.

    :param value: the value.
    :param scrubber: the secret rules for the keys of mappings inside.
    :param depth: how deep inside containers *value* is.

    .. versionadded:: 0.3.0
    """
    if isinstance(value, str):
        return value if depth == 0 else repr(value)
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    if isinstance(value, (datetime.timedelta, os.PathLike)):
        return str(value)
    if isinstance(value, re.Pattern):
        return readable(value.pattern, scrubber, depth)
    if depth >= MAX_DEPTH and isinstance(value, (dict, list, tuple, set, frozenset)):
        return "..."
    if isinstance(value, dict):
        items = [
            f"{readable(key, scrubber, depth + 1)}: "
            + (FILTERED if scrubber.hides(key, item) else readable(item, scrubber, depth + 1))
            for key, item in value.items()
        ]
        return "{" + ", ".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(readable(item, scrubber, depth + 1) for item in value) + "]"
    if isinstance(value, (set, frozenset)):
        if all(isinstance(item, (int, float)) for item in value):
            shown = [readable(item, scrubber, depth + 1) for item in sorted(value)]  # 500, 1000
        else:
            shown = sorted(readable(item, scrubber, depth + 1) for item in value)
        return "{" + ", ".join(shown) + "}"
    if isinstance(value, type) or callable(value):
        module = getattr(value, "__module__", None)
        name = getattr(value, "__qualname__", None)
        if isinstance(module, str) and isinstance(name, str):
            return f"{module}.{name}"
    return repr(value)


#: Longest ``back`` link a tier-3 page follows.
MAX_BACK = 2000


def local_path(url: str | None) -> str | None:
    """*url* if it is a path on this site (``/orders?page=2``), else ``None``.

    The tier-3 pages link back to the page they were opened from, named in their
    ``back`` query argument; only a local path is followed (no scheme, no
    ``//host``, no backslash or control character), so the link cannot lead elsewhere.

    :param url: the ``back`` argument.

    .. versionadded:: 0.3.0
    """
    if not url or len(url) > MAX_BACK or not url.startswith("/") or url.startswith("//"):
        return None
    if "\\" in url or any(ord(char) < 32 or ord(char) == 127 for char in url):
        return None
    return url


def format_bytes(value: float | None, signed: bool = False) -> str:
    """Bytes as ``B``, ``KiB``, ``MiB`` or ``GiB`` with one decimal.

    :param value: a number of bytes (``None`` shows as a dash).
    :param signed: show the sign of a change: ``+`` for growth and for none
        (``+0 B``: no change, not an empty process).
    """
    if value is None:
        return "\u2013"
    sign = "+" if signed and value >= 0 else ("-" if value < 0 else "")
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


def format_seconds(seconds: float | None) -> str:
    """A setting in seconds as written, e.g. ``1 s`` or ``2.5 s`` (a budget, not a
    measurement: no padding decimals).

    :param seconds: a duration (``None`` shows as a dash).

    .. versionadded:: 0.3.0
    """
    if seconds is None:
        return "\u2013"
    return "%g s" % seconds


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
    env.filters["seconds"] = format_seconds
    return env


def render(template: str, **context: object) -> str:
    """Render one of our templates with *context* (escaped).

    :param template: file name under ``panels/templates``.
    """
    return environment().get_template(template).render(**context)
