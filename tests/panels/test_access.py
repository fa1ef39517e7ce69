"""The Memory and Observe toolbar panels with Flask's test client: set-up, security,
the three memory tiers, the Observe clock, X-Observe-Report and the odd responses."""

from __future__ import annotations

import re
import subprocess
import sys
import typing as t

import pytest
from flask import Flask
from flask_debugtoolbar import DebugToolbarExtension

from flask_observe import ConfigError
from flask_observe import Observe
from flask_observe.panels import BLUEPRINT_NAME
from flask_observe.panels import MEMORY_PANEL
from flask_observe.panels import OBSERVE_PANEL
from flask_observe.panels import TOOLBAR_DEFAULT_PANELS
from flask_observe.panels.report import ReportStore
from flask_observe.panels.templating import format_config_value
from flask_observe.secrets import default_scrubber
from flask_observe.secrets import Scrubber
from flask_observe.state import get_state
from tests.support.toolbar import make_toolbar_app
from tests.support.toolbar import SECRET

if t.TYPE_CHECKING:
    from flask.testing import FlaskClient

MEMORY_ON = "flDebugMemoryPanel"
NUMBER = re.compile(r"\d+(\.\d+)?")


def cell(html: str, row_id: str) -> str:
    """The text of the table row with id *row_id* (tags stripped)."""
    match = re.search(rf'<tr[^>]*id="{row_id}"[^>]*>(.*?)</tr>', html, re.S)
    assert match, f"no row {row_id}"
    return re.sub(r"<[^>]+>", " ", match.group(1))


def get_page(client: FlaskClient, url: str = "/") -> str:
    response = client.get(url)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    response.close()
    return html


def our_hooks(app: Flask) -> list[str]:
    names = [getattr(f, "__qualname__", "") for f in app.after_request_funcs.get(None, [])]
    state = app.extensions["observe"]
    names += [getattr(f, "__qualname__", "") for f in state.finish_hooks]
    return [name for name in names if "add_report_header" in name or "store_report" in name]


# --- set-up -----------------------------------------------------------------------


def test_panels_are_added_in_debug_mode() -> None:
    app = make_toolbar_app()
    panels = app.config["DEBUG_TB_PANELS"]
    assert panels[: len(TOOLBAR_DEFAULT_PANELS)] == TOOLBAR_DEFAULT_PANELS
    assert panels[-2:] == (MEMORY_PANEL, OBSERVE_PANEL)
    assert BLUEPRINT_NAME in app.blueprints
    html = get_page(app.test_client())
    assert 'id="flDebugMemoryPanel"' in html and 'id="flDebugObservePanel"' in html


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"DEBUG": False, "TESTING": True}, id="production"),
        pytest.param({"OBSERVE_TOOLBAR_PANELS": False}, id="switched-off"),
        pytest.param({"DEBUG_TB_ENABLED": False}, id="toolbar-disabled"),
    ],
)
def test_nothing_of_ours_is_registered_when_off(config: dict[str, object]) -> None:
    app = Flask("off")
    app.config.update(SECRET_KEY=SECRET, DEBUG=True)
    app.config.update(config)
    Observe(app)
    assert MEMORY_PANEL not in app.config.get("DEBUG_TB_PANELS", ())
    assert BLUEPRINT_NAME not in app.blueprints
    assert our_hooks(app) == []
    assert get_state(app).part(ReportStore) is None
    assert app.test_client().get("/_observe/memory/heap").status_code == 404


def test_toolbar_initialised_first_works_too() -> None:
    app = make_toolbar_app(toolbar_first=True)
    assert list(app.blueprints).count(BLUEPRINT_NAME) == 1
    client = app.test_client()
    html = get_page(client)
    assert 'id="observe-total"' in html and 'id="memory-rss"' in html
    assert client.get("/_observe/memory/sizes").status_code == 200


def test_panels_by_dotted_path_without_observe() -> None:
    app = make_toolbar_app(observe=False, DEBUG_TB_PANELS=[MEMORY_PANEL, OBSERVE_PANEL])
    client = app.test_client()
    html = get_page(client)
    assert NUMBER.search(cell(html, "memory-rss"))
    assert "Flask-Observe is not initialised" in html
    assert client.get("/_observe/memory/classes").status_code == 200


