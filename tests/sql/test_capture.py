"""Statements attributed to the request and app that ran them: counted, timed, sent as
``db`` / ``db_statements`` per endpoint and shown in ``Server-Timing``, for plain,
Flask-SQLAlchemy and async engines, made before or after ``init_app``."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import typing as t

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import orm
from sqlalchemy.ext.asyncio import create_async_engine

from flask_observe import ConfigError
from flask_observe import Observe
from flask_observe.testing import assert_max_statements
from tests.support.metrics import counter_total
from tests.support.metrics import flush
from tests.support.metrics import timer_count
from tests.support.metrics import udp_config
from tests.support.metrics import UdpReceiver
from tests.support.sql import add_library_routes
from tests.support.sql import Author
from tests.support.sql import Base
from tests.support.sql import fill
from tests.support.sql import keep_records
from tests.support.sql import memory_engine

if t.TYPE_CHECKING:
    from tests.support.apps import AppFactory

DB_ENTRY = re.compile(r'db;dur=(\d+\.\d{3});desc="(\d+) quer(?:y|ies)"')


def db_lines(lines: list[str] | None) -> list[str]:
    return [line for line in lines or [] if line.startswith("db")]


def test_statements_of_a_request_are_counted_timed_and_named_per_endpoint(
    make_app: AppFactory,
) -> None:
    """The N+1 page runs 1 + 3 statements: the record counts them, the recorded lines
    carry a ``db`` timer and a ``db_statements`` counter of 4 for the endpoint, and
    ``Server-Timing`` a ``db`` entry no longer than the request."""
    engine = memory_engine(authors=3)
    app = make_app(add_library_routes(engine))
    records = keep_records(app)
    response = app.test_client().get("/authors")
    assert response.json == {"author 0": 2, "author 1": 2, "author 2": 2}
    (record,) = records
    assert record.sql is not None and record.sql.count == 4
    lines = db_lines(record.metric_lines)
    assert [line.split(":")[0] for line in lines] == ["db.authors.GET", "db_statements.authors.GET"]
    assert lines[0].endswith("|ms") and lines[1] == "db_statements.authors.GET:4|c"
    timing = response.headers["Server-Timing"]
    app_ms = float(re.match(r"app;dur=(\d+\.\d{3})", timing).group(1))  # type: ignore[union-attr]
    match = DB_ENTRY.search(timing)
    assert match is not None and match.group(2) == "4", timing
    assert timing.endswith('queries"')
    assert 0 < float(match.group(1)) <= app_ms
    assert float(lines[0].split(":")[1].split("|")[0]) == pytest.approx(record.sql.seconds * 1000.0)


def test_one_statement_says_one_query(make_app: AppFactory) -> None:
    app = make_app(add_library_routes(memory_engine()))
    timing = app.test_client().get("/count").headers["Server-Timing"]
    assert timing.startswith("app;dur=") and timing.endswith('desc="1 query"'), timing


def test_a_request_without_statements_has_no_sql_record_line_or_entry(
    make_app: AppFactory,
) -> None:
    app = make_app(add_library_routes(memory_engine()))
    records = keep_records(app)
    response = app.test_client().get("/none")
    assert "db;" not in response.headers["Server-Timing"]
    (record,) = records
    assert record.sql is None
    assert db_lines(record.metric_lines) == []


def test_a_request_without_statements_makes_no_record(make_app: AppFactory) -> None:
    """With nothing else asking for one, a request that ran no statement keeps the
    record-less path: the SQL feature makes no record of its own."""
    from flask_observe.record import ENVIRON_KEY

    app = make_app(add_library_routes(memory_engine()), OBSERVE_METRICS_RECORD=False)
    seen: list[object] = []

    @app.after_request
    def note(response: t.Any) -> t.Any:
        from flask import request

        seen.append(request.environ.get(ENVIRON_KEY))
        return response

    client = app.test_client()
    client.get("/none")
    client.get("/count")
    assert seen[0] is None
    assert seen[1] is not None


def test_aggregated_and_sent_to_statsd(make_app: AppFactory, udp: UdpReceiver) -> None:
    """Two requests of 4 statements and one of 1, aggregated: the daemon gets the timer
    counted per request and the counters summed, per endpoint."""
    app = make_app(add_library_routes(memory_engine()), **udp_config(udp))
    client = app.test_client()
    client.get("/authors")
    client.get("/authors")
    client.get("/count")
    client.get("/none")
    flush(app)
    lines = udp.wait_for(10)
    assert counter_total(lines, "db_statements.authors.GET") == 8
    assert counter_total(lines, "db_statements.count.GET") == 1
    assert timer_count(lines, "db.authors.GET") == 2
    assert timer_count(lines, "db.count.GET") == 1
    assert not [line for line in lines if line.startswith(("db.none", "db_statements.none"))]


@pytest.mark.parametrize(
    ("dialect", "counter", "timer"),
    [
        pytest.param(
            "dogstatsd",
            "shop.db_statements:8|c|#endpoint:authors,method:GET",
            r"shop\.db:[\d.]+\|ms\|#endpoint:authors,method:GET",
            id="dogstatsd",
        ),
        pytest.param(
            "graphite",
            "shop.db_statements;endpoint=authors;method=GET:8|c",
            r"shop\.db;endpoint=authors;method=GET:[\d.]+\|ms",
            id="graphite",
        ),
    ],
)
def test_aggregated_names_in_tag_dialects(
    make_app: AppFactory, udp: UdpReceiver, dialect: str, counter: str, timer: str
) -> None:
    app = make_app(
        add_library_routes(memory_engine()),
        **udp_config(udp, OBSERVE_STATSD_TAGS=dialect, OBSERVE_STATSD_PREFIX="shop"),
    )
    client = app.test_client()
    client.get("/authors")
    client.get("/authors")
    flush(app)
    lines = udp.wait_for(6)
    assert counter in lines, lines
    assert len([line for line in lines if re.fullmatch(timer, line)]) == 2, lines


def test_one_line_per_metric_without_aggregation(make_app: AppFactory, udp: UdpReceiver) -> None:
    app = make_app(
        add_library_routes(memory_engine()), **udp_config(udp, OBSERVE_STATSD_AGGREGATE=False)
    )
    app.test_client().get("/authors")
    flush(app)
    lines = udp.wait_for(4)
    assert "db_statements.authors.GET:4|c" in lines
    assert timer_count(lines, "db.authors.GET") == 1


@pytest.mark.parametrize(
    ("dialect", "timer", "counter"),
    [
        pytest.param(
            "graphite",
            "shop.db;endpoint=authors;method=GET:",
            "shop.db_statements;endpoint=authors;method=GET:4|c",
            id="graphite",
        ),
        pytest.param(
            "influxdb",
            "shop.db,endpoint=authors,method=GET:",
            "shop.db_statements,endpoint=authors,method=GET:4|c",
            id="influxdb",
        ),
        pytest.param(
            "dogstatsd",
            "shop.db:",
            "shop.db_statements:4|c|#endpoint:authors,method:GET",
            id="dogstatsd",
        ),
        pytest.param(
            "none", "shop.db.authors.GET:", "shop.db_statements.authors.GET:4|c", id="dotted"
        ),
    ],
)
def test_names_and_tags_in_every_dialect(
    make_app: AppFactory, dialect: str, timer: str, counter: str
) -> None:
    app = make_app(
        add_library_routes(memory_engine()),
        OBSERVE_STATSD_TAGS=dialect,
        OBSERVE_STATSD_PREFIX="shop",
    )
    records = keep_records(app)
    app.test_client().get("/authors")
    lines = [line for line in records[0].metric_lines or [] if line.startswith("shop.db")]
    assert len(lines) == 2
    assert lines[0].startswith(timer) and "|ms" in lines[0]
    if dialect == "dogstatsd":
        assert lines[0].endswith("|ms|#endpoint:authors,method:GET")
    assert lines[1] == counter


def test_off_with_observe_sql_false(make_app: AppFactory) -> None:
    app = make_app(add_library_routes(memory_engine()), OBSERVE_SQL=False)
    records = keep_records(app)
    response = app.test_client().get("/authors")
    assert response.status_code == 200
    assert "db;" not in response.headers["Server-Timing"]
    assert records[0].sql is None and db_lines(records[0].metric_lines) == []


def test_apps_of_one_process_do_not_mix(make_app: AppFactory) -> None:
    """One engine, three apps: one observing, one with ``OBSERVE_SQL`` off, one without
    Flask-Observe. Each request's statements land on its own app's record only, also
    when a view of one app calls another app inside its request."""
    engine = memory_engine()
    observed = make_app(add_library_routes(engine), name="observed")
    quiet = make_app(add_library_routes(engine), name="quiet", OBSERVE_SQL=False)
    bare = make_app(add_library_routes(engine), name="bare", observe=False)

    @observed.get("/through-quiet")
    def through_quiet() -> dict[str, int]:
        quiet.test_client().get("/authors")  # 4 statements, not ours
        bare.test_client().get("/count")  # 1 statement, not ours
        with engine.connect() as connection:
            connection.execute(sa.text("select 1"))
        return {"ok": 1}

    observed_records = keep_records(observed)
    quiet_records = keep_records(quiet)
    observed.test_client().get("/through-quiet")
    bare.test_client().get("/authors")
    quiet.test_client().get("/authors")
    (record,) = observed_records
    assert record.sql is not None and record.sql.count == 1
    assert [r.sql for r in quiet_records] == [None, None]


def test_statements_outside_a_request_are_not_counted(make_app: AppFactory) -> None:
    engine = memory_engine()
    app = make_app(add_library_routes(engine))
    records = keep_records(app)
    with app.app_context(), engine.connect() as connection:
        assert connection.scalar(sa.text("select 2")) == 2
    app.test_client().get("/count")
    assert records[0].sql is not None and records[0].sql.count == 1


def test_an_engine_made_before_init_app_and_one_made_after(make_app: AppFactory) -> None:
    before = memory_engine()
    app = make_app(add_library_routes(before))
    after = memory_engine()
    records = keep_records(app)

    @app.get("/both")
    def both() -> str:
        for engine in (before, after):
            with engine.connect() as connection:
                connection.execute(sa.text("select 1"))
        return "ok"

    app.test_client().get("/both")
    assert records[0].sql is not None and records[0].sql.count == 2


def test_flask_sqlalchemy_engines(tmp_path: t.Any) -> None:
    """Flask-SQLAlchemy 3.x, initialised after Observe, without
    ``SQLALCHEMY_RECORD_QUERIES``: its statements are seen."""
    app = Flask("fsa")
    app.config.update(TESTING=True, SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/fsa.db")
    Observe(app)
    db = SQLAlchemy(model_class=Base)
    db.init_app(app)
    with app.app_context():
        fill(db.engine, authors=2)

    @app.get("/authors")
    def authors() -> dict[str, int]:
        found = db.session.scalars(sa.select(Author)).all()
        return {a.name: len(a.books) for a in found}

    records = keep_records(app)
    response = app.test_client().get("/authors")
    assert response.json == {"author 0": 2, "author 1": 2}
    assert records[0].sql is not None and records[0].sql.count == 3
    assert 'desc="3 queries"' in response.headers["Server-Timing"]
    with app.app_context():
        with assert_max_statements(1) as block:
            db.first_or_404(sa.select(Author))  # Flask-SQLAlchemy's frames are skipped
        call_site = block.statements[0].call_site
        assert call_site is not None
        assert call_site.startswith("tests/sql/test_capture.py:")
        assert call_site.endswith(" in test_flask_sqlalchemy_engines")
        db.engine.dispose()


def test_async_engine_through_its_sync_engine(make_app: AppFactory, tmp_path: t.Any) -> None:
    """An ``async def`` view on an aiosqlite engine: its statements reach the request."""
    url = f"sqlite+aiosqlite:///{tmp_path}/async.db"
    fill(sa.create_engine(f"sqlite:///{tmp_path}/async.db"), authors=2)
    app = make_app()
    records = keep_records(app)

    @app.get("/async-authors")
    async def async_authors() -> dict[str, int]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                rows = (await connection.execute(sa.select(Author.name))).all()
                await connection.execute(sa.text("select 1"))
        finally:
            await engine.dispose()
        return {"authors": len(rows)}

    response = app.test_client().get("/async-authors")
    assert response.json == {"authors": 2}
    assert records[0].sql is not None and records[0].sql.count == 2
    assert 'desc="2 queries"' in response.headers["Server-Timing"]


def test_an_async_engine_outside_a_request_is_fine() -> None:
    async def run() -> int:
        engine = create_async_engine("sqlite+aiosqlite://")
        try:
            async with engine.connect() as connection:
                return int((await connection.execute(sa.text("select 3"))).scalar_one())
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == 3


def test_a_failing_statement_is_the_apps_error_unchanged(make_app: AppFactory) -> None:
    engine = memory_engine()
    app = make_app(TESTING=False)
    records = keep_records(app)

    @app.get("/bad")
    def bad() -> str:
        with orm.Session(engine) as session:
            session.execute(sa.text("select * from no_such_table"))
        return "unreached"

    response = app.test_client().get("/bad")
    assert response.status_code == 500
    assert records[0].exception is not None
    assert type(records[0].exception).__name__ == "OperationalError"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("OBSERVE_SQL", "yes", id="sql-not-bool"),
        pytest.param("OBSERVE_SQL_SLOW", 0, id="slow-zero"),
        pytest.param("OBSERVE_SQL_SLOW", "0.1", id="slow-text"),
        pytest.param("OBSERVE_SQL_REPEATS", 1, id="repeats-one"),
        pytest.param("OBSERVE_SQL_REPEATS", 2.5, id="repeats-float"),
    ],
)
def test_bad_settings_fail_at_init_app_naming_the_key(key: str, value: object) -> None:
    app = Flask("bad")
    app.config[key] = value
    with pytest.raises(ConfigError) as caught:
        Observe(app)
    assert caught.value.key == key
    assert "observe" not in app.extensions


def test_with_the_panels_each_statement_is_kept(tmp_path: t.Any) -> None:
    """In development (toolbar panels on) each statement is kept: its text, duration,
    start within the request, masked parameters, call site in the app and engine."""
    from flask_debugtoolbar import DebugToolbarExtension

    from tests.support.apps import make_app

    engine = sa.create_engine(f"sqlite:///{tmp_path}/library.db")
    fill(engine, authors=0)
    app = make_app(
        add_library_routes(engine), observe=False, TESTING=False, DEBUG=True, SECRET_KEY="s"
    )

    @app.post("/signup")
    def signup() -> dict[str, str]:
        with orm.Session(engine) as session, session.begin():
            session.add(Author(name="ada", password="hunter2"))
        return {"signed": "up"}

    Observe(app)
    DebugToolbarExtension(app)
    records = keep_records(app)
    app.test_client().post("/signup")
    (record,) = records
    tally = record.sql
    assert tally is not None and tally.count == len(tally.statements)  # type: ignore[attr-defined]
    statements = tally.statements  # type: ignore[attr-defined]
    (insert,) = [s for s in statements if s.text.startswith("INSERT")]
    assert insert.text == "INSERT INTO author (name, password) VALUES (?, ?)"
    assert insert.parameters == "{name: 'ada', password: '[Filtered]'}"
    assert insert.call_site is not None
    assert insert.call_site.startswith("tests/sql/test_capture.py:")
    assert insert.call_site.endswith(" in signup")
    assert insert.engine == f"sqlite:///{tmp_path}/library.db"
    assert 0 < insert.offset < record.total_seconds
    assert 0 < insert.seconds <= tally.seconds
    engine.dispose()


def test_in_production_no_statement_is_kept(make_app: AppFactory) -> None:
    app = make_app(add_library_routes(memory_engine()))
    records = keep_records(app)
    app.test_client().get("/authors")
    tally = records[0].sql
    assert tally is not None and tally.count == 4
    assert tally.statements == []  # type: ignore[attr-defined]


def test_a_failure_of_ours_never_reaches_the_app(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """When recording a statement fails inside the listener, the statement's result and
    the response are the app's own; the failure is a WARNING in the log."""
    from flask_observe import containment
    from flask_observe.sql import capture

    monkeypatch.setattr(containment, "_last_warned", {})  # the warnings are rate-limited

    def broken(*args: object) -> None:
        raise RuntimeError("recording broke")

    app = make_app(add_library_routes(memory_engine()))
    monkeypatch.setattr(capture, "_begin", broken)
    with caplog.at_level("WARNING", logger="flask_observe"):
        response = app.test_client().get("/count")
    assert response.status_code == 200 and response.json == {"books": 6}
    assert "db;" not in response.headers["Server-Timing"]
    assert "Flask-Observe could not record a SQL statement" in caplog.text


