"""The panels in a real headless browser: Debian's chromium driven by playwright.

The demo app is served on a free loopback port from a background thread with the
toolbar on; the test opens a page, the toolbar, the Memory and Observe panels, switches
the heap diff on, reloads and checks the type table, then the deep-sizes page's masked
secret. A screenshot is saved under ``test-output/browser/``. A missing chromium is a
failure: run ``make services``.
"""

from __future__ import annotations

import re
import typing as t
from pathlib import Path

import pytest
from flask import render_template

from demo_app import create_app
from demo_app.views import ITEMS
from tests.support.services import chromium_page
from tests.support.services import serve_in_thread
from tests.support.services import starts_services

if t.TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.services

OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "browser"
NUMBER_WITH_UNIT = re.compile(r"\d+(\.\d+)? (B|KiB|MiB|GiB|ms)")


class Retained:
    """What the test page keeps alive on each request, for the heap diff to find."""

    def __init__(self, number: int) -> None:
        self.number = number


KEPT: list[list[Retained]] = []


@pytest.fixture
@starts_services
def server() -> Iterator[str]:
    """The demo app (debug, toolbar on) on a free loopback port; yields its base URL."""
    # A generous budget: the heap of a pytest process is far bigger than the demo's.
    app = create_app({"DEBUG": True, "OBSERVE_MEMORY_BUDGET": 20.0})

    @app.get("/browser-page")
    def browser_page() -> str:
        KEPT.append([Retained(number) for number in range(1000)])
        return render_template("index.html", items=list(ITEMS.values()))

    try:
        with serve_in_thread(app) as url:
            yield url
    finally:
        KEPT.clear()


def test_panels_in_a_real_browser(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    OUTPUT.mkdir(parents=True, exist_ok=True)
    with chromium_page(tmp_path / "profile", viewport={"width": 1280, "height": 900}) as page:
        page.goto(f"{server}/browser-page")
        expect(page.locator("#flDebugToolbar")).to_be_visible(timeout=15_000)

        # Memory panel, tier 1: real numbers in every row.
        page.click("#flDebugMemoryPanel > a")
        memory = page.locator("#flDebugMemoryPanel-content")
        expect(memory).to_be_visible()
        rss = memory.locator("#memory-rss td").all_inner_texts()
        assert all(NUMBER_WITH_UNIT.search(text) for text in rss[1:]), rss
        assert re.search(r"\d+ / \d+ / \d+", memory.locator("#memory-gc").inner_text())
        assert NUMBER_WITH_UNIT.search(memory.locator("#memory-tier1-cost").inner_text())
        expect(memory.locator("#memory-tier2-off")).to_be_visible()

        # Observe panel: the clock and the Server-Timing value.
        page.click("#flDebugObservePanel > a")
        observe = page.locator("#flDebugObservePanel-content")
        expect(observe).to_be_visible()
        expect(memory).to_be_hidden()
        assert NUMBER_WITH_UNIT.search(observe.locator("#observe-total").inner_text())
        assert NUMBER_WITH_UNIT.search(observe.locator("#observe-view").inner_text())
        timing = observe.locator("#observe-server-timing").inner_text()
        assert re.fullmatch(r"app;dur=[\d.]+", timing), timing
        page.screenshot(path=str(OUTPUT / "observe-panel.png"))

        # Switch the heap diff on with the panel's toggle, reload, see the types.
        switch = page.locator("#flDebugMemoryPanel .flDebugSwitch")
        expect(switch).to_have_class(re.compile("flDebugInactive"))
        switch.click()
        expect(switch).to_have_class(re.compile("flDebugActive"))
        page.reload()
        expect(page.locator("#flDebugToolbar")).to_be_visible(timeout=30_000)
        page.click("#flDebugMemoryPanel > a")
        memory = page.locator("#flDebugMemoryPanel-content")
        table = memory.locator("#memory-types")
        expect(table).to_be_visible()
        row = table.locator("tr", has_text="panels.test_browser.Retained")
        assert row.locator("td").nth(1).inner_text() == "+1000"
        screenshot = OUTPUT / "memory-panel-heap-diff.png"
        page.screenshot(path=str(screenshot))
        assert screenshot.stat().st_size > 10_000

        # The deep-sizes page shows a secret config value as the one marker.
        page.goto(f"{server}/_observe/memory/sizes")
        secret_row = page.locator("#config-sizes tr", has_text="SECRET_KEY")
        assert secret_row.locator("td").nth(2).inner_text() == "[Filtered]"
        assert "demo-only-not-a-secret" not in page.content()