def test_panels_listed_before_observe_share_its_report_store() -> None:
    """The toolbar registers our pages first (dotted paths), Observe comes later: the
    report pages still find the store that Observe's install made."""
    app = make_toolbar_app(toolbar_first=True, DEBUG_TB_PANELS=[MEMORY_PANEL, OBSERVE_PANEL])
    client = app.test_client()
    response = client.get("/json")
    url = response.headers["X-Observe-Report"]
    response.close()
    assert client.get(url).status_code == 200


def test_panels_without_observe_refuse_a_bad_budget_at_set_up() -> None:
    with pytest.raises(ConfigError, match="must be in") as info:
        make_toolbar_app(observe=False, DEBUG_TB_PANELS=[MEMORY_PANEL], OBSERVE_MEMORY_BUDGET=-1)
    assert info.value.key == "OBSERVE_MEMORY_BUDGET"


def test_two_apps_in_one_process() -> None:
    first, second = make_toolbar_app(), make_toolbar_app(OBSERVE_MEMORY_BUDGET=2.5)
    pages = []
    for app in (first, second):
        client = app.test_client()
        pages.append(get_page(client))
        assert 'id="memory-rss"' in pages[-1]
        assert client.get("/_observe/memory/heap").status_code == 200
    assert "budget 1000.000 ms" in pages[0] and "budget 2500.000 ms" in pages[1]
    stores = [get_state(app).part(ReportStore) for app in (first, second)]
    assert None not in stores and stores[0] is not stores[1]
    assert "observe_panels" not in first.extensions  # one home: the Observe state


def test_import_pulls_in_neither_toolbar_nor_pympler() -> None:
    code = (
        "import sys, flask_observe\n"
        "from flask import Flask\n"
        "flask_observe.Observe(Flask('x'))\n"
        "assert 'flask_debugtoolbar' not in sys.modules, 'toolbar imported'\n"
        "assert 'pympler' not in sys.modules, 'pympler imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_missing_toolbar_is_an_error_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "flask_debugtoolbar", None)
    app = Flask("missing")
    app.config.update(DEBUG=True, SECRET_KEY=SECRET, OBSERVE_TOOLBAR_PANELS=True)
    with pytest.raises(ConfigError, match="Flask-Observe\\[toolbar\\]") as info:
        Observe(app)
    assert info.value.key == "OBSERVE_TOOLBAR_PANELS"


def test_missing_toolbar_is_quiet_by_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "pympler", None)
    app = Flask("missing-default")
    app.config.update(DEBUG=True, SECRET_KEY=SECRET)
    Observe(app)
    assert get_state(app).part(ReportStore) is None
    assert MEMORY_PANEL not in app.config.get("DEBUG_TB_PANELS", ())


# --- security ----------------------------------------------------------------------


def test_toolbar_outside_debug_needs_hosts() -> None:
    app = Flask("prod")
    app.config.update(SECRET_KEY=SECRET, DEBUG_TB_ENABLED=True, OBSERVE_TOOLBAR_PANELS=True)
    with pytest.raises(ConfigError, match="DEBUG_TB_HOSTS") as info:
        Observe(app)
    assert info.value.key == "DEBUG_TB_HOSTS"


def test_dotted_path_outside_debug_needs_hosts() -> None:
    app = Flask("prod-dotted")
    app.config.update(SECRET_KEY=SECRET, DEBUG_TB_ENABLED=True, DEBUG_TB_PANELS=[MEMORY_PANEL])
    with pytest.raises(ConfigError, match="DEBUG_TB_HOSTS"):
        DebugToolbarExtension(app)


def test_outside_debug_with_hosts_is_allowed() -> None:
    app = make_toolbar_app(DEBUG=False, DEBUG_TB_ENABLED=True, OBSERVE_TOOLBAR_PANELS=True,
                           DEBUG_TB_HOSTS=["127.0.0.1"])  # fmt: skip
    assert app.test_client().get("/_observe/memory/sizes").status_code == 200