def test_every_way_sqlalchemy_runs_a_statement_is_counted(make_app: AppFactory) -> None:
    """With parameters, with a list of parameter sets (``executemany``) and without
    parameters: each is counted once, its rows written and read as without us."""
    engine = memory_engine(authors=0)
    app = make_app()
    records = keep_records(app)

    @app.get("/ways")
    def ways() -> dict[str, object]:
        with engine.begin() as conn:
            conn.execute(
                sa.text("insert into author (id, name, password) values (:id, :name, 'pw')"),
                [{"id": 1, "name": "ann"}, {"id": 2, "name": "bob"}],
            )
            one = conn.execute(sa.text("select name from author where id = :id"), {"id": 2})
            count = conn.exec_driver_sql("select count(*) from author")
            return {"name": one.scalar_one(), "count": count.scalar_one()}

    response = app.test_client().get("/ways")
    assert response.json == {"name": "bob", "count": 2}
    (record,) = records
    assert record.sql is not None and record.sql.count == 3


def test_the_apps_own_dialect_listener_added_before_init_app_still_runs(
    make_app: AppFactory,
) -> None:
    """A ``do_execute`` listener the app added before ``init_app`` that does not run the
    statement itself is called first; the statement is then run and counted by us."""
    engine = memory_engine(authors=3)
    seen: list[str] = []

    def watch(cursor: object, statement: str, parameters: object, context: object) -> None:
        seen.append(statement.split()[0])

    sa.event.listen(engine, "do_execute", watch)
    try:
        app = make_app(add_library_routes(engine))
        records = keep_records(app)
        response = app.test_client().get("/count")
    finally:
        sa.event.remove(engine, "do_execute", watch)
    assert response.json == {"books": 6}
    assert seen == ["SELECT"]
    assert records[0].sql is not None and records[0].sql.count == 1


