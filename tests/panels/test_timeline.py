"""The timeline (waterfall) of a request: what is captured, the bars drawn and their
labels, the toolbar's own work apart from the app's, escaping."""

from __future__ import annotations

import re
import time
import typing as t
from html import unescape

import pytest

from flask_observe.metrics import timer
from flask_observe.panels.report import ReportStore
from flask_observe.panels.timeline import render_svg
from flask_observe.panels.timeline import spans
from flask_observe.panels.timeline import Timeline
from flask_observe.state import get_state
from tests.support.toolbar import make_toolbar_app
from tests.support.toolbar import PAGE

if t.TYPE_CHECKING:
    from flask import Flask

    from flask_observe.panels.report import Snapshot

ROW = re.compile(r'<g class="observe-tl-row" data-kind="(\w+)">\n<title>([^<]*)</title>')


def rows(svg: str) -> list[tuple[str, str]]:
    """``(kind, hover text)`` of each bar, as the browser shows them."""
    return [(kind, unescape(title)) for kind, title in ROW.findall(svg)]


def labels(svg: str) -> list[str]:
    return [title.split(":")[0] for _, title in rows(svg)]


def timeline_app() -> Flask:
    app = make_toolbar_app()

    @app.get("/slow-page")
    def slow_page() -> str:
        time.sleep(0.01)
        with timer("lookup"):
            time.sleep(0.02)
        return PAGE.format("slow")

    @app.get("/slow-json")
    def slow_json() -> dict[str, int]:
        time.sleep(0.01)
        with timer("lookup"):
            time.sleep(0.02)
        return {"done": 1}

    return app


def last_report(app: Flask) -> Snapshot:
    store = get_state(app).part(ReportStore)
    assert store is not None
    return store.recent(1)[0]


def test_bars_of_a_hand_made_timeline() -> None:
    timeline = Timeline(
        final=True,
        now=0.1,
        view=(0.002, 0.032),
        toolbar=0.033,
        headers=0.090,
        end=0.091,
        timers=(("lookup", 0.012, 0.020), ("manual", None, 0.005)),
    )
    assert [(s.label, s.kind) for s in spans(timeline)] == [
        ("before the view (routing, hooks)", "app"),
        ("view", "app"),
        ("timer lookup", "timer"),
        ("timer manual (start unknown)", "timer"),
        ("after the view (response, hooks)", "app"),
        ("toolbar rendering", "toolbar"),
        ("response start (headers sent)", "server"),
        ("body sent and closed", "server"),
    ]
    svg = render_svg(timeline, "t1")
    assert rows(svg)[1] == ("app", "view: 30.000 ms, from 2.000 ms")
    assert rows(svg)[5] == ("toolbar", "toolbar rendering: 57.000 ms, from 33.000 ms")
    assert timeline.toolbar_seconds == pytest.approx(0.057)
    assert ">Flask-DebugToolbar (not your app)</text>" in svg  # the legend
    assert "<script" not in svg


def test_bar_positions_are_proportional_to_time() -> None:
    timeline = Timeline(final=True, now=0.1, view=(0.0, 0.05), headers=0.1, end=0.1)
    svg = render_svg(timeline, "t2")
    xs = re.findall(r'<rect class="observe-tl-app" x="([\d.]+)" y="\d+" width="([\d.]+)"', svg)
    (before_x, before_w), (view_x, view_w), (after_x, after_w) = (
        (float(x), float(w)) for x, w in xs[:3]
    )
    assert view_x == 230.0 and view_w == pytest.approx(250.0)  # half of the 500 units
    assert after_x == pytest.approx(480.0) and after_w == pytest.approx(250.0)
    assert before_w == 1.0  # zero long: still visible


def test_text_is_escaped_and_styles_are_scoped() -> None:
    timeline = Timeline(
        final=False, now=0.01, view=(0.0, 0.005), timers=(("<script>x</script>", 0.001, 0.002),)
    )
    svg = render_svg(timeline, 'x"><script>')
    assert "<script>" not in svg
    assert "timer &lt;script&gt;x&lt;/script&gt;" in svg
    assert 'id="x&quot;&gt;&lt;script&gt;"' in svg


def test_a_json_request_is_the_app_and_the_server_only() -> None:
    app = timeline_app()
    client = app.test_client()
    client.get("/slow-json").close()
    report = last_report(app)
    assert report.timeline is not None and report.timeline.toolbar is None
    svg = report.timeline_svg()
    assert labels(svg) == [
        "before the view (routing, hooks)",
        "view",
        "timer lookup",
        "after the view (response, hooks)",
        "response start (headers sent)",
        "body sent and closed",
    ]
    view = report.timeline.view
    assert view is not None and view[1] - view[0] >= 0.03
    ((name, start, seconds),) = report.timeline.timers
    assert name == "lookup" and seconds >= 0.02
    assert start is not None and view[0] + 0.01 <= start <= view[1] - seconds


def test_an_html_page_shows_the_toolbar_apart_from_the_app() -> None:
    """The report of an HTML page: the view is fast, the toolbar's rendering is the
    red bar, and the total includes it."""
    app = timeline_app()
    client = app.test_client()
    client.get("/").close()
    report = last_report(app)
    timeline = report.timeline
    assert timeline is not None and timeline.final and timeline.toolbar is not None
    assert labels(report.timeline_svg()) == [
        "before the view (routing, hooks)",
        "view",
        "timer page",
        "after the view (response, hooks)",
        "toolbar rendering",
        "response start (headers sent)",
        "body sent and closed",
    ]
    view = timeline.view
    assert view is not None and view[1] <= timeline.toolbar <= t.cast(float, timeline.headers)
    toolbar = t.cast(float, timeline.toolbar_seconds)
    assert toolbar > 10 * (view[1] - view[0])  # the toolbar, not the view, took the time
    html = client.get(f"/_observe/report/{report.id}").get_data(as_text=True)
    assert 'id="observe-timeline"' in html
    assert f"Flask-DebugToolbar's own work on this page:\n  {toolbar * 1000:.3f} ms" in html


def test_the_observe_panel_draws_the_timeline_so_far() -> None:
    client = timeline_app().test_client()
    html = client.get("/slow-page").get_data(as_text=True)
    start = html.index('id="observe-timeline"')
    svg = html[start : html.index("</svg>", start)]
    assert "<h4>Timeline (as of rendering)</h4>" in html
    assert labels(svg)[-1] == "toolbar rendering (so far)"
    assert "Flask-DebugToolbar's own work on this page so far:" in html


def test_a_stream_ends_when_its_body_is_closed() -> None:
    """A stream's report: no view span when the view returned at once, still the
    response start and the body."""
    app = make_toolbar_app()
    client = app.test_client()
    response = client.get("/stream")
    response.get_data()
    response.close()
    timeline = last_report(app).timeline
    assert timeline is not None and timeline.end is not None and timeline.headers is not None
    assert timeline.end >= timeline.headers
