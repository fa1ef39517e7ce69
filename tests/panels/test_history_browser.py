"""The History panel and the timeline in a real headless browser (Debian's chromium
driven by playwright) against Werkzeug's threaded development server.

A page calls ``fetch()`` and ``XMLHttpRequest``: their rows appear in the History panel
without a reload, each fetched once from the JSON API, and nothing loops. Calls to
another origin and responses without ``X-Observe-Report`` are left alone. The page's
own CSS does not recolour our bars. Screenshots are saved under
``test-output/history/``.
"""

from __future__ import annotations

import re
import threading
import time
import typing as t
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from flask_observe import APIError
from tests.support.services import chromium_page
from tests.support.services import starts_services
from tests.support.toolbar import make_toolbar_app

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from flask import Flask
    from flask import Response

OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "history"
PANEL = "#flDebugHistoryPanel"
#: The app's own CSS, hostile to anything drawn in its pages.
APP_CSS = "svg rect { fill: #ff00ff; } text { fill: #00ff00; } td { color: #ff00ff; }"
SPA = (
    "<!doctype html><html><head><title>spa</title><style>" + APP_CSS + "</style></head>"
    "<body><h1>A single-page app</h1></body></html>"
)


def spa_app() -> Flask:
    app = make_toolbar_app()

    @app.get("/spa")
    def spa() -> str:
        time.sleep(0.002)
        return SPA

    @app.get("/api/items/<int:number>")
    def item(number: int) -> dict[str, int]:
        time.sleep(0.3 if number == 3 else 0.01 * number)  # item 3 is the slow one
        return {"number": number}

    @app.get("/csp")
    def csp() -> tuple[str, dict[str, str]]:
        """The page under a Content-Security-Policy that allows no inline script."""
        return SPA, {"Content-Security-Policy": "script-src 'self'"}

    @app.get("/api/fail")
    def fail() -> str:
        raise APIError("the item is locked", status=409)

    @app.after_request
    def allow_other_origins(response: Response) -> Response:
        """CORS, exposing X-Observe-Report: a page of another origin could read it."""
        response.headers["Access-Control-Allow-Origin"] = "*"
        response.headers["Access-Control-Expose-Headers"] = "X-Observe-Report"
        return response

    return app


@pytest.fixture
@starts_services
def servers() -> Iterator[tuple[str, str]]:
    """The app on two ports: two origins of one history."""
    app = spa_app()
    running = []
    for _ in range(2):
        httpd = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        running.append((httpd, thread))
    try:
        yield tuple(f"http://127.0.0.1:{httpd.server_port}" for httpd, _ in running)  # type: ignore[misc]
    finally:
        for httpd, thread in running:
            httpd.shutdown()
            thread.join(timeout=10)
            httpd.server_close()


CALLS = """async (other) => {
    window.notReloaded = true;
    await (await fetch('/api/items/1')).json();
    await (await fetch('/stream')).text();
    await new Promise((resolve) => {
        const xhr = new XMLHttpRequest();
        xhr.open('GET', '/api/fail');
        xhr.onloadend = resolve;
        xhr.send();
    });
    await (await fetch(other + '/api/items/2')).json();
    await (await fetch('/_debug_toolbar/static/css/toolbar.css')).text();
}"""


def live_rows(page: t.Any) -> list[str]:
    return t.cast(
        "list[str]",
        page.locator("#observe-history-rows tr.observe-live td:nth-child(2)").all_text_contents(),
    )


