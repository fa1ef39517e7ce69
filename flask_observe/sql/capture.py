"""Statements attributed to the request that ran them, through SQLAlchemy's events.

Two listeners on the :class:`~sqlalchemy.engine.Engine` class (``before_cursor_execute``
and ``after_cursor_execute``) see every engine of the process: made with
``create_engine`` before or after ``init_app``, by Flask-SQLAlchemy, or the
``sync_engine`` under an async engine. Nothing of SQLAlchemy is patched. A statement run
inside a request of an app with ``OBSERVE_SQL`` on is counted and timed on that
request's :class:`~flask_observe.RequestRecord` (its ``sql``), and, with the panels on,
kept with its masked parameters and call site. Outside a request, or on an app without
Flask-Observe, the listeners only read the clock.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import dataclasses
import sys
import typing as t
import weakref
from time import perf_counter

from flask import current_app
from flask import has_request_context
from flask import request

from ..config import SQL_KEPT_STATEMENTS
from ..config import SQL_MAX_TEXT
from ..containment import warn_limited
from ..record import current_record
from ..record import START_KEY
from ..record import Timer
from ..state import find_state
from .statements import call_sites
from .statements import mask_parameters
from .statements import Statement

if t.TYPE_CHECKING:
    from ..secrets import Scrubber
    from ..state import ObserveState

#: The WSGI environ key of the request's :class:`SqlTally`, ``False`` when the request
#: is not observed (no Flask-Observe, ``OBSERVE_SQL`` off, an excluded path).
ENVIRON_KEY = "flask_observe.sql"


@dataclasses.dataclass(eq=False)
class SqlSettings:
    """The SQL part of one app's state (``get_state(app).part(SqlSettings)``).

    .. versionadded:: 0.3.0
    """

    #: Keep each statement (text, parameters, call site) for the panels.
    detail: bool
    #: ``OBSERVE_SQL_SLOW``.
    slow: float
    #: ``OBSERVE_SQL_REPEATS``.
    repeats: int
    #: Masks the parameters shown.
    scrubber: Scrubber


class SqlTally:
    """The statements of one request: their count and total time, and with the panels
    on, each of them (:class:`~flask_observe.sql.statements.Statement`, the first
    :data:`~flask_observe.config.SQL_KEPT_STATEMENTS`).

    .. versionadded:: 0.3.0
    """

    __slots__ = ("count", "detail", "seconds", "settings", "start", "statements")

    def __init__(self, settings: SqlSettings, start: float) -> None:
        #: How many statements ran.
        self.count = 0
        #: Their total time in the database, in seconds.
        self.seconds = 0.0
        #: The app's SQL settings.
        self.settings = settings
        #: Whether each statement is kept (the settings' ``detail``).
        self.detail = settings.detail
        #: The request clock's start.
        self.start = start
        #: Each statement, when the settings keep them.
        self.statements: list[Statement] = []

    def timer(self) -> Timer:
        """The ``Server-Timing`` entry: ``db;dur=<ms>;desc="N queries"``."""
        count = self.count
        return Timer("db", self.seconds, False, None, f"{count} quer{'y' if count == 1 else 'ies'}")


def install(state: ObserveState, *, detail: bool) -> bool:
    """Observe the statements of *state*'s app, unless ``OBSERVE_SQL`` is off or
    SQLAlchemy is not installed (then nothing happens: it is a default).

    :param state: the app's :class:`~flask_observe.state.ObserveState`.
    :param detail: keep each statement for the panels.
    :return: whether the app's statements are observed.
    """
    config = state.config
    if not config.sql:
        return False
    try:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
    except ImportError:
        return False
    from ..secrets import state_scrubber

    state.add_part(SqlSettings(detail, config.sql_slow, config.sql_repeats, state_scrubber(state)))
    if not event.contains(Engine, "after_cursor_execute", after_cursor_execute):
        # retval=True: called as it is, without the wrapper SQLAlchemy adds otherwise.
        event.listen(Engine, "before_cursor_execute", before_cursor_execute, retval=True)
        event.listen(Engine, "after_cursor_execute", after_cursor_execute)
    return True


def before_cursor_execute(
    conn: t.Any,
    cursor: t.Any,
    statement: str,
    parameters: t.Any,
    context: t.Any,
    executemany: bool,
) -> tuple[str, t.Any]:
    """Note when the statement starts, on its execution context; hand the statement
    and its parameters back unchanged."""
    if context is not None:
        context._flask_observe_start = perf_counter()
    return statement, parameters


def after_cursor_execute(
    conn: t.Any,
    cursor: t.Any,
    statement: str,
    parameters: t.Any,
    context: t.Any,
    executemany: bool,
) -> None:
    """Count and time the statement on the current request's tally; keep it whole when
    the app's panels are on. Contained: a failure is logged, the statement goes on."""
    end = perf_counter()
    if not has_request_context():
        return
    try:
        environ = _current_request().environ
        tally = environ.get(ENVIRON_KEY)
        if tally is None:
            tally = environ[ENVIRON_KEY] = _begin(environ)
        if tally is False:
            return
        # Set by before_cursor_execute on SQLAlchemy's execution context.
        start = getattr(context, "_flask_observe_start", end)
        tally.count += 1
        tally.seconds += end - start
        if tally.detail and len(tally.statements) < SQL_KEPT_STATEMENTS:
            tally.statements.append(
                _statement(tally, conn, statement, parameters, context, executemany, start, end)
            )
    except Exception:
        warn_limited("sql", "Flask-Observe could not record a SQL statement", exc_info=True)


#: The request object behind Flask's ``request`` proxy (its documented accessor): one
#: call, where an attribute read through the proxy takes several.
_current_request = request._get_current_object  # type: ignore[attr-defined]


def _begin(environ: dict[str, t.Any]) -> SqlTally | t.Literal[False]:
    """The tally of the request's first statement, on its record; ``False`` when the
    request's app does not observe statements."""
    start = environ.get(START_KEY)
    if start is None:  # no Flask-Observe on this app, or an excluded path
        return False
    state = find_state(current_app)
    settings = state.part(SqlSettings) if state is not None else None
    record = current_record()
    if settings is None or record is None:
        return False
    record.sql = tally = SqlTally(settings, start)
    return tally


def _statement(
    tally: SqlTally,
    conn: t.Any,
    statement: str,
    parameters: t.Any,
    context: t.Any,
    executemany: bool,
    start: float,
    end: float,
) -> Statement:
    settings = tally.settings
    compiled = getattr(context, "compiled", None)
    names = getattr(compiled, "positiontup", None)
    return Statement(
        text=statement[:SQL_MAX_TEXT],
        seconds=end - start,
        offset=start - tally.start,
        parameters=mask_parameters(settings.scrubber, parameters, names, executemany),
        call_site=call_sites.find(sys._getframe(2)),
        engine=settings.scrubber.scrub_text(conn.engine.url.render_as_string(hide_password=True)),
        many=executemany,
        raw_parameters=None if executemany else parameters,
        engine_ref=weakref.ref(conn.engine),
    )
