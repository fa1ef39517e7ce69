"""When the panels run and who sees them: set-up with or without Flask-Observe, the
toolbar outside debug mode only with ``DEBUG_TB_HOSTS``, and our routes hidden from
other hosts (forwarded headers ignored) and once the toolbar is off."""

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
from flask_observe.panels.report import ReportStore
from flask_observe.state import get_state
from tests.support.toolbar import cell
from tests.support.toolbar import get_page
from tests.support.toolbar import make_toolbar_app
from tests.support.toolbar import SECRET

if t.TYPE_CHECKING:
    pass


NUMBER = re.compile(r"\d+(\.\d+)?")


def our_hooks(app: Flask) -> list[str]:
    names = [getattr(f, "__qualname__", "") for f in app.after_request_funcs.get(None, [])]
    state = app.extensions["observe"]
    names += [getattr(f, "__qualname__", "") for f in state.finish_hooks]
    return [name for name in names if "add_report_header" in name or "store_report" in name]


# --- set-up -----------------------------------------------------------------------


def test_panels_are_added_in_debug_mode() -> None:
    app = make_toolbar_app()
    assert app.config["DEBUG_TB_PANELS"] == (
        "flask_debugtoolbar.panels.versions.VersionDebugPanel",
        "flask_debugtoolbar.panels.timer.TimerDebugPanel",
        "flask_debugtoolbar.panels.headers.HeaderDebugPanel",
        "flask_debugtoolbar.panels.request_vars.RequestVarsDebugPanel",
        "flask_debugtoolbar.panels.config_vars.ConfigVarsDebugPanel",
        "flask_debugtoolbar.panels.template.TemplateDebugPanel",
        "flask_debugtoolbar.panels.sqlalchemy.SQLAlchemyDebugPanel",
        "flask_debugtoolbar.panels.logger.LoggingPanel",
        "flask_debugtoolbar.panels.route_list.RouteListDebugPanel",
        "flask_debugtoolbar.panels.profiler.ProfilerDebugPanel",
        "flask_debugtoolbar.panels.g.GDebugPanel",
        "flask_observe.panels.history.HistoryPanel",
        "flask_observe.panels.sql.SqlPanel",
        "flask_observe.panels.profiler.ProfilerPanel",
        "flask_observe.panels.memory.MemoryPanel",
        "flask_observe.panels.observe.ObservePanel",
    )
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


@pytest.mark.parametrize("toolbar_first", [True, False], ids=["toolbar-first", "observe-first"])
def test_pages_and_report_header_where_the_toolbar_is_set_up(toolbar_first: bool) -> None:
    app = make_toolbar_app(toolbar_first=toolbar_first)
    assert list(app.blueprints).count(BLUEPRINT_NAME) == 1
    client = app.test_client()
    response = client.get("/json")
    url = response.headers["X-Observe-Report"]
    response.close()
    assert url.startswith("/_observe/report/")
    report = client.get(url)
    assert report.status_code == 200 and "GET /json" in report.get_data(as_text=True)
    heap = client.get("/_observe/memory/heap")
    assert heap.status_code == 200
    heap.close()


def test_no_pages_and_no_report_header_without_the_toolbar() -> None:
    """Flask-DebugToolbar installed (it is importable here) but never set up on the
    app: debug mode alone gives no ``/_observe`` route and no ``X-Observe-Report``."""
    plain = Flask("no_toolbar")
    plain.config.update(SECRET_KEY=SECRET, DEBUG=True)
    plain.add_url_rule("/json", "json", lambda: {"answer": 42})
    Observe(plain)
    assert BLUEPRINT_NAME not in plain.blueprints
    client = plain.test_client()
    response = client.get("/json")
    assert response.json == {"answer": 42}
    assert "X-Observe-Report" not in response.headers
    for url in ("/_observe/memory/heap", "/_observe/history", "/_observe/static/observe.css"):
        assert client.get(url).status_code == 404
    # The same package on a neighbouring app with the toolbar still serves them.
    css = make_toolbar_app().test_client().get("/_observe/static/observe.css")
    assert css.status_code == 200
    css.close()


def test_no_report_header_when_our_pages_exist_but_the_toolbar_is_not_set_up() -> None:
    """Our panels listed by hand register the pages only through the toolbar's
    ``init_app``; if the toolbar's blueprint is missing anyway, the header stays off."""
    app = Flask("half")
    app.config.update(SECRET_KEY=SECRET, DEBUG=True)
    app.add_url_rule("/json", "json", lambda: {"answer": 42})
    Observe(app)
    from flask_observe.panels.views import register_routes

    register_routes(app)  # as a panel's init_app would, with no toolbar behind it
    client = app.test_client()
    assert "X-Observe-Report" not in client.get("/json").headers
    assert client.get("/_observe/memory/heap").status_code == 404


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
    assert "budget 1 s," in pages[0] and "budget 2.5 s," in pages[1]
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


def test_report_hidden_from_other_hosts() -> None:
    client = make_toolbar_app(DEBUG_TB_HOSTS=["10.9.8.7"]).test_client()
    response = client.get("/json", environ_base={"REMOTE_ADDR": "10.9.8.7"})
    url = response.headers["X-Observe-Report"]
    response.close()
    assert client.get(url, headers={"X-Forwarded-For": "10.9.8.7"}).status_code == 404
    assert client.get(url, environ_base={"REMOTE_ADDR": "10.9.8.7"}).status_code == 200
    other = client.get("/json")
    assert "X-Observe-Report" not in other.headers
