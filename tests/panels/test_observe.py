"""The Observe panel: this request's clock and ``Server-Timing``, its error masked, the
configuration masked, values escaped, the link to the values sent, a failing panel shown
as a note, and the panel alone on an async view."""

from __future__ import annotations

import re
import time
import typing as t

import pytest
from flask import Flask
from flask_debugtoolbar.panels import DebugPanel

from flask_observe.panels import OBSERVE_PANEL
from flask_observe.panels.templating import format_bytes
from flask_observe.secrets import default_scrubber
from tests.support.toolbar import cell
from tests.support.toolbar import get_page
from tests.support.toolbar import make_toolbar_app

if t.TYPE_CHECKING:
    pass


def test_values_are_escaped() -> None:
    client = make_toolbar_app().test_client()
    html = get_page(client, "/echo/%3Cscript%3Ealert(1)")
    panel = html[html.index('id="observe-panel"') :]
    assert "GET /echo/&lt;script&gt;alert(1)" in panel
    assert "<script>alert(1)" not in html


def test_observe_panel_config_is_masked() -> None:
    from flask_observe.panels.observe import config_rows

    app = Flask("masked")
    app.config["OBSERVE_SENTRY_DSN"] = "https://publickey123@o1.invalid/1"
    rows = dict(config_rows(app))
    assert rows["OBSERVE_SENTRY_DSN"] == "[Filtered]"
    assert rows["OBSERVE_STATSD_PORT"] == "8125"


def test_observe_panel_shows_the_clock_and_server_timing() -> None:
    html = get_page(make_toolbar_app().test_client())
    assert re.search(r"[\d.]+ ms", cell(html, "observe-total"))
    assert re.search(r"[\d.]+ ms", cell(html, "observe-view"))
    timing = re.search(r'id="observe-server-timing">([^<]+)<', html)
    assert timing and re.fullmatch(r"app;dur=[\d.]+, page;dur=[\d.]+", timing.group(1))


def test_observe_panel_shows_the_error_masked() -> None:
    from flask_observe.panels.observe import config_rows
    from flask_observe.panels.report import snapshot
    from flask_observe.panels.templating import render
    from flask_observe.record import RequestRecord

    app = make_toolbar_app()
    record = RequestRecord()
    record.exception = RuntimeError("<b>db</b> postgres://u:hunter2@db/x down, token=tk42")
    record.event_id = "abc123"
    record.metric_lines = ["app.request:1|c"]
    with app.test_request_context("/"):
        data = snapshot(record, path="/", final=False, scrubber=default_scrubber)
        html = render("observe.html", data=data, config=config_rows(app))
    assert "hunter2" not in html and "tk42" not in html and "&lt;b&gt;db&lt;/b&gt;" in html
    assert "postgres://[Filtered]@db/x down, token=[Filtered]" in html
    assert "abc123" in html and "app.request:1|c" in html and "RuntimeError" in html


def test_async_views_with_only_the_observe_panel() -> None:
    app = make_toolbar_app(observe=False, DEBUG_TB_PANELS=[OBSERVE_PANEL])
    assert app.test_client().get("/async").json == {"mode": "async"}


def test_html_page_links_to_the_values_sent() -> None:
    client = make_toolbar_app().test_client()
    html = get_page(client)
    assert 'id="observe-metrics-later"' in html
    link = re.search(r'id="observe-final-link"><a href="([^"]+)"', html)
    assert link
    report = client.get(link.group(1)).get_data(as_text=True)
    assert "Total (until the body was closed)" in report
    assert re.search(r'id="observe-server-timing">app;dur=[\d.]+, page;dur=[\d.]+<', report)
    assert re.search(r'<pre id="observe-metrics">[^<]*\|ms', report)


def test_a_failing_panel_shows_a_note_not_a_500(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from flask_observe import containment
    from flask_observe.panels import observe

    monkeypatch.setattr(containment, "_last_warned", {})  # the warnings are rate-limited

    def broken(*args: object, **kwargs: object) -> t.NoReturn:
        raise RuntimeError("template exploded")

    monkeypatch.setattr(observe, "render", broken)
    html = get_page(make_toolbar_app().test_client())
    assert "this panel failed" in html and 'id="memory-rss"' in html
    assert "the Observe panel failed" in caplog.text


class SlowToolbarPanel(DebugPanel):
    """A toolbar panel that takes 50 ms to render its title: the toolbar's own work."""

    name = "Slow"
    has_content = False

    def nav_title(self) -> str:
        time.sleep(0.05)
        return "Slow"

    def nav_subtitle(self) -> str:
        return ""

    def title(self) -> str:
        return "Slow"

    def url(self) -> str:
        return ""

    def content(self) -> str:
        return ""


def _ms(text: str) -> float:
    match = re.search(r"([\d.]+) ms", text)
    assert match, text
    return float(match.group(1))


def test_the_toolbars_own_time_is_shown_apart_from_the_apps() -> None:
    """The toolbar renders a slow panel before ours: its 50 ms are the toolbar's, the
    panel's title shows the app's time without them, and the rows add up."""
    app = make_toolbar_app(DEBUG_TB_PANELS=[f"{__name__}.SlowToolbarPanel"])
    html = get_page(app.test_client())
    app_ms = _ms(cell(html, "observe-app"))
    toolbar_ms = _ms(cell(html, "observe-toolbar"))
    total_ms = _ms(cell(html, "observe-total"))
    assert "Your app so far (without the toolbar)" in cell(html, "observe-app")
    assert "the toolbar included" in cell(html, "observe-total")
    assert toolbar_ms >= 50.0
    assert abs(app_ms + toolbar_ms - total_ms) <= 0.002  # three decimals each
    subtitles = re.findall(r"<small>([^<]*)</small>", html)
    assert f"app {app_ms:.3f} ms" in subtitles  # the panel's title: not the total


def test_the_memory_panel_title_reads_as_a_change() -> None:
    html = get_page(make_toolbar_app().test_client())
    subtitles = re.findall(r"<small>([^<]*)</small>", html)
    assert [s for s in subtitles if re.fullmatch(r"ΔRSS [+-]\d+(\.\d)? (B|KiB|MiB)", s)]
    assert not [s for s in subtitles if s.startswith("RSS ")]
    assert format_bytes(0, signed=True) == "+0 B"
    assert format_bytes(-2048, signed=True) == "-2.0 KiB"
    assert format_bytes(0) == "0 B"
