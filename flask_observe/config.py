"""Configuration: every ``OBSERVE_*`` key, its type, default and validation.

Keys are read once, in :meth:`flask_observe.Observe.init_app`, and frozen into an
:class:`ObserveConfig`. A wrong type, an out-of-range number, an unknown choice or a
misspelt ``OBSERVE_*`` key raises :class:`ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Mapping


class ConfigError(ValueError):
    """A configuration value that Flask-Observe cannot use.

    The message always names the offending ``OBSERVE_*`` key.

    .. versionadded:: 0.1.0
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        #: The configuration key that was rejected.
        self.key = key


def _describe(value: object) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def as_bool(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(key, f"expected True or False, got {_describe(value)}")


def as_optional_bool(key: str, value: object) -> bool | None:
    if value is None:
        return None
    return as_bool(key, value)


def as_int(key: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, f"expected an integer, got {_describe(value)}")
    if not low <= value <= high:
        raise ConfigError(key, f"must be between {low} and {high}, got {value}")
    return value


def as_float(key: str, value: object, low: float, high: float, *, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(key, f"expected a number, got {_describe(value)}")
    number = float(value)
    too_low = number <= low if low_open else number < low
    if math.isnan(number) or too_low or number > high:
        bracket = "(" if low_open else "["
        raise ConfigError(key, f"must be in {bracket}{low}, {high}], got {value!r}")
    return number


def as_optional_str(key: str, value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a string or None, got {_describe(value)}")
    return value or None


def as_str(key: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(key, f"expected a string, got {_describe(value)}")
    return value


def as_choice(key: str, value: object, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.lower() not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ConfigError(key, f"must be one of {allowed}, got {_describe(value)}")
    return value.lower()


def as_paths(key: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise ConfigError(
            key, f"expected a list of paths such as ['/health'], got {_describe(value)}"
        )
    paths: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item.startswith("/"):
            raise ConfigError(key, f"every path must be a string starting with '/', got {item!r}")
        if "*" in item[:-1]:
            raise ConfigError(
                key,
                f"{item!r} would exclude nothing: '*' is a wildcard only as the last "
                "character, a prefix such as '/static/*'; list the paths, or a prefix",
            )
        paths.append(item)
    return tuple(sorted(paths))


def as_statuses(key: str, value: object) -> frozenset[int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise ConfigError(key, f"expected a collection of status codes, got {_describe(value)}")
    return frozenset(as_int(key, code, 500, 599) for code in value)


def as_keys(key: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise ConfigError(key, f"expected a list of strings, got {_describe(value)}")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item:
            raise ConfigError(key, f"every entry must be a non-empty string, got {item!r}")
        out.append(item.lower())
    return tuple(out)


def as_patterns(key: str, value: object) -> tuple[re.Pattern[str], ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ConfigError(key, f"expected a list of regular expressions, got {_describe(value)}")
    out: list[re.Pattern[str]] = []
    for item in value:
        if isinstance(item, re.Pattern) and isinstance(item.pattern, str):
            out.append(item)
            continue
        if not isinstance(item, str) or not item:
            raise ConfigError(key, f"every entry must be a non-empty string, got {item!r}")
        try:
            out.append(re.compile(item))
        except re.error as error:
            raise ConfigError(key, f"{item!r} is not a regular expression: {error}") from None
    return tuple(out)


def as_rate(key: str, value: object) -> tuple[int, float] | None:
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(
            key, f"expected (count, seconds) such as (10, 60), or None, got {_describe(value)}"
        )
    count = as_int(key, value[0], 1, 1_000_000)
    seconds = as_float(key, value[1], 0.0, 86_400.0, low_open=True)
    return (count, seconds)


def as_optional_callable(key: str, value: object) -> t.Callable[..., t.Any] | None:
    if value is None:
        return None
    if not callable(value):
        raise ConfigError(key, f"expected a callable or None, got {_describe(value)}")
    return t.cast("t.Callable[..., t.Any]", value)


def as_header_name(key: str, value: object) -> str | None:
    name = as_optional_str(key, value)
    if name is not None and not all(c.isalnum() or c in "-_" for c in name):
        raise ConfigError(key, f"not a valid header name: {name!r}")
    return name


@dataclasses.dataclass(frozen=True)
class Option:
    """One configuration key: how it is documented and validated."""

    key: str
    field: str
    default: object
    type_doc: str
    doc: str
    parse: t.Callable[[str, object], object]
    since: str = "0.1.0"


def _opt(
    key: str,
    default: object,
    type_doc: str,
    doc: str,
    parse: t.Callable[[str, object], object],
    since: str = "0.1.0",
) -> Option:
    return Option(key, key[len("OBSERVE_") :].lower(), default, type_doc, doc, parse, since)


#: Every key Flask-Observe reads, in documentation order.
OPTIONS: tuple[Option, ...] = (
    # --- timing (foundation) ---
    _opt(
        "OBSERVE_RUNTIME_HEADER",
        True,
        "bool",
        "Add ``X-Runtime`` (seconds, ``%0.6f``) to every response. A value the view "
        "set itself is kept.",
        as_bool,
    ),
    _opt(
        "OBSERVE_SERVER_TIMING",
        True,
        "bool",
        "Add a W3C ``Server-Timing`` header (``app;dur=<ms>`` plus one entry per "
        "timer), merged with any the view set.",
        as_bool,
    ),
    _opt(
        "OBSERVE_EXCLUDE_PATHS",
        (),
        "list of str",
        "Paths that get no instrumentation at all (health checks). An entry ending "
        "in ``*`` is a prefix: ``/static/*``; a ``*`` anywhere else is refused. Any "
        "other entry is a path compared whole, with or without its trailing slash "
        "(``/health`` and ``/health/`` each exclude both). Matched against "
        "``PATH_INFO``.",
        as_paths,
    ),
    # --- metrics ---
    _opt(
        "OBSERVE_STATSD_HOST",
        None,
        "str or None",
        "statsd host name or address; for the ``unix`` protocol, the socket path. "
        "``None`` sends nothing over the network.",
        as_optional_str,
    ),
    _opt(
        "OBSERVE_STATSD_PORT",
        8125,
        "int",
        "statsd port (UDP or TCP).",
        lambda k, v: as_int(k, v, 1, 65535),
    ),
    _opt(
        "OBSERVE_STATSD_PREFIX",
        "",
        "str",
        "Prefix for every metric name, e.g. ``myapp``.",
        as_str,
    ),
    _opt(
        "OBSERVE_STATSD_SAMPLE_RATE",
        1.0,
        "float",
        "Share of requests whose metrics are sent, ``0 < rate <= 1``.",
        lambda k, v: as_float(k, v, 0.0, 1.0, low_open=True),
    ),
    _opt(
        "OBSERVE_STATSD_PROTOCOL",
        "udp",
        "str",
        "Transport: ``udp``, ``tcp`` or ``unix`` (a datagram socket at the path in "
        "``OBSERVE_STATSD_HOST``).",
        lambda k, v: as_choice(k, v, ("udp", "tcp", "unix")),
    ),
    _opt(
        "OBSERVE_STATSD_TAGS",
        "none",
        "str",
        "Tag dialect: ``none`` (dotted Graphite names), ``graphite`` (``;k=v``), "
        "``influxdb`` (``,k=v``) or ``dogstatsd`` (``|#k:v``).",
        lambda k, v: as_choice(k, v, ("none", "graphite", "influxdb", "dogstatsd")),
    ),
    _opt(
        "OBSERVE_STATSD_MAX_PACKET",
        1432,
        "int",
        "Largest packet in bytes; metric lines are buffered up to this size.",
        lambda k, v: as_int(k, v, 64, 65507),
    ),
    _opt(
        "OBSERVE_STATSD_FLUSH_INTERVAL",
        0.5,
        "float",
        "Longest time in seconds a buffered metric line waits before it is sent.",
        lambda k, v: as_float(k, v, 0.0, 60.0, low_open=True),
    ),
    _opt(
        "OBSERVE_STATSD_AGGREGATE",
        True,
        "bool",
        "Sum counters per name and keep bounded samples of each timer in process, and "
        "send them once per flush interval, instead of one line per metric. "
        "``False`` sends every request's lines as they are.",
        as_bool,
        since="0.2.0",
    ),
    _opt(
        "OBSERVE_STATSD_TIMER_SAMPLES",
        16,
        "int",
        "With aggregation, the most values kept per timer name (and status, for the "
        "request timer) per flush interval; the rest are counted, so the timer's count "
        "stays exact.",
        lambda k, v: as_int(k, v, 1, 1_000_000),
        since="0.2.0",
    ),
    _opt(
        "OBSERVE_PROCESS_METRICS",
        None,
        "bool or None",
        "Send each worker's process figures (resident memory, CPU seconds, garbage "
        "collections and their time, threads, open files, requests in flight) at every "
        "flush, named by worker slot (see :ref:`process-figures`). ``None`` means: when "
        "``OBSERVE_STATSD_HOST`` is set; ``True`` without a host is refused.",
        as_optional_bool,
        since="0.3.0",
    ),
    _opt(
        "OBSERVE_METRICS_RECORD",
        None,
        "bool or None",
        "Record each request's metric lines for the toolbar and tests. ``None`` "
        "means: when no statsd host is set and the app is in debug or testing mode.",
        as_optional_bool,
    ),
    # --- errors ---
    _opt(
        "OBSERVE_JSON_ERRORS",
        None,
        "bool or None",
        "How errors are answered. ``None`` negotiates: an ``application/problem+json`` "
        "body for API clients, the app's or Flask's HTML page for browsers (an "
        "``Accept`` preferring ``text/html``). ``True``: always problem+json. "
        "``False``: always Flask's own response. (Before 0.3.0 the default was ``True``.)",
        as_optional_bool,
    ),
    _opt(
        "OBSERVE_SENTRY_DSN",
        None,
        "str or None",
        "Initialise sentry-sdk with this DSN (lean defaults, no FlaskIntegration). "
        "``None`` uses an SDK the app already initialised, if any.",
        as_optional_str,
    ),
    _opt(
        "OBSERVE_SENTRY_CAPTURE_STATUSES",
        frozenset({500, 502, 503, 504}),
        "set of int",
        "Which ``abort(5xx)`` statuses are captured. Unhandled exceptions are "
        "always captured; 4xx never are.",
        as_statuses,
    ),
    _opt(
        "OBSERVE_ERROR_BODY",
        None,
        "callable or None",
        "Replace the JSON body builder: called with the problem dict, returns what to serialise.",
        as_optional_callable,
    ),
    _opt(
        "OBSERVE_SCRUB_KEYS",
        (),
        "list of str",
        "Extra header, body or query keys whose values are secret: scrubbed from Sentry "
        "events, masked in error bodies and in the toolbar panels.",
        as_keys,
    ),
    _opt(
        "OBSERVE_SCRUB_PATTERNS",
        (),
        "list of regular expressions",
        "Extra secrets found by their shape: every match of each pattern (a string or "
        "a compiled ``re`` pattern) in a text is replaced by ``[Filtered]``, wherever "
        "the secret rules apply.",
        as_patterns,
        since="0.3.0",
    ),
    _opt(
        "OBSERVE_EVENT_ID_HEADER",
        "X-Sentry-Event-Id",
        "str or None",
        "Response header carrying the captured event id; ``None`` to omit it.",
        as_header_name,
    ),
    _opt(
        "OBSERVE_SENTRY_ERROR_RATE",
        (10, 60.0),
        "(int, float) or None",
        "``(count, seconds)``: at most *count* Sentry events every *seconds* for each "
        "fingerprint (exception class and traceback locations); repeats beyond it are "
        "counted, not built, and the next event sent for it carries the count. ``None`` "
        "sends every error.",
        as_rate,
        since="0.2.0",
    ),
    # --- toolbar ---
    _opt(
        "OBSERVE_TOOLBAR_PANELS",
        None,
        "bool or None",
        "Add the Observe and Memory panels to Flask-DebugToolbar. ``None`` means ``app.debug``.",
        as_optional_bool,
    ),
    _opt(
        "OBSERVE_MEMORY_BUDGET",
        1.0,
        "float",
        "Time budget in seconds for the heap-diff tier of the Memory panel.",
        lambda k, v: as_float(k, v, 0.0, 60.0, low_open=True),
    ),
    _opt(
        "OBSERVE_REPORT_STORE_SIZE",
        100,
        "int",
        "How many recent requests the ``X-Observe-Report`` store keeps.",
        lambda k, v: as_int(k, v, 1, 100_000),
    ),
    _opt(
        "OBSERVE_HISTORY_SIZE",
        50,
        "int",
        "How many recent requests the toolbar's History panel, page and JSON API list, "
        "newest first; at most ``OBSERVE_REPORT_STORE_SIZE``, as every row links to "
        "its report.",
        lambda k, v: as_int(k, v, 1, 100_000),
        since="0.3.0",
    ),
    _opt(
        "OBSERVE_HISTORY_PATH",
        None,
        "str or None",
        "A SQLite file holding the history and the reports, shared by every process of "
        "the app (the reloader's child, gunicorn workers) and bounded on disk as in "
        "memory. ``None`` keeps them in each process's memory.",
        as_optional_str,
        since="0.3.0",
    ),
    # --- SQL ---
    _opt(
        "OBSERVE_SQL",
        True,
        "bool",
        "Observe SQLAlchemy statements (when SQLAlchemy is installed): per request the "
        "number of statements and the time in the database, sent as the ``db`` timer and "
        "``db_statements`` counter per endpoint and shown in ``Server-Timing``; with the "
        "panels on, each statement too. ``False`` turns all SQL observation off.",
        as_bool,
        since="0.3.0",
    ),
    _opt(
        "OBSERVE_SQL_SLOW",
        0.1,
        "float",
        "Seconds from which a statement is highlighted as slow in the SQL panel "
        "(``0 < seconds <= 3600``).",
        lambda k, v: as_float(k, v, 0.0, 3600.0, low_open=True),
        since="0.3.0",
    ),
    _opt(
        "OBSERVE_SQL_REPEATS",
        3,
        "int",
        "How many runs of the same statement (literals and parameters aside) in one "
        "request flag it as repeated: an N+1 pattern or a duplicate (2 to 10000).",
        lambda k, v: as_int(k, v, 2, 10_000),
        since="0.3.0",
    ),
)

KNOWN_KEYS = frozenset(option.key for option in OPTIONS)

#: Most statements of one request kept with their text, parameters and call site for
#: the SQL panel; the ones after it are still counted and timed.
SQL_KEPT_STATEMENTS = 500
#: Longest statement text kept for the SQL panel, in characters.
SQL_MAX_TEXT = 10_000


@dataclasses.dataclass(frozen=True)
class ObserveConfig:
    """The validated configuration of one app. Attribute names are the keys without
    the ``OBSERVE_`` prefix, in lower case.

    .. versionadded:: 0.1.0
    """

    runtime_header: bool
    server_timing: bool
    exclude_paths: tuple[str, ...]
    statsd_host: str | None
    statsd_port: int
    statsd_prefix: str
    statsd_sample_rate: float
    statsd_protocol: str
    statsd_tags: str
    statsd_max_packet: int
    statsd_flush_interval: float
    statsd_aggregate: bool
    statsd_timer_samples: int
    process_metrics: bool | None
    metrics_record: bool | None
    json_errors: bool | None
    sentry_dsn: str | None
    sentry_capture_statuses: frozenset[int]
    error_body: t.Callable[..., t.Any] | None
    scrub_keys: tuple[str, ...]
    scrub_patterns: tuple[re.Pattern[str], ...]
    event_id_header: str | None
    sentry_error_rate: tuple[int, float] | None
    toolbar_panels: bool | None
    memory_budget: float
    report_store_size: int
    history_size: int
    history_path: str | None
    sql: bool
    sql_slow: float
    sql_repeats: int

    @classmethod
    def from_mapping(cls, config: Mapping[str, object]) -> ObserveConfig:
        """Validate the ``OBSERVE_*`` keys of a Flask config mapping.

        :param config: usually ``app.config``; missing keys take their defaults.
        :raises ConfigError: a value is invalid or an ``OBSERVE_*`` key is unknown.
        """
        for key in config:
            if key.startswith("OBSERVE_") and key not in KNOWN_KEYS:
                close = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
                hint = f" Did you mean {close[0]}?" if close else ""
                raise ConfigError(key, f"unknown Flask-Observe setting.{hint}")
        values: dict[str, t.Any] = {
            option.field: option.parse(option.key, config.get(option.key, option.default))
            for option in OPTIONS
        }
        return cls(**values)
