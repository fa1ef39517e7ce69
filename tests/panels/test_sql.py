"""The SQL panel in the real Flask-DebugToolbar and on the report page: statements
grouped, N+1 flagged with its call site, slow ones highlighted, parameters masked, DB
time on the timeline, EXPLAIN of a SELECT only, gated like every toolbar page."""

from __future__ import annotations

import re

import sqlalchemy as sa
from flask import Flask
from flask_debugtoolbar import DebugToolbarExtension
from sqlalchemy import orm

from flask_observe import Observe
from flask_observe.panels.codec import dump
from flask_observe.panels.codec import load
from flask_observe.panels.report import report_store
from tests.support.apps import make_app
from tests.support.sql import add_library_routes
from tests.support.sql import Author
from tests.support.sql import LAZY_BOOKS
from tests.support.sql import memory_engine
from tests.support.toolbar import PAGE
from tests.support.toolbar import SECRET


def sql_app(engine: sa.Engine, **config: object) -> Flask:
    """A debug app with the toolbar, the library routes, an HTML N+1 page and a signup."""
    app = make_app(
        add_library_routes(engine),
        observe=False,
        name="sql_panel_app",
        TESTING=False,
        DEBUG=True,
        SECRET_KEY=SECRET,
        DEBUG_TB_INTERCEPT_REDIRECTS=False,
        **config,
    )

    @app.get("/page")
    def page() -> str:
        with orm.Session(engine) as session:
            authors = session.scalars(sa.select(Author).order_by(Author.id)).all()
            return PAGE.format(", ".join(f"{a.name}: {len(a.books)}" for a in authors))

    @app.post("/signup")
    def signup() -> dict[str, str]:
        with orm.Session(engine) as session, session.begin():
            session.add(Author(name="ada", password="hunter2"))
        return {"signed": "up"}

    Observe(app)
    DebugToolbarExtension(app)
    return app


def panel_html(html: str) -> str:
    match = re.search(r'<div class="flObserve" id="observe-sql-panel">.*?\n</div>', html, re.S)
    assert match, "no SQL panel in the page"
    return match.group(0)


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&times;", "x")


def test_the_panel_groups_and_flags_the_n_plus_one() -> None:
    app = sql_app(memory_engine(authors=3))
    html = app.test_client().get("/page").get_data(as_text=True)
    assert "flask_observe.panels.sql.SqlPanel" in app.config["DEBUG_TB_PANELS"]
    assert "4 queries in" in html  # the nav subtitle
    panel = panel_html(html)
    summary = text_of(re.search(r'<p id="sql-summary">.*?</p>', panel, re.S).group(0))  # type: ignore[union-attr]
    assert summary.startswith(" 4 queries in ")
    assert "1 repeated (N+1 or duplicates)" in summary
    (repeated,) = re.findall(r'<tr class="[^"]*sql-repeated"[^>]*>.*?</tr>', panel, re.S)
    row = text_of(repeated)
    assert row.startswith(" 3x N+1 ")
    assert re.search(LAZY_BOOKS, row), row
    assert re.search(r"tests/panels/test_sql\.py:\d+ in \S+ \(3x\)", row), row
    statements = re.search(r'<table id="sql-statements">.*?</table>', panel, re.S).group(0)  # type: ignore[union-attr]
    assert statements.count('class="sql-explain"') == 4  # four SELECTs


def test_slow_statements_are_highlighted() -> None:
    app = sql_app(memory_engine(), OBSERVE_SQL_SLOW=1e-9)
    panel = panel_html(app.test_client().get("/page").get_data(as_text=True))
    assert len(re.findall(r'<tr class="[^"]*sql-slow"', panel)) == 4
    assert "4 slow" in text_of(panel)
    calm = sql_app(memory_engine())
    assert "sql-slow" not in panel_html(calm.test_client().get("/page").get_data(as_text=True))


def test_a_json_request_has_its_sql_on_the_report_page_masked() -> None:
    app = sql_app(memory_engine())
    client = app.test_client()
    response = client.post("/signup")
    report_url = response.headers["X-Observe-Report"]
    page = client.get(report_url).get_data(as_text=True)
    assert "<h2>SQL</h2>" in page
    assert "INSERT INTO author (name, password) VALUES (?, ?)" in page
    assert "{name: &#39;ada&#39;, password: &#39;[Filtered]&#39;}" in page
    assert "hunter2" not in page
    assert "db (1 query)" in page  # the DB time on the timeline
    store = report_store(app)
    assert store is not None
    item = store.get(report_url.rsplit("/", 1)[1])
    assert item is not None and item.sql is not None
    assert load(dump(item)) == item  # kept whole in the SQLite history too
    assert "hunter2" not in str(dump(item))


def test_explain_a_select_only_and_only_for_allowed_clients() -> None:
    app = sql_app(memory_engine())
    client = app.test_client()
    report_url = client.get("/authors").headers["X-Observe-Report"]
    report_id = report_url.rsplit("/", 1)[1]
    plan = client.get(f"/_observe/sql/explain/{report_id}/1")
    assert plan.status_code == 200
    body = plan.get_data(as_text=True)
    assert re.search(LAZY_BOOKS, " ".join(body.split())), body
    assert re.search(r'<pre id="sql-explain-plan">[^<]*SCAN book', body), body
    assert client.get(f"/_observe/sql/explain/{report_id}/9").status_code == 404
    assert client.get("/_observe/sql/explain/unknown/0").status_code == 404
    signup_url = client.post("/signup").headers["X-Observe-Report"]
    signup_id = signup_url.rsplit("/", 1)[1]
    report = client.get(signup_url).get_data(as_text=True)
    assert 'class="sql-explain"' not in report  # no link for an INSERT
    assert client.get(f"/_observe/sql/explain/{signup_id}/0").status_code == 400
    app.config["DEBUG_TB_HOSTS"] = ["127.0.0.1"]  # the toolbar's gate, read per request
    assert client.get(f"/_observe/sql/explain/{report_id}/1").status_code == 200
    hidden = app.test_client().get(
        f"/_observe/sql/explain/{report_id}/1", environ_overrides={"REMOTE_ADDR": "10.9.8.7"}
    )
    assert hidden.status_code == 404


def test_a_page_without_statements_says_so() -> None:
    app = sql_app(memory_engine())

    @app.get("/quiet")
    def quiet() -> str:
        return PAGE.format("no database here")

    html = app.test_client().get("/quiet").get_data(as_text=True)
    assert "no statement" in html  # the nav subtitle
    assert "This request ran no SQL statement through SQLAlchemy." in panel_html(html)


def test_with_observe_sql_off_the_panel_says_why() -> None:
    app = sql_app(memory_engine(), OBSERVE_SQL=False)
    html = app.test_client().get("/page").get_data(as_text=True)
    assert "SQL is not observed on this app (OBSERVE_SQL is off" in panel_html(html)