@pytest.mark.services
def test_fetches_appear_in_the_history_without_a_reload(
    servers: tuple[str, str], tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    server, other = servers
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with chromium_page(tmp_path / "profile", viewport={"width": 1400, "height": 1000}) as page:
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        # Chromium logs every 4xx response as a console error: the app's 409 and
        # the API's 404 while a stream's report is not kept yet. Anything else
        # (a script error, a refused script) fails the test.
        page.on(
            "console",
            lambda message: (
                errors.append(message.text)
                if message.type == "error"
                and not message.text.startswith("Failed to load resource: the server")
                else None
            ),
        )
        api_calls: list[str] = []
        page.on(
            "request",
            lambda request: (
                api_calls.append(request.url) if "/_observe/api/" in request.url else None
            ),
        )
        page.goto(f"{server}/api/items/3")  # a slow request, earlier in the history
        page.goto(f"{server}/spa")
        expect(page.locator("#flDebugToolbar")).to_be_visible(timeout=15_000)
        page.click(f"{PANEL} > a")
        content = page.locator(f"{PANEL}-content")
        expect(content).to_contain_text("GET /api/items/3")
        before = page.locator("#observe-history-rows tr").count()

        page.evaluate(CALLS, other)
        expect(page.locator("#observe-history-rows tr.observe-live")).to_have_count(
            3, timeout=15_000
        )
        # Newest first by completion: a stream completes when the server closes
        # its body, which may come after the next call's answer.
        assert sorted(live_rows(page)) == ["GET /api/fail", "GET /api/items/1", "GET /stream"]
        times = page.eval_on_selector_all(
            "#observe-history-rows tr", "rows => rows.map(r => r.getAttribute('data-at'))"
        )
        assert times == sorted(times, reverse=True)
        assert page.locator("#observe-history-rows tr").count() == before + 3
        assert page.evaluate("window.notReloaded") is True
        failed = page.locator("#observe-history-rows tr.observe-live", has_text="/api/fail")
        expect(failed).to_contain_text("409")
        expect(failed).to_contain_text("APIError: 409 Conflict: the item is locked")
        # Each followed call fetched its row once (a stream's report may need its
        # four retries until its body is closed); then nothing more: no loop.
        time.sleep(4.0)
        calls = list(api_calls)
        ids = {url.rsplit("/", 1)[1] for url in calls}
        assert len(ids) == 3 and len(calls) <= 3 + 4, calls
        assert not any(url.endswith("/api/requests") for url in calls)
        time.sleep(1.0)
        assert api_calls == calls

        # The bars: the slow request fills its bar, the fast ones are short.
        widths = page.eval_on_selector_all(
            "#observe-history-rows tr",
            "rows => rows.map(r => [r.children[1].textContent,"
            " parseFloat(r.querySelector('svg.observe-bar rect').getAttribute('width'))])",
        )
        by_path = dict(widths)
        assert by_path["GET /api/items/3"] == 120.0, widths
        assert by_path["GET /api/items/1"] < 60.0, widths

        # The app's CSS does not recolour our bars or timeline.
        fill = page.eval_on_selector(
            "#observe-history-rows svg.observe-bar rect", "e => getComputedStyle(e).fill"
        )
        assert fill == "rgb(78, 121, 167)"
        content.screenshot(path=str(OUTPUT / "history-panel.png"))

        # A second copy of the script installs nothing more.
        wrapped = page.evaluate(
            """async (src) => {
                const before = window.fetch;
                await new Promise((resolve) => {
                    const script = document.createElement('script');
                    script.src = src;
                    script.onload = resolve;
                    document.body.appendChild(script);
                });
                await (await fetch('/api/items/1')).json();
                return window.fetch === before;
            }""",
            "/_observe/static/history.js",
        )
        assert wrapped is True
        expect(page.locator("#observe-history-rows tr.observe-live")).to_have_count(
            4, timeout=15_000
        )

        # The timeline of this page in the Observe panel, the toolbar's bar apart.
        page.click("#flDebugObservePanel > a")
        timeline = page.locator("#flDebugObservePanel-content #observe-timeline svg")
        expect(timeline).to_be_visible()
        bar = timeline.locator("rect.observe-tl-toolbar").first
        assert bar.evaluate("e => getComputedStyle(e).fill") == "rgb(225, 87, 89)"
        titles = timeline.locator("title").all_text_contents()
        assert any(title.startswith("toolbar rendering (so far): ") for title in titles)
        page.locator("#flDebugObservePanel-content #observe-timeline").screenshot(
            path=str(OUTPUT / "timeline-panel.png")
        )
        assert errors == []

        # The history page and a report page with its final timeline.
        page.goto(f"{server}/_observe/history")
        expect(page.locator("#observe-history-rows tr").first).to_contain_text("GET /api/items/1")
        page.screenshot(path=str(OUTPUT / "history-page.png"), full_page=True)
        link = page.locator("#observe-history-rows a", has_text="GET /spa").first
        report = page.request.get(f"{server}{link.get_attribute('href')}")
        assert report.status == 200 and "GET /spa &rarr; 200" in report.text()


@pytest.mark.services
def test_report_page_timeline(servers: tuple[str, str], tmp_path: Path) -> None:
    from playwright.sync_api import expect

    server, _ = servers
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with chromium_page(tmp_path / "profile", viewport={"width": 1200, "height": 900}) as page:
        page.goto(f"{server}/spa")
        expect(page.locator("#flDebugToolbar")).to_be_visible(timeout=15_000)
        answer = page.request.get(f"{server}/_observe/api/requests")
        row = next(row for row in answer.json()["requests"] if row["path"] == "/spa")
        page.goto(f"{server}{row['report_url']}")
        timeline = page.locator("#observe-timeline")
        expect(timeline).to_be_visible()
        text = page.locator("#observe-toolbar-time").text_content() or ""
        assert re.search(r"own work on this page:\s+[\d.]+ ms", text), text
        timeline.screenshot(path=str(OUTPUT / "timeline-report.png"))
        assert (OUTPUT / "timeline-report.png").stat().st_size > 5_000


@pytest.mark.services
def test_the_script_runs_under_a_policy_without_inline_scripts(
    servers: tuple[str, str], tmp_path: Path
) -> None:
    """``script-src 'self'`` blocks the toolbar's one inline script, not ours: a file
    served by our blueprint."""
    from playwright.sync_api import expect

    server, _ = servers
    with chromium_page(tmp_path / "profile") as page:
        violations: list[str] = []
        page.on(
            "console",
            lambda message: (
                violations.append(message.text)
                if "Content Security Policy" in message.text
                else None
            ),
        )
        page.goto(f"{server}/csp")
        page.wait_for_function("window.flObserveHistory !== undefined", timeout=15_000)
        page.evaluate("async () => { await (await fetch('/api/items/1')).json(); }")
        live = page.locator("#observe-history-rows tr.observe-live")
        expect(live).to_have_count(1, timeout=15_000)
        expect(live.locator("td").nth(1)).to_have_text("GET /api/items/1")
        assert violations and all("inline script" in text for text in violations)
