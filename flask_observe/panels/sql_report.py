"""What the SQL panel shows of one request (:class:`SqlReport`: plain values, no
parameter unmasked, safe to store and send as JSON), and the statements EXPLAIN may
re-run, kept in this process only (:class:`ExplainStore`).

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import typing as t

from ..sql.capture import SqlSettings
from ..sql.explain import is_select
from ..sql.statements import group_statements
from ..state import find_state
from .templating import shorten

if t.TYPE_CHECKING:
    from flask import Flask

    from ..record import RequestRecord
    from ..sql.statements import Statement


class SqlRow(t.NamedTuple):
    """One statement as the panel shows it."""

    number: int
    text: str
    seconds: float
    offset: float
    parameters: str
    call_site: str | None
    engine: str
    slow: bool
    #: A ``SELECT`` whose EXPLAIN can be asked for.
    explainable: bool


class SqlGroupRow(t.NamedTuple):
    """The runs of one normalised statement."""

    text: str
    runs: int
    seconds: float
    duplicates: int
    repeated: bool
    call_sites: tuple[tuple[str, int], ...]


@dataclasses.dataclass(frozen=True)
class SqlReport:
    """What the SQL panel shows of one request: plain values, no parameter unmasked.

    .. versionadded:: 0.3.0
    """

    count: int
    seconds: float
    slow: float
    repeats: int
    groups: tuple[SqlGroupRow, ...]
    statements: tuple[SqlRow, ...]

    @property
    def repeated(self) -> int:
        """How many groups are flagged as repeated."""
        return sum(1 for group in self.groups if group.repeated)

    @property
    def slow_count(self) -> int:
        """How many statements are slow."""
        return sum(1 for row in self.statements if row.slow)


def sql_report(record: RequestRecord) -> SqlReport | None:
    """The :class:`SqlReport` of *record*, ``None`` when it ran no statement."""
    tally = record.sql
    statements: list[Statement] = getattr(tally, "statements", [])
    settings = getattr(tally, "settings", None)
    if tally is None or not isinstance(settings, SqlSettings):
        return None
    groups = group_statements(statements, settings.repeats)
    groups.sort(key=lambda group: (not group.repeated, -group.seconds))
    return SqlReport(
        count=tally.count,
        seconds=tally.seconds,
        slow=settings.slow,
        repeats=settings.repeats,
        groups=tuple(
            SqlGroupRow(
                shorten(group.text, 2000),
                group.count,
                group.seconds,
                group.duplicates,
                group.repeated,
                tuple(group.call_sites),
            )
            for group in groups
        ),
        statements=tuple(
            SqlRow(
                index,
                shorten(statement.text, 2000),
                statement.seconds,
                statement.offset,
                shorten(statement.parameters, 500),
                statement.call_site,
                statement.engine,
                statement.seconds >= settings.slow,
                not statement.many
                and statement.engine_ref is not None
                and is_select(statement.text),
            )
            for index, statement in enumerate(statements)
        ),
    )


class ExplainStore:
    """The statements of the last *size* reports, by report id, with what EXPLAIN needs
    (engine, text, parameters as the driver got them), kept in this process only.

    :param size: how many reports' statements to keep (``OBSERVE_REPORT_STORE_SIZE``).

    .. versionadded:: 0.3.0
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: collections.OrderedDict[str, list[Statement]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def keep(self, report_id: str, record: RequestRecord) -> None:
        """Keep the statements of *record* under *report_id*."""
        statements = getattr(record.sql, "statements", None)
        if not report_id or not statements:
            return
        with self._lock:
            self._items[report_id] = statements
            self._items.move_to_end(report_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get(self, report_id: str, index: int) -> Statement | None:
        """Statement *index* of the report *report_id*, if kept."""
        with self._lock:
            statements = self._items.get(report_id)
        if statements is None or not 0 <= index < len(statements):
            return None
        return statements[index]


def explain_store(app: Flask) -> ExplainStore | None:
    """The app's :class:`ExplainStore`, ``None`` without the panels."""
    state = find_state(app)
    return state.part(ExplainStore) if state is not None else None
