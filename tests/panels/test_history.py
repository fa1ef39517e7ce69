"""The request history with Flask's test client: the store, the JSON API (content,
bounds, gating), the History panel and page, reports as JSON and the new settings."""

from __future__ import annotations

import json
import re
import typing as t

import pytest
from flask import Flask

from flask_observe import APIError
from flask_observe import ConfigError
from flask_observe import Observe
from flask_observe.panels import HISTORY_PANEL
from flask_observe.panels.codec import dump
from flask_observe.panels.codec import load
from flask_observe.panels.report import ReportStore
from flask_observe.state import get_state
from tests.support.toolbar import make_toolbar_app
from tests.support.toolbar import SECRET

if t.TYPE_CHECKING:
    from flask.testing import FlaskClient

PROFILER_ON = "flDebugSamplingProfilerPanel"
REPORT_ID = re.compile(r"^[A-Za-z0-9_-]{16}$")


def fetch(client: FlaskClient, url: str, **kwargs: t.Any) -> t.Any:
    """GET *url*, read the body, close the response (the report is kept on close)."""
    response = client.get(url, **kwargs)
    response.get_data()
    response.close()
    return response


def history(client: FlaskClient, **kwargs: t.Any) -> list[dict[str, t.Any]]:
    response = client.get("/_observe/api/requests", **kwargs)
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    return t.cast("list[dict[str, t.Any]]", as_json(response)["requests"])


def as_json(response: t.Any) -> dict[str, t.Any]:
    data = response.get_json()
    assert isinstance(data, dict)
    return data


def shown(rows: list[dict[str, t.Any]]) -> list[tuple[str, str, int]]:
    return [(row["method"], row["path"], row["status"]) for row in rows]


# --- what the history holds -----------------------------------------------------------


def test_every_kind_of_request_is_listed_newest_first() -> None:
    client = make_toolbar_app().test_client()
    fetch(client, "/")  # an HTML page: the toolbar shows it
    fetch(client, "/json")
    fetch(client, "/json", headers={"X-Requested-With": "XMLHttpRequest"})
    with pytest.warns(UserWarning, match="Could not insert debug toolbar"):
        fetch(client, "/fragment", headers={"HX-Request": "true"})
    fetch(client, "/missing")  # problem+json 404
    fetch(client, "/go")  # a redirect, intercepted by the toolbar
    fetch(client, "/stream")
    client.post("/json").close()  # 405
    assert shown(history(client)) == [
        ("POST", "/json", 405),
        ("GET", "/stream", 200),
        ("GET", "/go", 200),
        ("GET", "/missing", 404),
        ("GET", "/fragment", 200),
        ("GET", "/json", 200),
        ("GET", "/json", 200),
        ("GET", "/", 200),
    ]


def test_a_row_has_every_field_and_links_to_its_report() -> None:
    client = make_toolbar_app().test_client()
    response = fetch(client, "/json")
    (row,) = history(client)
    assert set(row) == {
        "id",
        "at",
        "method",
        "path",
        "endpoint",
        "status",
        "duration_ms",
        "view_ms",
        "toolbar_ms",
        "memory_delta",
        "error",
        "event_id",
        "report_url",
        "url",
    }
    assert REPORT_ID.match(row["id"])
    assert row["report_url"] == response.headers["X-Observe-Report"]
    assert row["report_url"] == f"/_observe/report/{row['id']}"
    assert row["url"] == f"/_observe/api/requests/{row['id']}"
    assert row["endpoint"] == "json_view" and row["error"] is None and row["event_id"] is None
    assert row["toolbar_ms"] is None  # JSON: the toolbar did nothing
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$", row["at"])
    # The duration is the one sent in X-Runtime (seconds), in milliseconds.
    assert row["duration_ms"] == pytest.approx(
        float(response.headers["X-Runtime"]) * 1000, abs=0.01
    )
    assert 0 < row["view_ms"] <= row["duration_ms"]
    assert isinstance(row["memory_delta"], int)
    assert "GET /json" in client.get(row["report_url"]).get_data(as_text=True)


def test_an_error_shows_its_type_message_and_event_id() -> None:
    app = make_toolbar_app(OBSERVE_SCRUB_KEYS=["ssn"])

    @app.get("/lookup")
    def lookup() -> str:
        raise APIError("no match for ssn=078-05-1120", status=404)

    client = app.test_client()
    fetch(client, "/lookup")
    (row,) = history(client)
    assert row["status"] == 404
    assert row["error"] == {
        "type": "APIError",
        "message": "404 Not Found: no match for ssn=[Filtered]",
    }
    assert "078-05-1120" not in client.get("/_observe/api/requests").get_data(as_text=True)


