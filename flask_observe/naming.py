"""Metric names and statsd lines: cleaning, the tag dialects, and the per-request scheme.

Every name part that can come from a request or from the app (endpoint, method, tag
keys and values, user metric names) is cleaned to ``[A-Za-z0-9_.-]`` and capped in
length, so no request can inject a second metric line or create unbounded names.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import functools
import math
import typing as t
from decimal import Decimal

if t.TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Mapping

#: Characters kept in a name part; every other character becomes ``_``.
NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
#: Longest name part (an endpoint, a tag value, a user metric name) after cleaning.
MAX_PART = 100
#: The methods kept as they are; any other method is reported as :data:`OTHER_METHOD`.
STANDARD_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}
)
#: The method name part of requests with a non-standard method.
OTHER_METHOD = "_OTHER"
#: The endpoint name part of requests that matched no route.
UNMATCHED = "_unmatched"
#: The supported tag dialects (``OBSERVE_STATSD_TAGS``).
DIALECTS = ("none", "graphite", "influxdb", "dogstatsd")

Tags = t.Union["Mapping[str, object]", "Iterable[tuple[str, object]]", None]


def clean_part(part: str, *, limit: int = MAX_PART) -> str:
    """Clean one name part to ``[A-Za-z0-9_.-]``, at most *limit* characters.

    Dots stay (they are Graphite's hierarchy) but empty nodes are removed: no leading,
    trailing or doubled dots. An empty result becomes ``_``.

    :param part: the raw text, e.g. an endpoint such as ``"api.list_items"``.
    :param limit: the longest result.
    """
    if (
        0 < len(part) <= limit
        and all(c in NAME_CHARS for c in part)
        and part[0] != "."
        and part[-1] != "."
        and ".." not in part
    ):
        return part
    cleaned = "".join(c if c in NAME_CHARS else "_" for c in part[: limit * 2])
    cleaned = ".".join(node for node in cleaned.split(".") if node)[:limit].strip(".")
    return cleaned or "_"


def clean_method(method: str) -> str:
    """The method name part: one of :data:`STANDARD_METHODS` or :data:`OTHER_METHOD`,
    upper-cased first, as Werkzeug does for ``request.method``."""
    method = method.upper()
    return method if method in STANDARD_METHODS else OTHER_METHOD


def format_number(value: object) -> str:
    """A counter or gauge value as statsd expects it (no exponent, no ``nan``).

    :raises TypeError: *value* is not an int or float (booleans are refused).
    :raises ValueError: *value* is not finite.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"a metric value must be an int or float, got {value!r}")
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        raise ValueError(f"a metric value must be finite, got {value!r}")
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    text = "%.6f" % value
    return text.rstrip("0").rstrip(".")


@functools.lru_cache(maxsize=256)
def format_rate(rate: float) -> str:
    """The ``|@rate`` suffix for *rate* (empty for 1), written so that it parses back to
    the same float and never with an exponent: ``0.5``, ``0.00000095367431640625``.
    (Six decimals wrote a rate under 0.0000005 as ``|@0``.)"""
    if rate >= 1.0:
        return ""
    return "|@" + format(Decimal(repr(rate)), "f")


def normalise_tags(tags: Tags) -> list[tuple[str, str]]:
    """Clean user tags into ``(key, value)`` pairs, keeping their order."""
    if not tags:
        return []
    items = tags.items() if hasattr(tags, "items") else tags
    return [(clean_part(str(key)), clean_part(str(value))) for key, value in items]


class Dialect:
    """Builds statsd lines for one app: prefix, tag dialect, metric type and rate.

    With ``none``, tag values become name parts in order (``request.<endpoint>.<METHOD>``);
    with a tag dialect the name stays short and the tags are written the dialect's way:
    ``graphite`` ``name;k=v``, ``influxdb`` ``name,k=v``, ``dogstatsd`` ``name|#k:v``.

    :param dialect: one of :data:`DIALECTS`.
    :param prefix: prepended to every name with a dot (cleaned; may be empty).

    .. versionadded:: 0.1.0
    """

    def __init__(self, dialect: str, prefix: str) -> None:
        if dialect not in DIALECTS:
            raise ValueError(f"unknown tag dialect {dialect!r}")
        self.dialect = dialect
        self.prefix = clean_part(prefix, limit=200) + "." if prefix else ""

    def key(self, name: str, tags: list[tuple[str, str]]) -> tuple[str, str]:
        """The text before the ``:`` of a line and, for DogStatsD, its tag suffix.

        *name* and *tags* must be clean already.
        """
        full = self.prefix + name
        if not tags:
            return full, ""
        dialect = self.dialect
        if dialect == "none":
            return full + "." + ".".join(value for _, value in tags), ""
        if dialect == "graphite":
            return full + "".join(f";{k}={v}" for k, v in tags), ""
        if dialect == "influxdb":
            return full + "".join(f",{k}={v}" for k, v in tags), ""
        return full, "|#" + ",".join(f"{k}:{v}" for k, v in tags)

    def compose(
        self, name: str, tags: list[tuple[str, str]], value: str, kind: str, rate: float = 1.0
    ) -> str:
        """One line from clean parts: ``key:value|kind[|@rate][|#tags]``."""
        key, suffix = self.key(name, tags)
        return f"{key}:{value}|{kind}{format_rate(rate)}{suffix}"

    def line(self, name: str, value: str, kind: str, tags: Tags = None, rate: float = 1.0) -> str:
        """One line from raw (uncleaned) user input.

        :param name: the metric name, e.g. ``"jobs.sent"``.
        :param value: the formatted value.
        :param kind: the statsd type: ``c``, ``g``, ``ms`` or ``s``.
        :param tags: optional tags, a mapping or ``(key, value)`` pairs.
        :param rate: the sample rate the value was sampled at.
        """
        return self.compose(clean_part(name), normalise_tags(tags), value, kind, rate)

    def describe(self, name: str, tags: list[tuple[str, str]]) -> str:
        """The name as it appears on the wire without value, for listings."""
        key, suffix = self.key(name, tags)
        return key + (" " + suffix[1:] if suffix else "")


class RouteLines(t.NamedTuple):
    """Prebuilt line templates of one ``(endpoint, method)`` pair."""

    #: ``%`` template taking the milliseconds as a float.
    timer: str
    #: ``%`` template taking the status code text.
    response: str
    #: Clean endpoint and method, for the exception counter.
    endpoint: str
    method: str


def status_code(status: str | None) -> str:
    """The status code name part of a WSGI status line: ``"404 NOT FOUND"`` gives
    ``404``; a missing or malformed line gives ``_``."""
    code = status[:3] if status else "_"
    return code if code.isdigit() else "_"


def route_lines(dialect: Dialect, endpoint: str | None, method: str, rate: float) -> RouteLines:
    """Build the request timer and status counter templates of one route and method.

    :param endpoint: Flask's endpoint, ``None`` when no route matched.
    :param method: the request method as the client sent it.
    :param rate: the sample rate, written as ``|@rate`` when below 1.
    """
    clean_endpoint = UNMATCHED if endpoint is None else clean_part(endpoint)
    clean_meth = clean_method(method)
    tags = [("endpoint", clean_endpoint), ("method", clean_meth)]
    # Clean parts never contain "%", so the placeholders below are the only ones.
    timer = dialect.compose("request", tags, "%0.6f", "ms", rate)
    response = dialect.compose("response", [*tags, ("status", "%s")], "1", "c", rate)
    return RouteLines(timer, response, clean_endpoint, clean_meth)
