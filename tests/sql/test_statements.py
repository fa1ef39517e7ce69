"""What is kept of a statement: normalised text, masked parameters, call site, groups."""

from __future__ import annotations

import pytest

from flask_observe.secrets import Scrubber
from flask_observe.sql import group_statements
from flask_observe.sql import normalise
from flask_observe.sql import Statement
from flask_observe.sql.statements import mask_parameters


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        pytest.param(
            "SELECT * FROM book WHERE id = 3", "SELECT * FROM book WHERE id = ?", id="number"
        ),
        pytest.param(
            "SELECT * FROM t WHERE name = 'O''Brien' AND x = 1.5",
            "SELECT * FROM t WHERE name = ? AND x = ?",
            id="string-and-float",
        ),
        pytest.param(
            "SELECT anon_1.id FROM t1 AS anon_1 WHERE anon_1.c2 = ?",
            "SELECT anon_1.id FROM t1 AS anon_1 WHERE anon_1.c2 = ?",
            id="digits-in-names-stay",
        ),
        pytest.param(
            "SELECT * FROM t WHERE id IN (?, ?, ?)", "SELECT * FROM t WHERE id IN (...)", id="in"
        ),
        pytest.param(
            "SELECT * FROM t WHERE id IN (%(id_1_1)s, %(id_1_2)s)",
            "SELECT * FROM t WHERE id IN (...)",
            id="pyformat",
        ),
        pytest.param(
            "SELECT $1::int, a::text FROM t WHERE b = :b",
            "SELECT ?::int, a::text FROM t WHERE b = ?",
            id="numeric-casts-named",
        ),
        pytest.param(
            "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)",
            "INSERT INTO t (a, b) VALUES (...)",
            id="multi-row-values",
        ),
        pytest.param("SELECT\n  a\n\tFROM   t", "SELECT a FROM t", id="white-space"),
    ],
)
def test_normalise(text: str, normalised: str) -> None:
    assert normalise(text) == normalised


@pytest.mark.parametrize(
    ("parameters", "names", "many", "shown"),
    [
        pytest.param(
            {"name": "ada", "password": "hunter2"},
            None,
            False,
            "{name: 'ada', password: '[Filtered]'}",
            id="dict",
        ),
        pytest.param(
            ("ada", "hunter2"),
            ["name", "password_1"],
            False,
            "{name: 'ada', password_1: '[Filtered]'}",
            id="positional-named-by-the-compiled-statement",
        ),
        pytest.param(
            ("ada", "api_key=abc123 rest"),
            None,
            False,
            "('ada', 'api_key=[Filtered]')",
            id="positional-secret-inside-text",
        ),
        pytest.param(
            ("4111 1111 1111 1111", 7),
            None,
            False,
            "('[Filtered]', 7)",
            id="card-number",
        ),
        pytest.param(
            [("a", "x"), ("b", "y")],
            ["name", "token"],
            True,
            "[{name: 'a', token: '[Filtered]'}, {name: 'b', token: '[Filtered]'}]",
            id="executemany",
        ),
    ],
)
def test_parameters_are_masked(
    parameters: object, names: list[str] | None, many: bool, shown: str
) -> None:
    assert mask_parameters(Scrubber(), parameters, names, many) == shown


def test_a_long_executemany_shows_ten_sets() -> None:
    shown = mask_parameters(Scrubber(), [(n,) for n in range(25)], None, True)
    assert shown.startswith("[(0), (1), ") and shown.endswith("(9), ... 15 more]")


def _statement(text: str, parameters: str, site: str = "app.py:3 in view") -> Statement:
    return Statement(text, 0.001, 0.0, parameters, site, "sqlite://")


def test_groups_flag_repeats_and_count_duplicates() -> None:
    statements = [
        _statement("SELECT * FROM author", "()"),
        _statement("SELECT * FROM book WHERE author_id = ?", "(1,)", "app.py:9 in view"),
        _statement("SELECT * FROM book WHERE author_id = ?", "(2,)", "app.py:9 in view"),
        _statement("SELECT * FROM book WHERE author_id = ?", "(2,)", "app.py:12 in other"),
    ]
    first, second = group_statements(statements, repeats=3)
    assert (first.text, first.count, first.repeated) == ("SELECT * FROM author", 1, False)
    assert (second.count, second.repeated, second.duplicates) == (3, True, 1)
    assert second.call_sites == [("app.py:9 in view", 2), ("app.py:12 in other", 1)]
    assert second.seconds == pytest.approx(0.003)
    (_, second) = group_statements(statements, repeats=4)
    assert not second.repeated
