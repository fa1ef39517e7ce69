"""Statements attributed to the request that ran them, through SQLAlchemy's events.

Three listeners of SQLAlchemy's dialect events (``do_execute``, ``do_executemany`` and
``do_execute_no_params``), added on the :class:`~sqlalchemy.engine.Engine` class, see
every engine of the process: made with ``create_engine`` before or after ``init_app``,
by Flask-SQLAlchemy, or the ``sync_engine`` under an async engine. Each one runs the
statement between two readings of the clock, the way SQLAlchemy would have: the other
listeners of the event in their order (the app's own, which SQLAlchemy would not call
after ours, since ours runs the statement), and when none of them ran it, the
dialect's own method. Nothing of SQLAlchemy is patched.

Dialect events, not ``before_cursor_execute``/``after_cursor_execute``: an engine with
any listener of those takes SQLAlchemy's slower path for every statement (one no-op
listener cost 1.23x the instructions of a bare ``session.execute(select(...))``), while
a dialect listener costs only itself (``python -m benchmarks.sql``).

A statement run inside a request of an app with ``OBSERVE_SQL`` on is counted and timed
on that request's :class:`~flask_observe.RequestRecord` (its ``sql``), and, with the
panels on, kept with its masked parameters and call site. Outside a request, or on an
app without Flask-Observe, the listeners only run the statement.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import dataclasses
import importlib.util
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


def install(state: ObserveState, *, detail: bool) -> t.Callable[[], None] | None:
    """Observe the statements of *state*'s app, unless ``OBSERVE_SQL`` is off or
    SQLAlchemy is not installed (then nothing happens: it is a default).

    The listeners go on once the process has imported SQLAlchemy: now, when the app
    imported it before ``init_app``, else by the app's first request (the returned
    check). An app that does not use SQLAlchemy never imports it (some 80 modules
    and 25,000 objects, which also make every collection of the garbage collector
    longer).

    :param state: the app's :class:`~flask_observe.state.ObserveState`.
    :param detail: keep each statement for the panels.
    :return: the check to run before the first request, or ``None`` when there is
        nothing left to do.
    """
    config = state.config
    if not config.sql or importlib.util.find_spec("sqlalchemy") is None:
        return None
    from ..secrets import state_scrubber

    state.add_part(SqlSettings(detail, config.sql_slow, config.sql_repeats, state_scrubber(state)))
    if "sqlalchemy" in sys.modules:
        listen()
        return None
    return listen_if_imported


def listen_if_imported() -> None:
    """Add the listeners if the process has imported SQLAlchemy by now."""
    if "sqlalchemy" in sys.modules:
        try:
            listen()
        except Exception:
            warn_limited("sql:listen", "Flask-Observe could not observe SQL", exc_info=True)


def listen() -> None:
    """Add the three listeners on the :class:`~sqlalchemy.engine.Engine` class, once
    per process."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "do_execute", do_execute):
        event.listen(Engine, "do_execute", do_execute)
        event.listen(Engine, "do_executemany", do_executemany)
        event.listen(Engine, "do_execute_no_params", do_execute_no_params)


def do_execute(cursor: t.Any, statement: str, parameters: t.Any, context: t.Any) -> bool:
    """Run one statement with its parameters, timed: through the app's own
    ``do_execute`` listeners in their order, else the dialect."""
    if context is None:  # SQLAlchemy's internal cursor use: it runs the statement itself
        return False
    dialect = context.dialect
    listeners = dialect.dispatch.do_execute
    start = perf_counter()
    if len(listeners) == 1:  # only ours: the dialect runs it
        dialect.do_execute(cursor, statement, parameters, context)
    else:
        _run_others(
            listeners, do_execute, dialect.do_execute, cursor, statement, parameters, context
        )
    _observed(statement, parameters, context, False, start, perf_counter())
    return True


def do_executemany(cursor: t.Any, statement: str, parameters: t.Any, context: t.Any) -> bool:
    """Run one statement with a list of parameter sets, timed: through the app's own
    ``do_executemany`` listeners in their order, else the dialect."""
    if context is None:
        return False
    dialect = context.dialect
    listeners = dialect.dispatch.do_executemany
    start = perf_counter()
    if len(listeners) == 1:  # only ours: the dialect runs it
        dialect.do_executemany(cursor, statement, parameters, context)
    else:
        _run_others(
            listeners,
            do_executemany,
            dialect.do_executemany,
            cursor,
            statement,
            parameters,
            context,
        )
    _observed(statement, parameters, context, True, start, perf_counter())
    return True


def do_execute_no_params(cursor: t.Any, statement: str, context: t.Any) -> bool:
    """Run one statement without parameters, timed: through the app's own
    ``do_execute_no_params`` listeners in their order, else the dialect."""
    if context is None:
        return False
    dialect = context.dialect
    listeners = dialect.dispatch.do_execute_no_params
    start = perf_counter()
    if len(listeners) == 1:  # only ours: the dialect runs it
        dialect.do_execute_no_params(cursor, statement, context)
    else:
        _run_others(
            listeners,
            do_execute_no_params,
            dialect.do_execute_no_params,
            cursor,
            statement,
            context,
        )
    _observed(statement, (), context, False, start, perf_counter())
    return True


def _run_others(
    listeners: t.Iterable[t.Callable[..., t.Any]],
    ours: t.Callable[..., bool],
    dialect_method: t.Callable[..., t.Any],
    *args: t.Any,
) -> None:
    """Call the event's other listeners in their order until one runs the statement
    (returns true), as SQLAlchemy would have; else the dialect's own method."""
    for listener in listeners:
        if listener is not ours and listener(*args):
            return
    dialect_method(*args)


def _observed(
    statement: str, parameters: t.Any, context: t.Any, executemany: bool, start: float, end: float
) -> None:
    """Count and time the statement on the current request's tally; keep it whole when
    the app's panels are on. Contained: a failure is logged, the statement goes on."""
    if not has_request_context():
        return
    try:
        environ = _current_request().environ
        tally = environ.get(ENVIRON_KEY)
        if tally is None:
            tally = environ[ENVIRON_KEY] = _begin(environ)
        if tally is False:
            return
        tally.count += 1
        tally.seconds += end - start
        if tally.detail and len(tally.statements) < SQL_KEPT_STATEMENTS:
            tally.statements.append(
                _statement(tally, statement, parameters, context, executemany, start, end)
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
    statement: str,
    parameters: t.Any,
    context: t.Any,
    executemany: bool,
    start: float,
    end: float,
) -> Statement:
    settings = tally.settings
    engine = context.root_connection.engine
    compiled = getattr(context, "compiled", None)
    names = getattr(compiled, "positiontup", None)
    return Statement(
        text=statement[:SQL_MAX_TEXT],
        seconds=end - start,
        offset=start - tally.start,
        parameters=mask_parameters(settings.scrubber, parameters, names, executemany),
        call_site=call_sites.find(sys._getframe(3)),
        engine=settings.scrubber.scrub_text(engine.url.render_as_string(hide_password=True)),
        many=executemany,
        raw_parameters=None if executemany else parameters,
        engine_ref=weakref.ref(engine),
    )