def toolbar_without_hosts(name: str) -> Flask:
    """A production app (debug off) whose config enables the toolbar for any host; our
    panels are left at their default (off outside debug mode)."""
    app = Flask(name)
    app.config.update(SECRET_KEY=SECRET, DEBUG_TB_ENABLED=True)

    @app.get("/")
    def index() -> str:
        return "<html><body>page</body></html>"

    return app


def test_toolbar_initialised_first_outside_debug_is_refused_without_our_panels() -> None:
    app = toolbar_without_hosts("toolbar-first")
    DebugToolbarExtension(app)
    with pytest.raises(ConfigError, match="DEBUG_TB_HOSTS") as info:
        Observe(app)
    assert info.value.key == "DEBUG_TB_HOSTS"
    assert "observe" not in app.extensions  # refused before anything was registered


def test_toolbar_initialised_after_observe_is_refused_at_the_first_request() -> None:
    app = toolbar_without_hosts("toolbar-after")
    Observe(app)
    DebugToolbarExtension(app)
    client = app.test_client()
    for _ in range(2):  # every request is refused, not just the first
        with pytest.raises(ConfigError, match="DEBUG_TB_HOSTS"):
            client.get("/")
    app.config["DEBUG_TB_HOSTS"] = ["127.0.0.1"]
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("toolbar_first", [True, False], ids=["toolbar-first", "observe-first"])
def test_toolbar_outside_debug_with_hosts_is_served_in_either_order(toolbar_first: bool) -> None:
    app = toolbar_without_hosts("with-hosts")
    app.config["DEBUG_TB_HOSTS"] = ["127.0.0.1"]
    if toolbar_first:
        DebugToolbarExtension(app)
        Observe(app)
    else:
        Observe(app)
        DebugToolbarExtension(app)
    response = app.test_client().get("/")
    assert response.status_code == 200
    assert "flDebug" in response.get_data(as_text=True)  # the toolbar itself is on


URLS = [
    "/_observe/memory/heap",
    "/_observe/memory/sizes",
    "/_observe/memory/classes",
    "/_observe/static/observe.css",
]


@pytest.mark.parametrize("url", URLS)
def test_routes_hidden_from_other_hosts_even_with_forwarded_for(url: str) -> None:
    app = make_toolbar_app(DEBUG_TB_HOSTS=["10.9.8.7"])
    client = app.test_client()
    spoofed = client.get(url, headers={"X-Forwarded-For": "10.9.8.7", "X-Real-IP": "10.9.8.7"})
    assert spoofed.status_code == 404
    allowed = client.get(url, environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert allowed.status_code == 200
    allowed.close()


@pytest.mark.parametrize("url", URLS)
def test_routes_404_once_the_toolbar_is_disabled(url: str) -> None:
    app = make_toolbar_app()
    app.config["DEBUG_TB_ENABLED"] = False
    assert app.test_client().get(url).status_code == 404


def test_values_are_escaped() -> None:
    client = make_toolbar_app().test_client()
    html = get_page(client, "/echo/%3Cscript%3Ealert(1)")
    panel = html[html.index('id="observe-panel"') :]
    assert "GET /echo/&lt;script&gt;alert(1)" in panel
    assert "<script>alert(1)" not in html


def test_secret_config_values_are_masked() -> None:
    client = make_toolbar_app(
        DB_PASSWORD="hunter2", DB_URL="postgres://app:pw42@db/app"
    ).test_client()
    sizes = client.get("/_observe/memory/sizes").get_data(as_text=True)
    assert "SECRET_KEY" in sizes and "DB_PASSWORD" in sizes and "DB_URL" in sizes
    for secret in (SECRET, "hunter2", "pw42"):
        assert secret not in sizes
    assert "postgres://[Filtered]@db/app" in sizes


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        pytest.param("SECRET_KEY", "abc", "[Filtered]", id="secret-key"),
        pytest.param("OBSERVE_SENTRY_DSN", "https://k@o1.invalid/1", "[Filtered]", id="dsn"),
        pytest.param("GITHUB_TOKEN", "ghp_x", "[Filtered]", id="token"),
        pytest.param("MAIL_PASSWORD", "pw", "[Filtered]", id="password"),
        pytest.param("STRIPE_API_KEY", "sk", "[Filtered]", id="api-key"),
        pytest.param("PAYMENT_CARD", "4111", "[Filtered]", id="card"),
        pytest.param("JWT_PRIVATE_KEY_PATH", "/etc/jwt.pem", "[Filtered]", id="private"),
        pytest.param("DATABASE_URL", "mysql://root:pw@h/db", "'mysql://[Filtered]@h/db'", id="url"),
        pytest.param(
            "CACHE_OPTIONS",
            {"password": "hunter2", "ttl": 60},
            "{'password': '[Filtered]', 'ttl': 60}",
            id="pair-inside",
        ),
        pytest.param("SECRET_KEY", None, "None", id="unset-secret"),
        pytest.param("DEBUG", True, "True", id="plain"),
    ],
)
def test_config_values_shown(key: str, value: object, shown: str) -> None:
    assert format_config_value(default_scrubber, key, value) == shown


