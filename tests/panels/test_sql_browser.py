"""The SQL panel in a real headless browser (Debian's chromium, driven by playwright) on
the demo's N+1 page: the toolbar's SQL panel opens, shows the repeated statement flagged
with its call site, and its EXPLAIN link gives the plan. A screenshot is saved under
``test-output/browser/sql-panel-n-plus-one.png``. A missing chromium is a failure."""

from __future__ import annotations

import os
import re
import typing as t
from pathlib import Path

import pytest

from demo_app import create_app
from tests.support.services import CHROMIUM
from tests.support.services import CHROMIUM_ARGS
from tests.support.services import serve_in_thread
from tests.support.services import starts_services

if t.TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.services

OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "browser"


@pytest.fixture
@starts_services
def demo_server() -> Iterator[str]:
    """The demo app (debug, toolbar on) on a free loopback port; yields its base URL."""
    with serve_in_thread(create_app({"DEBUG": True})) as url:
        yield url


def test_sql_panel_on_the_n_plus_one_page(demo_server: str, tmp_path: Path) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `make services` (as root) to install chromium")
    from playwright.sync_api import expect
    from playwright.sync_api import sync_playwright

    OUTPUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = browser.new_page()
            page.goto(f"{demo_server}/library/authors")
            expect(page.locator("#flDebugToolbar")).to_be_visible(timeout=15_000)
            nav = page.locator("#flDebugSQLPanel")
            expect(nav).to_contain_text("6 queries in")
            expect(nav).to_contain_text("1 repeated")
            page.click("#flDebugSQLPanel > a")
            panel = page.locator("#flDebugSQLPanel-content")
            expect(panel).to_be_visible()
            summary = panel.locator("#sql-summary").inner_text()
            assert summary.startswith("6 queries in"), summary
            repeated = panel.locator("#sql-groups tr.sql-repeated")
            expect(repeated).to_have_count(1)
            row = repeated.inner_text()
            assert row.startswith("5×\nN+1"), row
            assert "FROM book WHERE ? = book.author_id" in row
            assert re.search(r"demo_app/library\.py:\d+ in \S+ \(5×\)", row), row
            page.screenshot(path=str(OUTPUT / "sql-panel-n-plus-one.png"), full_page=True)

            explain = panel.locator("#sql-statements a.sql-explain").nth(1)
            href = explain.get_attribute("href")
            assert href is not None
            plan_page = browser.new_page()
            plan_page.goto(f"{demo_server}{href}")
            plan = plan_page.locator("#sql-explain-plan").inner_text()
            assert "book" in plan, plan
        finally:
            browser.close()
    assert (OUTPUT / "sql-panel-n-plus-one.png").stat().st_size > 10_000
