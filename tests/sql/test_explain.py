"""EXPLAIN on demand on SQLite: one SELECT only, with its recorded parameters."""

from __future__ import annotations

import typing as t

import pytest
import sqlalchemy as sa

from flask_observe.sql.explain import explain
from flask_observe.sql.explain import ExplainRefused
from flask_observe.sql.explain import is_select
from tests.support.sql import fill


@pytest.mark.parametrize(
    ("text", "allowed"),
    [
        pytest.param("SELECT * FROM book", True, id="select"),
        pytest.param("  -- a comment\n/* another */ select 1;", True, id="comments-and-semicolon"),
        pytest.param("SELECT ';' FROM book WHERE title = 'a;b'", True, id="semicolon-in-string"),
        pytest.param("INSERT INTO book VALUES (1)", False, id="insert"),
        pytest.param("SELECT 1; DROP TABLE book", False, id="two-statements"),
        pytest.param("WITH x AS (SELECT 1) SELECT * FROM x", False, id="with"),
        pytest.param("SELECTION", False, id="not-a-keyword"),
        pytest.param("SELECT 'unclosed; DROP TABLE book", False, id="unbalanced-quote"),
        pytest.param("SELECT 1 /* ; */", False, id="comment-after"),
        pytest.param("PRAGMA table_info(book)", False, id="pragma"),
    ],
)
def test_is_select(text: str, allowed: bool) -> None:
    assert is_select(text) is allowed


def test_explain_on_sqlite_with_parameters(tmp_path: t.Any) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/plan.db")
    fill(engine, authors=2)
    plan = explain(engine, "SELECT book.id FROM book WHERE book.author_id = ?", (1,))
    assert len(plan) == 1 and plan[0].endswith("SCAN book"), plan
    with pytest.raises(ExplainRefused):
        explain(engine, "DELETE FROM book", None)
    with engine.connect() as connection:
        assert connection.scalar(sa.text("select count(*) from book")) == 4
    engine.dispose()