def test_config_values_shown_with_the_apps_scrub_keys() -> None:
    scrubber = Scrubber(["ssn"])
    assert format_config_value(scrubber, "EXPORT_SSN", "078-05-1120") == "[Filtered]"
    assert format_config_value(scrubber, "EXPORT", "ssn=078-05-1120") == "'ssn=[Filtered]'"


def test_observe_panel_config_is_masked() -> None:
    from flask_observe.panels.observe import config_rows

    app = Flask("masked")
    app.config["OBSERVE_SENTRY_DSN"] = "https://publickey123@o1.invalid/1"
    rows = dict(config_rows(app))
    assert rows["OBSERVE_SENTRY_DSN"] == "[Filtered]"
    assert rows["OBSERVE_STATSD_PORT"] == "8125"


# --- memory tiers ------------------------------------------------------------------


def test_tier1_rows_carry_numbers_and_their_cost() -> None:
    client = make_toolbar_app().test_client()
    get_page(client)  # the first samples in a process pay one-off costs (a few ms)
    html = get_page(client)
    assert re.search(r"\d+\.\d MiB", cell(html, "memory-rss"))
    assert re.search(r"\d+ / \d+ / \d+", cell(html, "memory-gc"))
    cost = re.search(r"([\d.]+) ms", cell(html, "memory-tier1-cost"))
    # Tier 1 takes about 0.3 ms warm; a Pympler heap summary, which it must never do,
    # takes about 500 ms in the test process. The bound is far from both.
    assert cost and 0 < float(cost.group(1)) < 100
    assert 'id="memory-tier2-off"' in html and 'id="memory-types"' not in html


def test_tier1_shows_tracemalloc_when_tracing() -> None:
    import tracemalloc

    tracemalloc.start()
    try:
        html = get_page(make_toolbar_app().test_client(), "/leak")
    finally:
        tracemalloc.stop()
    assert re.search(r"\+\d", cell(html, "memory-tracemalloc"))


def test_tier2_heap_diff_when_switched_on() -> None:
    # The whole test suite's heap is far bigger than an app's: a generous budget.
    client = make_toolbar_app(OBSERVE_MEMORY_BUDGET=30.0).test_client()
    client.set_cookie("fldt_active", MEMORY_ON)
    html = get_page(client, "/leak")
    table = html[html.index('id="memory-types"') :]
    row = re.search(r"tests\.support\.toolbar\.Leak</td>\s*<td[^>]*>\+(\d+)</td>", table)
    assert row and int(row.group(1)) == 5000
    assert 'id="memory-tier2-cost"' in html


def test_tier2_is_cut_short_by_its_budget() -> None:
    ballast = [[index] for index in range(300_000)]
    client = make_toolbar_app(OBSERVE_MEMORY_BUDGET=0.01).test_client()
    client.set_cookie("fldt_active", MEMORY_ON)
    html = get_page(client, "/leak")
    del ballast
    assert 'id="memory-cut-short"' in html and "OBSERVE_MEMORY_BUDGET" in html
    assert 'id="memory-types"' not in html


def test_tier3_heap_summary_page() -> None:
    client = make_toolbar_app().test_client()
    response = client.get("/_observe/memory/heap")
    html = response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    assert re.search(r"<td>dict</td><td[^>]*>\d+</td>", html)
    assert "flDebug" not in html  # the toolbar left our page alone


