"""What observing SQL costs: per statement, and per request with and without a database.

Two tables, each figure a ratio to its own baseline:

- per statement, one ``session.execute(select(...)).all()`` on in-memory SQLite:
  ``execute-bare`` (SQLAlchemy alone, no listener), ``execute-outside`` (Flask-Observe's
  listeners on, no request: a script, a worker), ``execute-inside`` (inside a request of
  an observed app: counted and timed on its record). Target: at most 1.05x.
- per request of a production app (statsd over UDP to a local drain): ``bare`` Flask,
  ``production-nosql`` (``OBSERVE_SQL = False``) and ``production`` (SQL observed) on a
  view without a database, then ``bare-db``, ``bare-db-noop`` (a no-op ``after_cursor_execute``
  listener: what SQLAlchemy's event dispatch would cost, had we used cursor events) and
  ``production-db`` on a view running one statement through an ORM session (it sends
  the ``db`` timer and ``db_statements`` counter and adds the ``db`` entry to
  ``Server-Timing``).

    python -m benchmarks.sql                           # in-process timing
    python -m benchmarks.sql --instructions            # valgrind: instructions
    python -m benchmarks.sql --instructions --layouts 1

The listeners are process-wide: in-process timing adds and removes them around each
round of a configuration; instruction counts run each configuration in its own process.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import typing as t
from time import perf_counter

from benchmarks import harness

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment
    from flask import Flask

#: Every configuration, by table.
STATEMENT_NAMES = ("execute-bare", "execute-noop", "execute-outside", "execute-inside")
REQUEST_NAMES = (
    "bare", "production-nosql", "production", "bare-db", "bare-db-noop", "production-db",
)  # fmt: skip
#: The baseline of each configuration's ratio.
BASELINE = {
    **dict.fromkeys(STATEMENT_NAMES, "execute-bare"),
    "bare": "bare",
    "production-nosql": "bare",
    "production": "bare",
    "bare-db": "bare-db",
    "bare-db-noop": "bare-db",
    "production-db": "bare-db",
}

#: The configurations where Flask-Observe listens.
OBSERVED = frozenset(
    {"execute-outside", "execute-inside", "production-nosql", "production", "production-db"}
)

CONFIGURATIONS = harness.Registry("benchmarks.sql", "/q")


def _engine() -> t.Any:
    """An in-memory SQLite engine with one table of ten rows."""
    import sqlalchemy as sa

    engine = sa.create_engine("sqlite://", poolclass=sa.pool.StaticPool)
    with engine.begin() as connection:
        connection.execute(sa.text("create table item (id integer primary key, name text)"))
        for number in range(10):
            connection.execute(
                sa.text("insert into item values (:id, :name)"), {"id": number, "name": "x"}
            )
    return engine


def _query() -> t.Any:
    import sqlalchemy as sa

    item = sa.table("item", sa.column("id"), sa.column("name"))
    return sa.select(item.c.id, item.c.name).where(item.c.id == 3)


class Executor:
    """A WSGI-shaped callable that runs one ``session.execute(select(...)).all()`` per
    call (the harness counts calls as requests), inside *context* when given."""

    def __init__(self, context: t.Any = None) -> None:
        from sqlalchemy import orm

        self.session = orm.Session(_engine())
        self.query = _query()
        self.context = context

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        self.session.execute(self.query).all()
        return ()


def _observed_app(**config: object) -> Flask:
    from flask_observe import Observe

    app = harness.trivial_app(**config)
    Observe(app)
    return app


def _request_context(app: Flask) -> t.Any:
    """A request context as the middleware leaves it while the view runs: its clock
    started, so statements land on the request's record."""
    from flask_observe.record import START_KEY

    environ = CONFIGURATIONS.environ()
    environ[START_KEY] = perf_counter()
    return app.request_context(environ)


@CONFIGURATIONS.add("execute-bare", "session.execute(select(...)), SQLAlchemy alone")
def _execute_bare() -> WSGIApplication:
    return Executor()


def _noop(*args: object) -> None:
    return None


@CONFIGURATIONS.add("execute-noop", "the same, one no-op after_cursor_execute listener")
def _execute_noop() -> WSGIApplication:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(Engine, "after_cursor_execute", _noop)
    return Executor()


@CONFIGURATIONS.add("execute-outside", "the same, Flask-Observe listening, no request")
def _execute_outside() -> WSGIApplication:
    _observed_app()
    return Executor()


@CONFIGURATIONS.add("execute-inside", "the same inside a request of an observed app")
def _execute_inside() -> WSGIApplication:
    executor = Executor(_request_context(_observed_app()))
    executor.context.push()
    harness.CLOSERS.append(executor.context.pop)
    return executor


def _db_view(app: Flask) -> Flask:
    """Route ``/q`` running one statement; without *db*, ``/q`` answers the same text."""
    from sqlalchemy import orm

    session_factory = orm.sessionmaker(_engine())
    query = _query()

    @app.get("/q")
    def q() -> str:
        with session_factory() as session:
            session.execute(query).all()
        return "Hello, World!"

    return app


def _plain_view(app: Flask) -> Flask:
    @app.get("/q")
    def q() -> str:
        return "Hello, World!"

    return app


def _production(**config: object) -> dict[str, object]:
    port = harness.serving_process(harness.UDP_DRAIN_SCRIPT)
    return harness.statsd_config(port, OBSERVE_STATSD_PREFIX="bench", **config)


def _with_observe(app: Flask) -> Flask:
    from flask_observe import Observe

    Observe(app)
    return app


