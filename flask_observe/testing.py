"""Test helpers for apps that use Flask-Observe: fail a test that runs too many SQL
statements, and say which ones repeat and where they come from.

Like Django's ``assertNumQueries``, with the N+1 detail::

    from flask_observe.testing import assert_max_statements

    def test_author_list_is_not_n_plus_one(client):
        with assert_max_statements(2):
            client.get("/authors")

A block that runs more statements than allowed raises :class:`AssertionError` listing
each repeated statement (normalised, with how many times it ran and from which line of
the app). The pytest plugin (installed with the package) offers the same function as the
``assert_max_statements`` fixture. Needs SQLAlchemy; the app need not use Flask-Observe.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import sys
import typing as t
from time import perf_counter

from .secrets import default_scrubber
from .sql.statements import call_sites
from .sql.statements import group_statements
from .sql.statements import mask_parameters
from .sql.statements import Statement

if t.TYPE_CHECKING:
    from types import TracebackType

    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

#: How many runs of one normalised statement the failure message calls repeated.
REPEATED = 2


class assert_max_statements:  # noqa: N801 - used as a function, like pytest.raises
    """Fail when the block runs more than *limit* SQL statements.

    Counts the statements of every engine of the process (or of *engine* alone) run
    while the block is active, in any thread, in a request or not.

    :param limit: the most statements allowed, 0 or more.
    :param engine: count only this engine's statements (an async engine counts
        through its ``sync_engine``).
    :raises AssertionError: on leaving the block, when it ran more than *limit*: the
        message names the repeated statements with their counts and call sites.

    The object it returns holds the statements run so far (:attr:`statements`).

    .. versionadded:: 0.3.0
    """

    def __init__(self, limit: int, engine: Engine | AsyncEngine | None = None) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"assert_max_statements() needs a count of 0 or more, got {limit!r}")
        self.limit = limit
        self._target: t.Any = getattr(engine, "sync_engine", engine)
        #: The statements run inside the block, in order.
        self.statements: list[Statement] = []
        self._starts: dict[int, float] = {}
        self._began = 0.0

    def __enter__(self) -> assert_max_statements:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        if self._target is None:
            self._target = Engine
        self._began = perf_counter()
        event.listen(self._target, "before_cursor_execute", self._before)
        event.listen(self._target, "after_cursor_execute", self._after)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        from sqlalchemy import event

        event.remove(self._target, "before_cursor_execute", self._before)
        event.remove(self._target, "after_cursor_execute", self._after)
        if kind is None and len(self.statements) > self.limit:
            raise AssertionError(self.report())

    @property
    def count(self) -> int:
        """How many statements ran in the block so far."""
        return len(self.statements)

    def report(self) -> str:
        """The failure message: the count, then the repeated statements (most first)
        with their call sites, then every statement in order."""
        lines = [f"{self.count} SQL statements ran, at most {self.limit} expected."]
        groups = group_statements(self.statements, REPEATED)
        repeated = sorted((g for g in groups if g.repeated), key=lambda g: -g.count)
        if repeated:
            lines.append("Repeated statements:")
            for group in repeated:
                lines.append(f"  {group.count}x {group.text}")
                for site, count in group.call_sites:
                    lines.append(f"      {count}x from {site}")
        lines.append("All statements:")
        for number, statement in enumerate(self.statements, 1):
            where = f"  [{statement.call_site}]" if statement.call_site else ""
            lines.append(f"  {number}. {' '.join(statement.text.split())}{where}")
        return "\n".join(lines)

    def _before(self, conn: t.Any, cursor: t.Any, *args: t.Any) -> None:
        self._starts[id(cursor)] = perf_counter()

    def _after(
        self,
        conn: t.Any,
        cursor: t.Any,
        statement: str,
        parameters: t.Any,
        context: t.Any,
        executemany: bool,
    ) -> None:
        end = perf_counter()
        start = self._starts.pop(id(cursor), end)
        names = getattr(getattr(context, "compiled", None), "positiontup", None)
        self.statements.append(
            Statement(
                text=statement,
                seconds=end - start,
                offset=start - self._began,
                parameters=mask_parameters(default_scrubber, parameters, names, executemany),
                call_site=call_sites.find(sys._getframe(1)),
                engine=conn.engine.url.render_as_string(hide_password=True),
                many=executemany,
            )
        )