def test_tier3_sizes_page() -> None:
    html = make_toolbar_app().test_client().get("/_observe/memory/sizes").get_data(as_text=True)
    for name in (
        "app.config",
        "app.extensions",
        "g (this request)",
        "app.extensions[&#39;observe&#39;]",
    ):
        assert name in html
    assert re.search(r"app\.config</code></td><td[^>]*>\d+\.\d KiB", html)


def test_tier3_class_tracker() -> None:
    client = make_toolbar_app().test_client()
    page = client.get("/_observe/memory/classes").get_data(as_text=True)
    token = re.search(r'name="token" value="([^"]+)"', page)
    assert token
    names = "tests.support.toolbar.Widget no.such.Class os.path"
    html = client.post(
        "/_observe/memory/classes", data={"token": token.group(1), "names": names}
    ).get_data(as_text=True)
    assert "Tracking new instances of tests.support.toolbar.Widget" in html
    assert "No class no.such.Class" in html and "No class os.path" in html
    client.get("/widgets").close()
    html = client.get("/_observe/memory/classes").get_data(as_text=True)
    assert re.search(r"Widget</code></td><td[^>]*>3</td><td[^>]*>3</td>", html)
    stop = {"token": token.group(1), "action": "stop"}
    html = client.post("/_observe/memory/classes", data=stop).get_data(as_text=True)
    assert "No class tracked" in html
    forged = {"token": "forged", "names": "tests.support.toolbar.Widget"}
    assert client.post("/_observe/memory/classes", data=forged).status_code == 400


# --- observe panel and reports -----------------------------------------------------


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


def test_report_masks_the_error_with_the_apps_scrub_keys() -> None:
    """The report is kept by a finish hook, outside the app context: it still applies
    the app's own secret rules (OBSERVE_SCRUB_KEYS) to the exception's text."""
    from flask_observe import APIError

    app = make_toolbar_app(OBSERVE_SCRUB_KEYS=["ssn"])

    @app.get("/lookup")
    def lookup() -> str:
        raise APIError("no match for ssn=078-05-1120, password=hunter2", status=404)

    client = app.test_client()
    response = client.get("/lookup")
    url = response.headers["X-Observe-Report"]
    response.close()
    html = client.get(url).get_data(as_text=True)
    assert "no match for ssn=[Filtered], password=[Filtered]" in html
    assert "078-05-1120" not in html and "hunter2" not in html


def test_report_header_on_json_with_the_values_sent() -> None:
    client = make_toolbar_app().test_client()
    response = client.get("/json")
    url = response.headers["X-Observe-Report"]
    sent = response.headers["Server-Timing"]
    response.close()
    assert url.startswith("/_observe/report/")
    html = client.get(url).get_data(as_text=True)
    assert f'id="observe-server-timing">{sent}<' in html
    assert "GET /json" in html and "(as of rendering)" not in html
    assert re.search(r"\d+\.\d MiB", cell(html, "memory-rss"))


def test_no_report_header_on_html_pages() -> None:
    response = make_toolbar_app().test_client().get("/")
    assert "X-Observe-Report" not in response.headers


def test_report_store_is_bounded() -> None:
    client = make_toolbar_app(OBSERVE_REPORT_STORE_SIZE=2).test_client()
    urls = []
    for _ in range(3):
        response = client.get("/json")
        urls.append(response.headers["X-Observe-Report"])
        response.close()
    assert client.get(urls[0]).status_code == 404
    assert [client.get(url).status_code for url in urls[1:]] == [200, 200]


def test_report_hidden_from_other_hosts() -> None:
    client = make_toolbar_app(DEBUG_TB_HOSTS=["10.9.8.7"]).test_client()
    response = client.get("/json", environ_base={"REMOTE_ADDR": "10.9.8.7"})
    url = response.headers["X-Observe-Report"]
    response.close()
    assert client.get(url, headers={"X-Forwarded-For": "10.9.8.7"}).status_code == 404
    assert client.get(url, environ_base={"REMOTE_ADDR": "10.9.8.7"}).status_code == 200
    other = client.get("/json")
    assert "X-Observe-Report" not in other.headers