#: An app that imports SQLAlchemy (argv[1]) before ``init_app``, after it (before the
#: first request), or only inside a view; it runs ``select 1`` on every ``/`` request.
IMPORT_SCRIPT = """
import json, sys
from flask import Flask
from flask_observe import Observe

when = sys.argv[1]
if when == "before-init":
    import sqlalchemy
app = Flask("plain")
Observe(app)
imported_at_init = "sqlalchemy" in sys.modules
if when == "after-init":
    import sqlalchemy


@app.get("/")
def index():
    import sqlalchemy as sa

    engine = app.config.setdefault("ENGINE", sa.create_engine("sqlite://"))
    with engine.connect() as connection:
        connection.execute(sa.text("select 1"))
    return "ok"


@app.get("/plain")
def plain():
    return "plain"


client = app.test_client()
plain = client.get("/plain")
report = {
    "imported_at_init": imported_at_init,
    "imported_by_plain_request": "sqlalchemy" in sys.modules,
    "plain": plain.headers["Server-Timing"],
    "db": [client.get("/").headers["Server-Timing"] for _ in range(2)],
}
print(json.dumps(report))
"""


def _import_report(when: str) -> dict[str, t.Any]:
    """Run :data:`IMPORT_SCRIPT` in a fresh interpreter (this one imported SQLAlchemy
    long ago)."""
    run = subprocess.run(
        [sys.executable, "-W", "error", "-c", IMPORT_SCRIPT, when],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return t.cast("dict[str, t.Any]", json.loads(run.stdout))


def test_an_app_that_does_not_use_sqlalchemy_never_imports_it() -> None:
    """SQLAlchemy installed but not imported by the app: neither ``init_app`` nor a
    request imports it (some 80 modules and 25,000 objects more in the process)."""
    report = _import_report("in-view")
    assert report["imported_at_init"] is False
    assert report["imported_by_plain_request"] is False
    assert re.fullmatch(r"app;dur=\d+\.\d{3}", report["plain"])
    # Imported only inside a view after the first request: not observed.
    assert [entry.split(", ")[-1].startswith("db;") for entry in report["db"]] == [False] * 2


@pytest.mark.parametrize("when", ["before-init", "after-init"])
def test_sqlalchemy_imported_by_the_first_request_is_observed(when: str) -> None:
    """Imported before ``init_app`` (the listeners go on there) or after it, as an app
    factory's models do (they go on before the first request is served): every
    statement is counted."""
    report = _import_report(when)
    assert report["imported_at_init"] is (when == "before-init")
    for entry in report["db"]:
        match = DB_ENTRY.search(entry)
        assert match is not None, entry
        assert match.group(2) == "1"
