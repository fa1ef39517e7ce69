"""A picture of one request: where its time went, as a waterfall drawn in inline SVG.

:func:`capture` copies the request's clock out of its record as offsets from the start
(plain values, kept in the report); :func:`render_svg` draws them on the server, one
row per span: before the view, the view, each ``timed`` and user timer, after the view,
Flask-DebugToolbar's own work (marked apart from the app's), and sending the body. No
script; every text is escaped and each bar has a ``<title>`` shown on hover.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import dataclasses
import html
import typing as t

if t.TYPE_CHECKING:
    from ..record import RequestRecord

#: ``record.extra`` key: ``(start, end)`` of the view, ``perf_counter`` values.
VIEW_SPAN_KEY = "observe.view_span"
#: ``record.extra`` key: when the toolbar began its work on the response
#: (``perf_counter``), set only when it injects itself into an HTML page.
TOOLBAR_KEY = "observe.toolbar"

#: Width of the drawing in SVG user units (the SVG scales to its container).
WIDTH = 800.0
#: Width of the label column.
LABEL = 230.0
#: Height of one row.
ROW = 20
#: Height of the axis row.
AXIS = 22
#: Timer rows drawn at most (the rest are counted in a last row).
MAX_TIMERS = 30

#: Kinds of span, their fill colour and what the legend calls them.
KINDS = {
    "app": ("#4e79a7", "your app"),
    "timer": ("#59a14f", "a timer of yours"),
    "toolbar": ("#e15759", "Flask-DebugToolbar (not your app)"),
    "server": ("#9c9c9c", "the server"),
}


@dataclasses.dataclass(frozen=True)
class Timeline:
    """One request's clock as offsets in seconds from its start.

    :param final: the response is complete; else the clock was read while the toolbar
        rendered (:attr:`now`).
    :param now: when the clock was read.
    :param view: the view's ``(start, end)``, when a panel timed it.
    :param toolbar: when the toolbar began its work on an HTML page, if it did.
    :param headers: when the status and headers went to the server.
    :param end: when the body was closed.
    :param timers: ``(name, start, seconds)`` per timer; *start* is ``None`` for a timer
        noted without its end time.
    """

    final: bool
    now: float
    view: tuple[float, float] | None = None
    toolbar: float | None = None
    headers: float | None = None
    end: float | None = None
    timers: tuple[tuple[str, float | None, float], ...] = ()

    @property
    def toolbar_seconds(self) -> float | None:
        """How long the toolbar worked on this response (so far, if not final)."""
        if self.toolbar is None:
            return None
        stop = self.headers if self.headers is not None else self.now
        return max(stop - self.toolbar, 0.0)

    @property
    def total(self) -> float:
        """The span drawn: until the body was closed, else until :attr:`now`."""
        return self.end if self.end is not None else (self.headers or self.now)


class Span(t.NamedTuple):
    """One bar of the waterfall."""

    label: str
    start: float
    seconds: float
    kind: str


def capture(record: RequestRecord, *, final: bool, now: float) -> Timeline:
    """The :class:`Timeline` of *record*, read at *now* (a ``perf_counter`` value).

    :param record: the request's record.
    :param final: the body is closed.
    :param now: the time of reading.
    """
    zero = record.start
    extra = record.extra or {}
    view = extra.get(VIEW_SPAN_KEY)
    toolbar = extra.get(TOOLBAR_KEY)
    timers = tuple(
        (
            timer.name,
            timer.end - timer.seconds - zero if timer.end is not None else None,
            timer.seconds,
        )
        for timer in record.timers
    )
    statements = getattr(record.sql, "statements", None)
    if statements:  # the DB time: from the first statement's start, its total length
        count = record.sql.count  # type: ignore[union-attr]
        label = f"db ({count} quer{'y' if count == 1 else 'ies'})"
        timers += ((label, statements[0].offset, record.sql.seconds),)  # type: ignore[union-attr]
    return Timeline(
        final=final,
        now=now - zero,
        view=(view[0] - zero, view[1] - zero) if view is not None else None,
        toolbar=toolbar - zero if toolbar is not None else None,
        headers=record.headers_at - zero if final and record.headers_at is not None else None,
        end=record.end - zero if final and record.end is not None else None,
        timers=timers,
    )


def spans(timeline: Timeline) -> list[Span]:
    """The bars of *timeline*, top to bottom."""
    rows: list[Span] = []
    view = timeline.view
    after_view = view[1] if view is not None else 0.0
    response = timeline.headers if timeline.headers is not None else timeline.now
    if view is not None:
        rows.append(Span("before the view (routing, hooks)", 0.0, view[0], "app"))
        rows.append(Span("view", view[0], view[1] - view[0], "app"))
    for name, start, seconds in timeline.timers[:MAX_TIMERS]:
        if start is None:  # noted by hand: drawn from the view's start
            start = view[0] if view is not None else 0.0
            name += " (start unknown)"
        rows.append(Span(f"timer {name}", start, seconds, "timer"))
    if len(timeline.timers) > MAX_TIMERS:
        rows.append(Span(f"{len(timeline.timers) - MAX_TIMERS} more timers", 0.0, 0.0, "timer"))
    if timeline.toolbar is not None:
        if view is not None:
            rows.append(
                Span(
                    "after the view (response, hooks)",
                    after_view,
                    timeline.toolbar - after_view,
                    "app",
                )
            )
        label = "toolbar rendering" if timeline.final else "toolbar rendering (so far)"
        rows.append(Span(label, timeline.toolbar, response - timeline.toolbar, "toolbar"))
    elif view is not None and timeline.headers is not None:
        rows.append(
            Span("after the view (response, hooks)", after_view, response - after_view, "app")
        )
    if timeline.headers is not None:
        rows.append(Span("response start (headers sent)", timeline.headers, 0.0, "server"))
        if timeline.end is not None:
            rows.append(
                Span(
                    "body sent and closed",
                    timeline.headers,
                    timeline.end - timeline.headers,
                    "server",
                )
            )
    return rows


def _ms(seconds: float) -> str:
    return "%.3f ms" % (seconds * 1000.0)


def _ticks(total: float) -> list[float]:
    """About five round tick values (seconds) covering ``[0, total]``."""
    if total <= 0:
        return [0.0]
    raw = total / 5.0
    step = 1e-6
    while step * 10 <= raw:
        step *= 10
    for factor in (1, 2, 5, 10):
        if step * factor >= raw:
            step *= factor
            break
    count = int(total / step) + 1
    return [step * index for index in range(count)]


def render_svg(timeline: Timeline, element_id: str) -> str:
    """The waterfall of *timeline* as an ``<svg>`` element.

    Styles are scoped to *element_id* (and repeated as presentation attributes), so
    the CSS of the page around the toolbar cannot recolour or hide the bars.

    :param timeline: the request's clock.
    :param element_id: the ``id`` of the ``<svg>`` element (unique in the page).
    """
    rows = spans(timeline)
    total = max(timeline.total, max((s.start + s.seconds for s in rows), default=0.0), 1e-9)
    scale = (WIDTH - LABEL - 70.0) / total
    height = AXIS + ROW * len(rows) + ROW + 4
    ident = html.escape(element_id, quote=True)
    out = [
        f'<svg id="{ident}" class="observe-timeline" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 {WIDTH:.0f} {height}" width="100%" role="img" '
        f'aria-label="Timeline of the request: {html.escape(_ms(total))}">',
        "<style>",
        f"#{ident} text {{ font: 11px sans-serif; fill: #222; }}",
        f"#{ident} line {{ stroke: #ccc; stroke-width: 1; }}",
        f"#{ident} rect {{ stroke: none; }}",
    ]
    for kind, (colour, _) in KINDS.items():
        out.append(f"#{ident} rect.observe-tl-{kind} {{ fill: {colour}; }}")
    out.append(f"#{ident} .observe-tl-toolbar-label {{ fill: {KINDS['toolbar'][0]}; }}")
    out.append("</style>")
    for tick in _ticks(total):
        x = LABEL + tick * scale
        out.append(
            f'<line x1="{x:.1f}" y1="{AXIS - 6}" x2="{x:.1f}" y2="{height - ROW}" '
            'stroke="#ccc" stroke-width="1"/>'
        )
        out.append(
            f'<text x="{x:.1f}" y="{AXIS - 9}" text-anchor="middle" fill="#222">'
            f"{html.escape('%g ms' % round(tick * 1000.0, 6))}</text>"
        )
    for index, span in enumerate(rows):
        y = AXIS + index * ROW
        colour = KINDS[span.kind][0]
        x = LABEL + span.start * scale
        width = max(span.seconds * scale, 1.0)
        label = html.escape(span.label)
        duration = html.escape(_ms(span.seconds))
        label_class = ' class="observe-tl-toolbar-label"' if span.kind == "toolbar" else ""
        out.append(f'<g class="observe-tl-row" data-kind="{span.kind}">')
        out.append(f"<title>{label}: {duration}, from {html.escape(_ms(span.start))}</title>")
        out.append(f'<text x="4" y="{y + 14}"{label_class} fill="#222">{label}</text>')
        out.append(
            f'<rect class="observe-tl-{span.kind}" x="{x:.2f}" y="{y + 3}" '
            f'width="{width:.2f}" height="{ROW - 6}" fill="{colour}"/>'
        )
        out.append(
            f'<text x="{min(x + width + 4, WIDTH - 66):.2f}" y="{y + 14}" fill="#222">'
            f"{duration}</text>"
        )
        out.append("</g>")
    legend_y = AXIS + len(rows) * ROW + 14
    x = 4.0
    for kind, (colour, name) in KINDS.items():
        out.append(
            f'<rect class="observe-tl-{kind}" x="{x:.0f}" y="{legend_y - 9}" width="10" '
            f'height="10" fill="{colour}"/>'
        )
        out.append(f'<text x="{x + 14:.0f}" y="{legend_y}" fill="#222">{html.escape(name)}</text>')
        x += 24 + 6.2 * len(name)
    out.append("</svg>")
    return "\n".join(out)
