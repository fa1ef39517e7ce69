"""EXPLAIN on demand: the plan of a recorded SELECT, asked of the engine that ran it.

Only a single ``SELECT`` is explained, never anything else: the text must start with
``SELECT`` (after comments and white space) and hold no ``;`` outside its string
literals, so no write, no ``WITH`` (PostgreSQL runs data-modifying CTEs) and no second
statement can get through. The statement is re-run as ``EXPLAIN <text>`` (SQLite:
``EXPLAIN QUERY PLAN``), never with ``ANALYZE``, with the parameters recorded when it
ran, inside a transaction that is rolled back.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import re
import typing as t

if t.TYPE_CHECKING:
    from sqlalchemy.engine import Engine

#: Comments and white space before the first keyword.
_LEADING = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/)*", re.S)
#: String literals and quoted names, skipped when looking for ``;``.
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"")


class ExplainRefused(ValueError):
    """The statement is not a single ``SELECT``: it is not explained.

    .. versionadded:: 0.3.0
    """


def is_select(text: str) -> bool:
    """Whether *text* is one ``SELECT`` statement and nothing else (see the module)."""
    body = text[_LEADING.match(text).end() :]  # type: ignore[union-attr]
    if not re.match(r"select\b", body, re.I):
        return False
    unquoted = _QUOTED.sub("", body).rstrip().rstrip(";")
    return ";" not in unquoted and "'" not in unquoted and "/*" not in unquoted


def explain(engine: Engine, text: str, parameters: object) -> list[str]:
    """The plan of the ``SELECT`` *text* run with *parameters* on *engine*, one line per
    row.

    :raises ExplainRefused: *text* is not a single ``SELECT``.
    """
    if not is_select(text):
        raise ExplainRefused("only a SELECT statement is explained")
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as connection:
        transaction = connection.begin()
        try:
            if parameters is None:
                rows = connection.exec_driver_sql(prefix + text).all()
            else:
                rows = connection.exec_driver_sql(prefix + text, parameters).all()  # type: ignore[arg-type]
        finally:
            transaction.rollback()
    return [" | ".join(str(value) for value in row) for row in rows]