def test_htmx_fragment_gets_a_report() -> None:
    client = make_toolbar_app().test_client()
    with pytest.warns(UserWarning, match="Could not insert debug toolbar"):
        response = client.get("/fragment", headers={"HX-Request": "true"})
    assert "X-Observe-Report" in response.headers


# --- async, streams, redirects --------------------------------------------------------


@pytest.mark.parametrize("url", ["/async", "/async-page"])
def test_async_views_with_the_toolbar_on(url: str) -> None:
    response = make_toolbar_app().test_client().get(url)
    assert response.status_code == 200
    if url == "/async":
        assert response.json == {"mode": "async"}
    else:
        assert "async page" in response.get_data(as_text=True)
        assert 'id="memory-rss"' in response.get_data(as_text=True)


def test_async_views_with_only_the_observe_panel() -> None:
    app = make_toolbar_app(observe=False, DEBUG_TB_PANELS=[OBSERVE_PANEL])
    assert app.test_client().get("/async").json == {"mode": "async"}


def test_streaming_response_with_the_toolbar_on() -> None:
    client = make_toolbar_app().test_client()
    response = client.get("/stream")
    assert response.get_data(as_text=True) == "line 0\nline 1\nline 2\n"
    url = response.headers["X-Observe-Report"]
    response.close()
    html = client.get(url).get_data(as_text=True)
    assert "Total (until the body was closed)" in html
    assert re.search(r"[\d.]+ ms", cell(html, "observe-total"))


def test_redirect_intercepted_by_the_toolbar() -> None:
    response = make_toolbar_app().test_client().get("/go")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "/json" in html
    assert 'id="observe-total"' in html and 'id="memory-rss"' in html


def test_a_404_page_still_renders_the_panels() -> None:
    """An HTML error page (the app's own 404 page) gets the toolbar with both panels
    filled in. (Werkzeug's bare default page has no ``</body>``, so the toolbar skips
    it, with or without Flask-Observe.)"""
    app = make_toolbar_app()

    @app.errorhandler(404)
    def not_found(error: Exception) -> tuple[str, int]:
        return "<html><body><h1>Not Found</h1></body></html>", 404

    client = app.test_client()
    response = client.get("/missing")
    html = response.get_data(as_text=True)
    response.close()
    assert response.status_code == 404 and "<h1>Not Found</h1>" in html
    assert 'id="flDebugMemoryPanel"' in html and 'id="flDebugObservePanel"' in html
    assert re.search(r"\d+\.\d MiB", cell(html, "memory-rss"))
    assert re.search(r"[\d.]+ ms", cell(html, "observe-total"))
    assert "GET /missing &rarr; 404" in html


def test_a_json_404_links_to_both_panels() -> None:
    """With JSON errors (the default) the 404 is not HTML: the panels are on its report."""
    client = make_toolbar_app().test_client()
    response = client.get("/missing")
    assert response.status_code == 404 and response.mimetype == "application/problem+json"
    url = response.headers["X-Observe-Report"]
    response.close()
    html = client.get(url).get_data(as_text=True)
    assert "GET /missing &rarr; 404" in html
    assert re.search(r"[\d.]+ ms", cell(html, "observe-total"))
    assert 'id="observe-memory"' in html  # the Memory panel's section


def test_the_report_of_a_view_that_raised_has_its_memory_figures() -> None:
    client = make_toolbar_app().test_client()
    response = client.get("/missing")
    url = response.headers["X-Observe-Report"]
    response.close()
    html = client.get(url).get_data(as_text=True)
    assert re.search(r"\d+\.\d MiB", cell(html, "memory-rss"))


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


def test_a_failing_sample_never_reaches_the_app(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from flask_observe import containment
    from flask_observe.panels import memory

    monkeypatch.setattr(containment, "_last_warned", {})  # the warnings are rate-limited

    def broken() -> t.NoReturn:
        raise OSError("no /proc here")

    monkeypatch.setattr(memory, "sample", broken)
    client = make_toolbar_app().test_client()
    response = client.get("/json")
    assert response.json == {"answer": 42}
    html = get_page(client)
    assert "hello" in html and 'id="memory-no-view"' in html
    assert "memory panel sample failed" in caplog.text


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
