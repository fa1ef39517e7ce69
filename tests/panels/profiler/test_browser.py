"""The Profiler panel in a real headless browser (Debian's chromium driven by
playwright) against Werkzeug's threaded development server.

The panel is switched on from the toolbar, then two pages are requested at the same
time: their views wait for each other on a barrier, so the two requests overlap on the
server. Each page's flame graph must show its own view and not the other's.
Screenshots are saved under ``test-output/profiler/``.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import typing as t
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from tests.support.services import chromium_page
from tests.support.services import starts_services
from tests.support.toolbar import make_toolbar_app
from tests.support.toolbar import PAGE

if t.TYPE_CHECKING:
    from collections.abc import Iterator

OUTPUT = Path(__file__).resolve().parents[3] / "test-output" / "profiler"
PANEL = "#flDebugSamplingProfilerPanel"


def fibonacci(number: int) -> int:
    """Call-heavy work: tens of thousands of calls."""
    return number if number < 2 else fibonacci(number - 1) + fibonacci(number - 2)


def checksum(size: int) -> int:
    """Loop-heavy work in one frame."""
    total = 0
    for value in range(size):
        total = (total * 31 + value) % 1_000_003
    return total


@pytest.fixture
@starts_services
def server() -> Iterator[str]:
    """A debug app with the toolbar and our panels on Werkzeug's threaded server."""
    app = make_toolbar_app()
    barrier = threading.Barrier(2, timeout=20)

    @app.get("/fibonacci-report")
    def fibonacci_report() -> str:
        barrier.wait()
        deadline = time.perf_counter() + 0.15
        while time.perf_counter() < deadline:
            fibonacci(18)
        return PAGE.format("fibonacci")

    @app.get("/checksum-report")
    def checksum_report() -> str:
        barrier.wait()
        deadline = time.perf_counter() + 0.15
        while time.perf_counter() < deadline:
            checksum(20_000)
        return PAGE.format("checksum")

    @app.get("/async-report")
    async def async_report() -> dict[str, int]:
        await asyncio.sleep(0.05)
        return {"fibonacci": fibonacci(20)}

    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        httpd.server_close()


@pytest.mark.services
def test_two_overlapping_requests_each_get_their_flame_graph(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    OUTPUT.mkdir(parents=True, exist_ok=True)
    with chromium_page(tmp_path / "profile", viewport={"width": 1400, "height": 1000}) as page:
        page.goto(f"{server}/")
        expect(page.locator("#flDebugToolbar")).to_be_visible(timeout=15_000)
        page.click(f"{PANEL} > a")
        expect(page.locator(f"{PANEL}-content")).to_contain_text("Off. Switch this panel on")
        switch = page.locator(f"{PANEL} .flDebugSwitch")
        expect(switch).to_have_class(re.compile("flDebugInactive"))
        switch.click()
        expect(switch).to_have_class(re.compile("flDebugActive"))

        # Both navigations start before either answer: the views meet on the barrier.
        left, right = page, page.context.new_page()
        left.evaluate("url => { window.location.href = url; }", f"{server}/fibonacci-report")
        right.evaluate("url => { window.location.href = url; }", f"{server}/checksum-report")
        for tab, own, other, name in (
            (left, "fibonacci", "checksum", "fibonacci"),
            (right, "checksum", "fibonacci", "checksum"),
        ):
            tab.wait_for_url(f"**/{own}-report", timeout=30_000)
            expect(tab.locator("#flDebugToolbar")).to_be_visible(timeout=30_000)
            tab.click(f"{PANEL} > a")
            content = tab.locator(f"{PANEL}-content")
            flame = content.locator("#profiler-flame-collapsed")
            expect(flame).to_be_visible()
            titles = flame.locator("title").all_text_contents()
            assert any(title.startswith(f"{name}\n{__file__}:") for title in titles), titles
            assert not any(title.startswith(f"{other}\n") for title in titles), titles
            assert titles[0].startswith(f"GET /{own}-report\n")
            hottest = content.locator("#profiler-hottest tbody tr").first
            expect(hottest).to_contain_text(name)
            shot = OUTPUT / f"profiler-{own}.png"
            tab.screenshot(path=str(shot))
            assert shot.stat().st_size > 10_000

        # The switch shows the framework frames too.
        left.click("label[for=profiler-show-framework]")
        expect(left.locator("#profiler-flame-full")).to_be_visible()
        expect(left.locator("#profiler-flame-collapsed")).to_be_hidden()
        left.locator(f"{PANEL}-content").screenshot(path=str(OUTPUT / "profiler-full.png"))

        # The speedscope download is the same profile, saved by the browser.
        with left.expect_download() as download_info:
            left.click("#profiler-speedscope")
        download = download_info.value
        assert download.suggested_filename == "GET-fibonacci-report.speedscope.json"
        document = json.loads(Path(download.path()).read_text())
        frames = document["shared"]["frames"]
        line = fibonacci.__code__.co_firstlineno
        assert {"name": "fibonacci", "file": __file__, "line": line} in frames
        assert document["profiles"][0]["type"] == "sampled"

        # A JSON response from an async view: the profile is on its report page.
        answer = left.request.get(f"{server}/async-report")
        assert answer.json() == {"fibonacci": 6765}
        report = answer.headers["x-observe-report"]
        left.goto(f"{server}{report}")
        flame = left.locator("#profiler-flame-collapsed")
        expect(flame).to_be_visible()
        titles = flame.locator("title").all_text_contents()
        assert any(title.startswith("server.<locals>.async_report\n") for title in titles)
        assert any(title.startswith("[awaiting]\n") for title in titles), titles
        left.screenshot(path=str(OUTPUT / "profiler-async-report.png"), full_page=True)