def test_the_whole_report_as_json() -> None:
    client = make_toolbar_app().test_client()
    response = fetch(client, "/json")
    (row,) = history(client)
    report = client.get(row["url"])
    assert report.headers["Cache-Control"] == "no-store"
    data = as_json(report)
    assert data["summary"] == row
    assert data["server_timing"] == response.headers["Server-Timing"]
    assert data["timers"] == [
        {"name": "json", "seconds": data["timers"][0]["seconds"], "metric": True}
    ]
    assert data["final"] is True and data["status"] == 200
    assert data["memory"]["rss_delta"] == row["memory_delta"]
    timeline = data["timeline"]
    assert timeline["toolbar"] is None  # JSON: the toolbar did nothing
    start, end = timeline["view"]
    assert 0 < start < end <= timeline["headers"] <= timeline["end"]
    assert timeline["end"] == pytest.approx(data["total"])


def test_a_report_survives_json_unchanged_with_memory_heap_and_profile() -> None:
    """What the SQLite store writes and reads back: every figure, the heap diff and
    the profile's stacks."""
    app = make_toolbar_app()

    @app.get("/busy")
    def busy() -> dict[str, int]:
        total = 0
        for value in range(300_000):
            total += value % 7
        return {"total": total}

    client = app.test_client()
    client.set_cookie("fldt_active", f"{PROFILER_ON};flDebugMemoryPanel")
    fetch(client, "/busy")
    store = get_state(app).part(ReportStore)
    assert store is not None
    (item,) = store.recent()
    assert item.memory is not None and item.heap is not None and item.profile is not None
    assert item.profile.profile.samples > 0
    assert load(json.loads(json.dumps(dump(item)))) == item


def test_report_of_another_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format 1"):
        load({"format": 99})


# --- bounds -------------------------------------------------------------------------


def test_history_keeps_the_newest_history_size_requests() -> None:
    client = make_toolbar_app(OBSERVE_HISTORY_SIZE=3).test_client()
    for name in ("a", "b", "c", "d", "e"):
        fetch(client, f"/echo/{name}")
    assert [row["path"] for row in history(client)] == ["/echo/e", "/echo/d", "/echo/c"]
    assert as_json(client.get("/_observe/api/requests"))["size"] == 3


def test_history_is_never_longer_than_the_report_store() -> None:
    """Every row links to its report: with two reports kept, two rows are listed."""
    client = make_toolbar_app(OBSERVE_REPORT_STORE_SIZE=2).test_client()
    for name in ("a", "b", "c"):
        fetch(client, f"/echo/{name}")
    rows = history(client)
    assert [row["path"] for row in rows] == ["/echo/c", "/echo/b"]
    assert all(client.get(row["report_url"]).status_code == 200 for row in rows)


def test_an_evicted_or_unknown_report_is_404() -> None:
    client = make_toolbar_app(OBSERVE_REPORT_STORE_SIZE=1).test_client()
    fetch(client, "/json")
    (first,) = history(client)
    fetch(client, "/json")
    assert client.get(first["url"]).status_code == 404
    assert client.get("/_observe/api/requests/AAAAAAAAAAAAAAAA").status_code == 404


def test_report_ids_are_unguessable() -> None:
    client = make_toolbar_app().test_client()
    for _ in range(20):
        fetch(client, "/json")
    ids = [row["id"] for row in history(client)]
    assert len(set(ids)) == 20 and all(REPORT_ID.match(report_id) for report_id in ids)


def test_our_pages_and_static_files_are_not_listed() -> None:
    client = make_toolbar_app().test_client()
    fetch(client, "/json")
    fetch(client, "/_observe/api/requests")
    fetch(client, "/_observe/history")
    fetch(client, "/_observe/static/history.js")
    fetch(client, "/_debug_toolbar/static/css/toolbar.css")
    assert shown(history(client)) == [("GET", "/json", 200)]


# --- gating -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["/_observe/api/requests", "/_observe/history", "/_observe/static/history.js"]
)
def test_other_hosts_get_404_and_are_not_recorded(url: str) -> None:
    client = make_toolbar_app(DEBUG_TB_HOSTS=["10.9.8.7"]).test_client()
    allowed = {"REMOTE_ADDR": "10.9.8.7"}
    fetch(client, "/json")  # 127.0.0.1: not shown the toolbar, not recorded
    fetch(client, "/json", environ_base=allowed)
    assert fetch(client, url).status_code == 404
    assert fetch(client, url, headers={"X-Forwarded-For": "10.9.8.7"}).status_code == 404
    assert fetch(client, url, environ_base=allowed).status_code == 200
    assert len(history(client, environ_base=allowed)) == 1


def test_the_api_of_a_toolbar_disabled_app_does_not_exist() -> None:
    client = make_toolbar_app(DEBUG_TB_ENABLED=False).test_client()
    fetch(client, "/json")
    assert client.get("/_observe/api/requests").status_code == 404


