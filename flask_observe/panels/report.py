"""Request snapshots shown by the Observe panel, and the report store behind
``X-Observe-Report`` and the history.

Every request of an allowed client gets a report id in a ``before_request`` hook; once
the body is closed a finish hook keeps a :class:`Snapshot` of the request (plain
values, never the request's objects) in a bounded :class:`ReportStore`, oldest evicted
first, whose newest entries are the history. The toolbar only injects itself into HTML
pages: any other response (JSON, a stream, an HTMX fragment) names its report in
``X-Observe-Report: /_observe/report/<id>``.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
import typing as t
from secrets import token_urlsafe
from time import perf_counter

from flask import request
from flask import url_for
from markupsafe import Markup

from ..containment import contained
from ..record import current_record
from ..record import format_server_timing
from ..state import find_state
from .access import BLUEPRINT_NAME
from .access import request_allowed
from .access import TOOLBAR_BLUEPRINT
from .sql_report import explain_store
from .sql_report import sql_report
from .templating import shorten
from .timeline import capture
from .timeline import render_svg
from .timeline import TOOLBAR_KEY
from .timeline import VIEW_SPAN_KEY

if t.TYPE_CHECKING:
    from flask import Flask
    from flask import Response

    from ..record import RequestRecord
    from ..secrets import Scrubber
    from ..state import FinishHook
    from .heap import Tier1
    from .heap import Tier2
    from .profiler.report import RequestProfile
    from .sql_report import SqlReport
    from .timeline import Timeline

#: Response header carrying the report URL.
REPORT_HEADER = "X-Observe-Report"
#: ``record.extra`` keys used by the panels.
REPORT_KEY = "observe.report"
MEMORY_KEY = "observe.memory"
VIEW_KEY = "observe.view"
PROFILE_KEY = "observe.profile"


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """What the Observe and Memory panels show about one request.

    :param final: the request is over: times and ``Server-Timing`` are the ones sent.
        Otherwise (the toolbar renders before the headers are sent) they are the values
        as of rendering.
    """

    method: str
    path: str
    endpoint: str | None
    status: int
    final: bool
    total: float | None
    view: float | None
    timers: tuple[tuple[str, float, bool], ...]
    server_timing: str | None
    metric_lines: tuple[str, ...] | None
    error: tuple[str, str] | None
    event_id: str | None
    memory: Tier1 | None = None
    heap: Tier2 | None = None
    profile: RequestProfile | None = None
    id: str = ""
    #: Where the time went (:mod:`~flask_observe.panels.timeline`).
    timeline: Timeline | None = None
    #: When the snapshot was taken (seconds since the epoch): as the request completed,
    #: for a stored report; the history is in this order.
    at: float = 0.0
    #: The SQL statements (:mod:`~flask_observe.panels.sql`), when the request ran any.
    sql: SqlReport | None = None

    @property
    def toolbar_seconds(self) -> float | None:
        """Flask-DebugToolbar's own work on this HTML page (so far, if not
        :attr:`final`), or ``None`` when the toolbar did not render into the response.

        .. versionadded:: 0.3.0
        """
        return self.timeline.toolbar_seconds if self.timeline is not None else None

    @property
    def app_total(self) -> float | None:
        """:attr:`total` without the toolbar's own work: the app's time.

        .. versionadded:: 0.3.0
        """
        toolbar = self.toolbar_seconds
        if self.total is None or toolbar is None:
            return self.total
        return max(self.total - toolbar, 0.0)

    def timeline_svg(self) -> Markup:
        """The timeline as inline SVG (empty when the request has none).

        .. versionadded:: 0.3.0
        """
        if self.timeline is None:
            return Markup("")
        element_id = f"observe-timeline-{self.id or 'now'}"
        return Markup(render_svg(self.timeline, element_id))  # every text in it is escaped


class Reports(t.Protocol):
    """Where a :class:`ReportStore` keeps its snapshots: this process's memory
    (:class:`MemoryReports`) or a SQLite file shared by processes
    (:class:`~flask_observe.panels.sqlite_store.SqliteReports`).

    .. versionadded:: 0.3.0
    """

    def add(self, item: Snapshot) -> None:
        """Keep *item*, evicting the oldest beyond the size."""

    def get(self, report_id: str) -> Snapshot | None:
        """The snapshot stored under *report_id*, or ``None``."""

    def recent(self, limit: int) -> list[Snapshot]:
        """The *limit* newest snapshots, newest first."""

    def __len__(self) -> int:
        """How many snapshots are kept."""


class MemoryReports:
    """The last *size* snapshots by id in this process; adding one more evicts the
    oldest. Thread-safe.

    :param size: how many snapshots to keep.

    .. versionadded:: 0.3.0
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: collections.OrderedDict[str, Snapshot] = collections.OrderedDict()
        self._lock = threading.Lock()

    def add(self, item: Snapshot) -> None:
        """Keep *item* under its id, evicting the oldest beyond :attr:`size`."""
        with self._lock:
            self._items[item.id] = item
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get(self, report_id: str) -> Snapshot | None:
        """The snapshot stored under *report_id*, or ``None`` (unknown or evicted)."""
        with self._lock:
            return self._items.get(report_id)

    def recent(self, limit: int) -> list[Snapshot]:
        """The *limit* newest snapshots, newest first."""
        with self._lock:
            items = list(self._items.values())
        return items[: -limit - 1 : -1] if limit > 0 else []

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


