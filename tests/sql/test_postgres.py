"""The SQL capture, masked parameters and EXPLAIN on a real PostgreSQL server (Debian's,
a throwaway cluster per session) through psycopg 3."""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa
from flask_debugtoolbar import DebugToolbarExtension
from sqlalchemy import orm

from flask_observe import Observe
from flask_observe.sql.explain import explain
from flask_observe.sql.explain import ExplainRefused
from tests.support.apps import make_app
from tests.support.sql import add_library_routes
from tests.support.sql import Author
from tests.support.sql import Base
from tests.support.sql import fill
from tests.support.sql import keep_records

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.support.postgres import Postgres

pytestmark = pytest.mark.services


@pytest.fixture
def engine(postgres: Postgres) -> Iterator[sa.Engine]:
    engine = sa.create_engine(postgres.url)
    Base.metadata.drop_all(engine)
    fill(engine, authors=3)
    yield engine
    Base.metadata.drop_all(engine)
    engine.dispose()


def test_statements_on_postgres_are_counted_with_masked_parameters(engine: sa.Engine) -> None:
    app = make_app(
        add_library_routes(engine), observe=False, TESTING=False, DEBUG=True, SECRET_KEY="s"
    )

    @app.post("/signup")
    def signup() -> dict[str, int]:
        with orm.Session(engine) as session, session.begin():
            author = Author(name="ada", password="hunter2")
            session.add(author)
            session.flush()
            return {"id": author.id}

    Observe(app)
    DebugToolbarExtension(app)
    records = keep_records(app)
    client = app.test_client()
    assert client.get("/authors").json == {"author 0": 2, "author 1": 2, "author 2": 2}
    assert client.post("/signup").status_code == 200
    listing, signed = records
    assert listing.sql is not None and listing.sql.count == 4
    assert signed.sql is not None
    statements = signed.sql.statements  # type: ignore[attr-defined]
    (insert,) = [s for s in statements if s.text.startswith("INSERT")]
    assert insert.text == (
        "INSERT INTO author (name, password) VALUES (%(name)s::VARCHAR, %(password)s::VARCHAR) "
        "RETURNING author.id"
    )
    assert insert.parameters == "{name: 'ada', password: '[Filtered]'}"
    # The secret rules mask whatever stands before "@" in a URL, a user name too.
    assert insert.engine.startswith("postgresql+psycopg://[Filtered]@127.0.0.1:")
    assert insert.call_site is not None
    assert insert.call_site.startswith("tests/sql/test_postgres.py:")


def test_explain_a_recorded_select_with_its_parameters(engine: sa.Engine) -> None:
    plan = explain(
        engine,
        "SELECT book.id, book.title FROM book WHERE %(param_1)s = book.author_id",
        {"param_1": 2},
    )
    assert plan[0].startswith("Seq Scan on book")
    assert plan[1] == "  Filter: ('2'::smallint = author_id)"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("DELETE FROM book", id="delete"),
        pytest.param("SELECT 1; DELETE FROM book", id="second-statement"),
        pytest.param("WITH gone AS (DELETE FROM book RETURNING id) SELECT * FROM gone", id="cte"),
        pytest.param("/* SELECT */ UPDATE book SET title = 'x'", id="comment-first"),
    ],
)
def test_explain_refuses_anything_but_one_select(engine: sa.Engine, text: str) -> None:
    with pytest.raises(ExplainRefused):
        explain(engine, text, None)
    with engine.connect() as connection:
        assert connection.scalar(sa.text("select count(*) from book")) == 6