@CONFIGURATIONS.add("bare", "bare Flask, no database (SQLAlchemy imported)")
def _bare() -> WSGIApplication:
    _engine()  # SQLAlchemy imported and used once, as in the other rows
    return _plain_view(harness.trivial_app())


@CONFIGURATIONS.add("production-nosql", "production metrics, OBSERVE_SQL = False, no database")
def _production_nosql() -> WSGIApplication:
    _engine()
    return _with_observe(_plain_view(harness.trivial_app(**_production(OBSERVE_SQL=False))))


@CONFIGURATIONS.add("production", "production metrics, SQL observed, no database")
def _production_sql() -> WSGIApplication:
    _engine()
    return _with_observe(_plain_view(harness.trivial_app(**_production())))


@CONFIGURATIONS.add("bare-db", "bare Flask, one statement per request")
def _bare_db() -> WSGIApplication:
    return _db_view(harness.trivial_app())


@CONFIGURATIONS.add("bare-db-noop", "bare Flask, one statement, a no-op listener")
def _bare_db_noop() -> WSGIApplication:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    event.listen(Engine, "after_cursor_execute", _noop)
    return _db_view(harness.trivial_app())


@CONFIGURATIONS.add("production-db", "production metrics, SQL observed, one statement")
def _production_db() -> WSGIApplication:
    return _with_observe(_db_view(harness.trivial_app(**_production())))


def _listening(name: str) -> None:
    """Add or remove the listeners (process-wide) for the next round of *name*."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from flask_observe.sql import capture

    wanted: list[tuple[str, t.Callable[..., t.Any], bool]] = [
        ("after_cursor_execute", _noop, name in ("execute-noop", "bare-db-noop")),
        ("do_execute", capture.do_execute, name in OBSERVED),
        ("do_executemany", capture.do_executemany, name in OBSERVED),
        ("do_execute_no_params", capture.do_execute_no_params, name in OBSERVED),
    ]
    for identifier, listener, on in wanted:
        if event.contains(Engine, identifier, listener) != on:
            if on:
                event.listen(Engine, identifier, listener)
            else:
                event.remove(Engine, identifier, listener)


def measure(names: list[str], rounds: int, requests: int) -> dict[str, float]:
    """Median seconds per call of each configuration over interleaved rounds; the
    listeners on only for the configurations that observe."""
    apps = {name: CONFIGURATIONS.build(name) for name in names}
    contexts: dict[str, t.Any] = {}
    for name, app in apps.items():  # pushed at build (for valgrind): here, per round
        if isinstance(app, Executor) and app.context is not None:
            app.context.pop()
            harness.CLOSERS.remove(app.context.pop)
            contexts[name] = app.context
    environ = CONFIGURATIONS.environ()
    samples: dict[str, list[float]] = {name: [] for name in names}
    gc.collect()
    gc.disable()
    try:
        for index, name in enumerate(harness.interleaved(names, rounds + 1)):
            _listening(name)
            context = contexts.get(name)
            if context is not None:
                context.push()
            try:
                seconds = harness.run_once(apps[name], environ, requests)
            finally:
                if context is not None:
                    context.pop()
            if index >= len(names):  # the first round warms up
                samples[name].append(seconds)
    finally:
        gc.enable()
        harness.close_all()
    return {name: statistics.median(values) for name, values in samples.items()}


def print_table(figures: dict[str, float], unit: str, scale: float) -> None:
    """Each configuration's figure and its ratio to its baseline."""
    print(f"{'configuration':<17} {unit:>14} {'ratio':>7}  {'to':<13} description")
    for name, value in figures.items():
        base = figures[BASELINE[name]]
        print(
            f"{name:<17} {value * scale:>12.2f} {unit[-2:]} {value / base:>6.3f}x  "
            f"{BASELINE[name]:<13} {CONFIGURATIONS.describe(name)}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--requests", type=int, default=1000, help="calls per round")
    parser.add_argument("--instructions", action="store_true", help="count under valgrind")
    parser.add_argument("--layouts", type=int, default=3, help="memory layouts per count")
    parser.add_argument("--statements", action="store_true", help="the per-statement table only")
    args = parser.parse_args(argv)
    names = [*STATEMENT_NAMES] if args.statements else [*STATEMENT_NAMES, *REQUEST_NAMES]
    if args.instructions:
        low, high = 200, 1200
        counts = harness.instructions(CONFIGURATIONS, names, low, high, args.layouts)
        figures = {name: statistics.median(c.request_thread) for name, c in counts.items()}
        print_table(figures, "instructions k", 1e-3)
        print(
            f"request thread; median of {args.layouts} memory layout(s); "
            f"{high} minus {low} calls each"
        )
    else:
        figures = measure(names, args.rounds, args.requests)
        print_table(figures, "per call µs", 1e6)
        print(f"median of {args.rounds} interleaved rounds of {args.requests} calls")
    statement = figures["execute-inside"] / figures["execute-bare"]
    print(f"per statement inside a request: {statement:.3f}x bare SQLAlchemy (target <= 1.05x)")
    if args.statements:
        return 0
    metrics = figures["production"] - figures["bare"]
    added = (figures["production-db"] - figures["bare-db"]) - metrics
    nothing = figures["production"] / figures["production-nosql"]
    print(f"a request without statements: {nothing:.3f}x the same app with OBSERVE_SQL off")
    print(
        f"a request with one statement: {metrics / figures['bare-db']:+.1%} of bare-db for "
        f"the production metrics, {added / figures['bare-db']:+.1%} for Flask-Observe's SQL work"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