def test_refused_in_production_without_hosts() -> None:
    app = Flask("prod")
    app.config.update(SECRET_KEY=SECRET, DEBUG_TB_ENABLED=True, OBSERVE_TOOLBAR_PANELS=True)
    with pytest.raises(ConfigError) as info:
        Observe(app)
    assert info.value.key == "DEBUG_TB_HOSTS"


def test_the_history_panel_without_observe_says_so() -> None:
    app = make_toolbar_app(observe=False, DEBUG_TB_PANELS=[HISTORY_PANEL])
    client = app.test_client()
    html = fetch(client, "/").get_data(as_text=True)
    assert "Flask-Observe is not initialised on this app" in html
    assert client.get("/_observe/api/requests").status_code == 404


# --- the panel and the page ---------------------------------------------------------


def test_the_panel_lists_earlier_requests_with_bars_and_follows_fetches() -> None:
    client = make_toolbar_app().test_client()
    fetch(client, "/json")
    fetch(client, "/missing")
    html = fetch(client, "/").get_data(as_text=True)
    assert 'id="flDebugHistoryPanel"' in html
    assert "2 requests" in html  # the subtitle: this page is not complete yet
    body = html[
        html.index('id="observe-history-rows"') : html.index(
            "</tbody>", html.index('id="observe-history-rows"')
        )
    ]
    assert re.findall(r">(GET /[a-z]+)</a>", body) == ["GET /missing", "GET /json"]
    widths = [float(width) for width in re.findall(r'<rect width="([\d.]+)"', body)]
    assert len(widths) == 2 and max(widths) == 120.0  # the slowest fills the bar
    assert "This page: GET / &rarr; 200" in html
    script = '<script src="/_observe/static/history.js" data-api="/_observe/api/requests" defer>'
    assert script + "</script>" in html


def test_the_page_lists_the_history_without_the_toolbar() -> None:
    client = make_toolbar_app().test_client()
    fetch(client, "/json")
    response = client.get("/_observe/history")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert "<h1>Request history</h1>" in html and ">GET /json</a>" in html
    assert "flDebug" not in html.replace("flDebugOdd", "").replace("flDebugEven", "")
    assert "history.js" not in html


def test_paths_are_escaped_in_the_panel_and_page() -> None:
    client = make_toolbar_app().test_client()
    fetch(client, "/echo/<img src=x onerror=alert(1)>")
    page = client.get("/_observe/history").get_data(as_text=True)
    assert "<img src=x" not in page
    assert "GET /echo/&lt;img src=x onerror=alert(1)&gt;</a>" in page


def test_the_script_is_a_static_file_of_ours() -> None:
    client = make_toolbar_app().test_client()
    response = client.get("/_observe/static/history.js")
    assert response.status_code == 200 and response.mimetype == "text/javascript"
    script = response.get_data(as_text=True)
    response.close()
    assert "window.flObserveHistory" in script and "X-Observe-Report" in script


# --- configuration ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        pytest.param("OBSERVE_HISTORY_SIZE", 0, "must be between 1 and 100000", id="size-zero"),
        pytest.param("OBSERVE_HISTORY_SIZE", "50", "expected an integer", id="size-text"),
        pytest.param("OBSERVE_HISTORY_PATH", 5, "expected a string or None", id="path-number"),
        pytest.param("OBSERVE_HISTORY_PATHS", "x", "Did you mean OBSERVE_HISTORY_PATH", id="typo"),
    ],
)
def test_bad_settings_name_their_key(key: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        config: dict[str, t.Any] = {key: value}
        make_toolbar_app(**config)
    assert info.value.key == key


def test_two_apps_keep_two_histories() -> None:
    first, second = make_toolbar_app(), make_toolbar_app(OBSERVE_HISTORY_SIZE=5)
    fetch(first.test_client(), "/json")
    fetch(second.test_client(), "/")
    assert shown(history(first.test_client())) == [("GET", "/json", 200)]
    assert shown(history(second.test_client())) == [("GET", "/", 200)]
    assert as_json(second.test_client().get("/_observe/api/requests"))["size"] == 5


def test_a_pages_row_shows_the_toolbars_share_in_red() -> None:
    client = make_toolbar_app().test_client()
    fetch(client, "/")
    fetch(client, "/json")
    page_row, json_row = history(client)[::-1]
    assert page_row["path"] == "/" and 0 < page_row["toolbar_ms"] < page_row["duration_ms"]
    assert json_row["toolbar_ms"] is None
    html = client.get("/_observe/history").get_data(as_text=True)
    (red,) = re.findall(r'<rect class="observe-bar-toolbar" x="([\d.]+)" width="([\d.]+)"', html)
    assert float(red[0]) + float(red[1]) == pytest.approx(120.0, abs=0.02)  # the slowest: the page
    assert f"toolbar {page_row['toolbar_ms']} ms" in html
