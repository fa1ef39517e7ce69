"""The Profiler panel through the real Flask-DebugToolbar: off by default, switched on
with the toolbar's cookie, overlapping requests, ``async def`` views, the report page."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
import time
import typing as t
from html import unescape

from flask import abort
from flask import render_template_string

from flask_observe.panels import PROFILER_PANEL
from flask_observe.panels.profiler.sampler import THREAD_NAME
from tests.support.toolbar import make_toolbar_app
from tests.support.toolbar import PAGE

if t.TYPE_CHECKING:
    from flask import Flask

#: The toolbar's cookie value that switches the panel on.
PROFILER_ON = "flDebugSamplingProfilerPanel"
TITLE = re.compile(r"<title>([^<]*)</title>")


def spin(seconds: float) -> int:
    end = time.perf_counter() + seconds
    count = 0
    while time.perf_counter() < end:
        count += 1
    return count


def sampler_running() -> bool:
    return any(thread.name == THREAD_NAME for thread in threading.enumerate())


def wait_sampler_stopped() -> bool:
    """Whether the sampler thread is gone (it stops within an interval of the last
    profiled request; give it up to two seconds)."""
    deadline = time.monotonic() + 2.0
    while sampler_running() and time.monotonic() < deadline:
        time.sleep(0.005)
    return not sampler_running()


def profiler_app() -> Flask:
    app = make_toolbar_app()
    seen: dict[str, bool] = {}
    app.config["SEEN"] = seen

    @app.get("/work")
    def heavy_view() -> str:
        seen["sampler"] = sampler_running()
        spin(0.06)
        return PAGE.format("worked")

    @app.get("/template")
    def template_view() -> str:
        spin(0.03)
        return render_template_string(
            "<!doctype html><html><body>{{ work() }}</body></html>", work=lambda: spin(0.03)
        )

    @app.get("/async-work")
    async def async_work_view() -> dict[str, int]:
        await asyncio.sleep(0.06)
        return {"count": spin(0.03)}

    return app


def titles(html: str) -> list[str]:
    """The hover texts of the boxes, as the browser shows them."""
    return [unescape(title) for title in TITLE.findall(html)]


def panel_html(html: str) -> str:
    """The profiler panel's content: up to the next panel (the Observe panel draws a
    timeline SVG of its own)."""
    start = html.index('id="observe-profiler"')
    ends = (
        html.find('class="flDebugPanelContentParent"', start),
        html.find("</div>\n</div>", start),
    )
    return html[start : min(end for end in ends if end >= 0)]


def line(function: t.Callable[..., object]) -> int:
    return function.__code__.co_firstlineno


def test_listed_first_of_ours_and_off_by_default() -> None:
    app = profiler_app()
    panels = app.config["DEBUG_TB_PANELS"]
    assert panels[-3:] == (
        PROFILER_PANEL,
        "flask_observe.panels.memory.MemoryPanel",
        "flask_observe.panels.observe.ObservePanel",
    )
    assert wait_sampler_stopped()  # none left over from earlier tests
    html = app.test_client().get("/work").get_data(as_text=True)
    assert 'id="flDebugSamplingProfilerPanel"' in html
    assert "Off. Switch this panel on with its toggle in the toolbar" in html
    assert app.config["SEEN"] == {"sampler": False}  # no thread while off
    assert "<svg" not in panel_html(html)


def test_switched_on_shows_the_view_in_a_flame_graph() -> None:
    app = profiler_app()
    client = app.test_client()
    client.set_cookie("fldt_active", PROFILER_ON)
    html = client.get("/work").get_data(as_text=True)
    assert app.config["SEEN"] == {"sampler": True}
    panel = panel_html(html)
    summary = re.search(r'id="profiler-summary">(.*?)</p>', panel, re.S)
    assert summary and summary.group(1).startswith("GET /work: ")
    boxes = titles(panel)
    where = f"{__file__}:{line(spin)}"
    assert any(box.startswith(f"spin\n{where}\n") for box in boxes), boxes
    assert "profiler_app.&lt;locals&gt;.heavy_view" in panel
    hot = re.search(r'id="profiler-hottest">.*?<code>(.*?)</code>', panel, re.S)
    assert hot and hot.group(1) == "spin"
    href = re.search(
        r'id="profiler-speedscope" download="GET-work.speedscope.json" href="([^"]+)"', panel
    )
    assert href
    document = json.loads(base64.b64decode(href.group(1).split(",", 1)[1]))
    assert {"name": "spin", "file": __file__, "line": line(spin)} in document["shared"]["frames"]
    assert wait_sampler_stopped()


def test_framework_frames_collapsed_with_a_switch() -> None:
    app = profiler_app()
    client = app.test_client()
    client.set_cookie("fldt_active", PROFILER_ON)
    panel = panel_html(client.get("/template").get_data(as_text=True))
    collapsed = panel[panel.index('id="profiler-flame-collapsed"') : panel.index("</svg>")]
    full = panel[panel.index('id="profiler-flame-full"') :]
    full = full[: full.index("</svg>")]
    assert 'id="profiler-show-framework"' in panel
    assert "render_template_string" in full
    assert "render_template_string" not in collapsed
    assert re.search(r"<title>\[Flask[^<]*\]\n", collapsed), titles(collapsed)


def test_overlapping_requests_are_each_profiled() -> None:
    app = make_toolbar_app()
    barrier = threading.Barrier(2, timeout=10)

    @app.get("/left")
    def left_view() -> str:
        barrier.wait()
        spin(0.1)
        return PAGE.format("left")

    @app.get("/right")
    def right_view() -> str:
        barrier.wait()
        spin(0.1)
        return PAGE.format("right")

    pages: dict[str, str] = {}

    def fetch(path: str) -> None:
        client = app.test_client()
        client.set_cookie("fldt_active", PROFILER_ON)
        pages[path] = panel_html(client.get(path).get_data(as_text=True))

    threads = [threading.Thread(target=fetch, args=(path,)) for path in ("/left", "/right")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    left, right = pages["/left"], pages["/right"]
    assert "left_view" in left and "right_view" not in left
    assert "right_view" in right and "left_view" not in right
    for panel in (left, right):
        assert any(title.startswith("spin\n") for title in titles(panel))


def test_async_view_profiled_across_its_await_on_the_report_page() -> None:
    app = profiler_app()
    client = app.test_client()
    client.set_cookie("fldt_active", PROFILER_ON)
    response = client.get("/async-work")
    assert response.status_code == 200 and response.json is not None
    report = client.get(response.headers["X-Observe-Report"]).get_data(as_text=True)
    assert "<h2>Profiler</h2>" in report
    panel = panel_html(report)
    assert panel.count("GET /async-work") >= 1
    boxes = titles(panel)
    view = [box for box in boxes if box.startswith("profiler_app.<locals>.async_work_view\n")]
    sleep = [box for box in boxes if box.startswith("sleep\n")]
    waiting = [box for box in boxes if box.startswith("[awaiting]\n")]
    spins = [box for box in boxes if box.startswith(f"spin\n{__file__}:{line(spin)}\n")]
    assert view and sleep and waiting and spins, boxes
    waited_ms = float(waiting[0].split("\n")[1].split(" ms")[0])
    assert waited_ms >= 45.0


def test_report_page_of_an_unprofiled_request_has_no_profiler_section() -> None:
    app = profiler_app()
    client = app.test_client()
    response = client.get("/json")
    report = client.get(response.headers["X-Observe-Report"]).get_data(as_text=True)
    assert "<h2>Profiler</h2>" not in report


def test_async_view_works_with_only_the_profiler_listed_and_off() -> None:
    app = make_toolbar_app(observe=False, DEBUG_TB_PANELS=[PROFILER_PANEL])
    response = app.test_client().get("/async")
    assert response.json == {"mode": "async"}


def test_a_view_that_raises_is_profiled_too() -> None:
    app = make_toolbar_app()

    @app.get("/gone")
    def gone_view() -> str:
        spin(0.03)
        abort(404)

    client = app.test_client()
    client.set_cookie("fldt_active", PROFILER_ON)
    response = client.get("/gone")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    report = client.get(response.headers["X-Observe-Report"]).get_data(as_text=True)
    boxes = titles(panel_html(report))
    view = "test_a_view_that_raises_is_profiled_too.<locals>.gone_view\n"
    assert any(box.startswith(view) for box in boxes), boxes