class ReportStore:
    """The reports behind ``X-Observe-Report`` and the history: the last *size*
    snapshots by id, oldest evicted first; :meth:`recent` is the history.

    Kept in the app's Flask-Observe state (:func:`report_store`).

    :param size: how many snapshots to keep (``OBSERVE_REPORT_STORE_SIZE``).
    :param reports: where they are kept; in this process's memory by default.
    :param history_size: how many the history lists (``OBSERVE_HISTORY_SIZE``, at
        most *size*: every row links to its report).

    .. versionchanged:: 0.3.0
        The *reports* and *history_size* parameters, :meth:`recent`.
    """

    def __init__(
        self, size: int, reports: Reports | None = None, history_size: int | None = None
    ) -> None:
        self.size = size
        self.history_size = size if history_size is None else history_size
        self.reports: Reports = reports if reports is not None else MemoryReports(size)

    def add(self, item: Snapshot) -> None:
        """Keep *item* under its id, evicting the oldest beyond :attr:`size`."""
        self.reports.add(item)

    def get(self, report_id: str) -> Snapshot | None:
        """The snapshot stored under *report_id*, or ``None`` (unknown or evicted)."""
        return self.reports.get(report_id)

    def recent(self, limit: int | None = None) -> list[Snapshot]:
        """The history: the newest snapshots first, at most *limit* (default
        :attr:`history_size`).

        .. versionadded:: 0.3.0
        """
        return self.reports.recent(self.history_size if limit is None else limit)

    def __len__(self) -> int:
        return len(self.reports)


def report_store(app: Flask) -> ReportStore | None:
    """The report store of *app*, or ``None`` when it has none (Flask-Observe is not
    initialised there, or its panels are off).

    :param app: the Flask application.
    """
    state = find_state(app)
    return state.part(ReportStore) if state is not None else None


def snapshot(
    record: RequestRecord,
    *,
    path: str,
    final: bool,
    scrubber: Scrubber,
    server_timing: bool = True,
    report_id: str = "",
) -> Snapshot:
    """Copy what the panels show out of *record*.

    :param record: the request's record.
    :param path: the request path.
    :param final: the body is closed (the finish hook); else computed at render time.
    :param scrubber: the app's secret rules, applied to the exception's text.
    :param server_timing: whether the app sends ``Server-Timing``.
    :param report_id: the report id, when stored.
    """
    extra = record.extra or {}
    now = perf_counter()
    if final:
        total = record.total_seconds
        timing = record.server_timing
    else:
        total = now - record.start
        timing = format_server_timing(total, record.timers) if server_timing else None
    error = None
    if record.exception is not None:
        exc = record.exception
        error = (type(exc).__qualname__, shorten(scrubber.scrub_text(str(exc)), 2000))
    lines = tuple(record.metric_lines) if record.metric_lines is not None else None
    memory = extra.get(MEMORY_KEY, (None, None))
    return Snapshot(
        method=record.method if final else request.method,
        path=path,
        endpoint=record.endpoint,
        status=record.status,
        final=final,
        total=total,
        view=extra.get(VIEW_KEY),
        timers=tuple((timer.name, timer.seconds, timer.metric) for timer in record.timers),
        server_timing=timing,
        metric_lines=lines,
        error=error,
        event_id=record.event_id,
        memory=memory[0],
        heap=memory[1],
        profile=extra.get(PROFILE_KEY),
        id=report_id,
        timeline=capture(record, final=final, now=now),
        at=time.time(),
        sql=sql_report(record) if record.sql is not None else None,
    )


