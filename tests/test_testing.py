"""``assert_max_statements``: passes within the limit, fails past it naming the repeated
statements with counts and call sites, and is offered as a pytest fixture."""

from __future__ import annotations

import re
import typing as t

import pytest
import sqlalchemy as sa
from sqlalchemy import orm

from flask_observe.testing import assert_max_statements
from tests.support.sql import add_library_routes
from tests.support.sql import Author
from tests.support.sql import LAZY_BOOKS
from tests.support.sql import memory_engine

if t.TYPE_CHECKING:
    from tests.support.apps import AppFactory


def _line_of(path: str, text: str) -> int:
    """The number of the first line of *path* containing *text*."""
    with open(path, encoding="utf-8") as file:
        return next(number for number, line in enumerate(file, 1) if text in line)


def test_within_the_limit_passes_and_counts(make_app: AppFactory) -> None:
    app = make_app(add_library_routes(memory_engine()))
    client = app.test_client()
    with assert_max_statements(2) as block:
        assert client.get("/authors-joined").status_code == 200
    assert block.count == 2
    assert [s.text.split()[0] for s in block.statements] == ["SELECT", "SELECT"]


def test_an_n_plus_one_fails_naming_the_repeated_statement(make_app: AppFactory) -> None:
    app = make_app(add_library_routes(memory_engine(authors=3)))
    client = app.test_client()
    with pytest.raises(AssertionError) as caught:
        with assert_max_statements(2):
            client.get("/authors")
    message = str(caught.value)
    assert message.startswith("4 SQL statements ran, at most 2 expected.\nRepeated statements:\n")
    assert re.search(rf"^  3x {LAZY_BOOKS}$", message, re.M), message
    # The lazy load of author.books, in the view's comprehension.
    line = _line_of("tests/support/sql.py", "return {author.name: len(author.books)")
    assert f"      3x from tests/support/sql.py:{line} in " in message
    assert "All statements:\n  1. SELECT author.id, author.name, author.password FROM author" in (
        message
    )


def test_outside_requests_and_only_the_given_engine() -> None:
    watched = memory_engine()
    other = memory_engine()
    with assert_max_statements(1, engine=watched) as block:
        with other.connect() as connection:
            for _ in range(3):
                connection.execute(sa.text("select 1"))
        with orm.Session(watched) as session:
            session.get(Author, 1)
    assert block.count == 1
    assert block.statements[0].call_site is not None
    assert block.statements[0].call_site.startswith("tests/test_testing.py:")
    assert block.statements[0].call_site.endswith(
        " in test_outside_requests_and_only_the_given_engine"
    )


def test_parameters_are_masked_in_the_statements() -> None:
    engine = memory_engine(authors=0)
    with assert_max_statements(5) as block:
        with orm.Session(engine) as session, session.begin():
            session.add(Author(name="ada", password="hunter2"))
    (insert,) = [s for s in block.statements if s.text.startswith("INSERT")]
    assert insert.parameters == "{name: 'ada', password: '[Filtered]'}"


def test_an_error_in_the_block_is_not_hidden_and_listening_stops() -> None:
    engine = memory_engine()
    block = assert_max_statements(0)
    with pytest.raises(ZeroDivisionError):
        with block:
            with engine.connect() as connection:
                connection.execute(sa.text("select 1"))
            1 / 0  # noqa: B018
    with engine.connect() as connection:
        connection.execute(sa.text("select 1"))
    assert block.count == 1


@pytest.mark.parametrize("limit", [-1, 1.5, True])
def test_a_bad_limit_is_refused(limit: t.Any) -> None:
    with pytest.raises(ValueError, match="count of 0 or more"):
        assert_max_statements(limit)


def test_the_pytest_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sqlalchemy as sa

        def test_too_many(assert_max_statements):
            engine = sa.create_engine("sqlite://")
            with assert_max_statements(1):
                with engine.connect() as connection:
                    for number in range(3):
                        connection.execute(sa.text(f"select {number}"))

        def test_fine(assert_max_statements):
            engine = sa.create_engine("sqlite://")
            with assert_max_statements(1):
                with engine.connect() as connection:
                    connection.execute(sa.text("select 1"))
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*3 SQL statements ran, at most 1 expected.",
            "*Repeated statements:",
            "*  3x select ?",
            "*3x from test_the_pytest_fixture.py:8 in test_too_many",
        ]
    )