def keep_report(record: RequestRecord, path: str) -> str:
    """Have the finish hook store this request's final values; return the report id.

    :param record: the request's record.
    :param path: the request path.
    """
    if record.extra is None:
        record.extra = {}
    existing = record.extra.get(REPORT_KEY)
    if existing is not None:
        return t.cast(str, existing[0])
    report_id = token_urlsafe(12)
    # The method too: a request whose error propagates (debug mode) never starts its
    # response, where the middleware notes it.
    record.extra[REPORT_KEY] = (report_id, path, request.method)
    return report_id


def note_view_time(seconds: float) -> None:
    """Keep the view's duration on the current record (the innermost wrapper wins:
    panels wrap each other's views, the first to finish measured the least else).

    :param seconds: how long the view ran.
    """
    record = current_record()
    if record is not None:
        end = perf_counter()
        if record.extra is None:
            record.extra = {}
        record.extra.setdefault(VIEW_KEY, seconds)
        record.extra.setdefault(VIEW_SPAN_KEY, (end - seconds, end))


def note_toolbar_start() -> None:
    """Note on the current record that Flask-DebugToolbar starts its work on the
    response (it is injecting itself into an HTML page); the first note wins.

    .. versionadded:: 0.3.0
    """
    record = current_record()
    if record is not None:
        if record.extra is None:
            record.extra = {}
        record.extra.setdefault(TOOLBAR_KEY, perf_counter())


def _wants_report(response: Response) -> bool:
    """Non-HTML responses, streams and HTMX fragments: the toolbar cannot show them."""
    if request.headers.get("HX-Request"):
        return True
    return response.mimetype != "text/html" or not response.is_sequence


def install_report_hooks(
    app: Flask, store: ReportStore, scrubber: Scrubber, server_timing: bool
) -> FinishHook:
    """Add the hooks giving every request of an allowed client a report id (the
    history) and the ``X-Observe-Report`` header to *app*; return the store's finish
    hook.

    :param app: the Flask application.
    :param store: its report store.
    :param scrubber: its secret rules (the finish hook runs outside the app context).
    :param server_timing: whether the app sends ``Server-Timing``.
    """
    skip_blueprints = frozenset((BLUEPRINT_NAME, TOOLBAR_BLUEPRINT))

    def report_id() -> str | None:
        """The current request's report id, given now to a request the history keeps:
        an allowed client's, neither our pages nor static files."""
        record = current_record()
        if record is None:
            return None
        if record.extra is not None and REPORT_KEY in record.extra:
            return t.cast(str, record.extra[REPORT_KEY][0])
        endpoint = request.endpoint or ""
        if (
            request.blueprint in skip_blueprints
            or endpoint == "static"
            or endpoint.endswith(".static")
            or not request_allowed()
        ):
            return None
        return keep_report(record, request.path)

    def keep_in_history() -> None:
        """``before_request``: give the request its report id before the view runs, so
        a view that raises into the debugger is kept too. A failure is logged."""
        with contained("history"):
            report_id()

    def add_report_header(response: Response) -> Response:
        """``after_request``: name the report's URL on responses the toolbar cannot
        show (and give a report id to a request an earlier ``before_request`` hook
        answered). A failure is logged and the response goes out unchanged.
        """
        with contained("X-Observe-Report header"):
            kept = report_id()
            if kept is not None and _wants_report(response):
                response.headers[REPORT_HEADER] = url_for(
                    f"{BLUEPRINT_NAME}.report", report_id=kept
                )
        return response

    def store_report(record: RequestRecord) -> None:
        """Finish hook: keep the snapshot of a request that got a report URL."""
        extra = record.extra
        if not extra or REPORT_KEY not in extra:
            return
        report_id, path, method = extra[REPORT_KEY]
        item = snapshot(
            record,
            path=path,
            final=True,
            scrubber=scrubber,
            server_timing=server_timing,
            report_id=report_id,
        )
        if not item.method:
            item = dataclasses.replace(item, method=method)
        store.add(item)
        if record.sql is not None:
            explains = explain_store(app)
            if explains is not None:
                explains.keep(report_id, record)

    app.before_request(keep_in_history)
    app.after_request(add_report_header)
    return store_report
