"""The way back from tier-3 pages: each names the page it was opened from and the
history, and follows only a local path."""

from __future__ import annotations

import re
import typing as t

import pytest

from flask_observe.panels.templating import local_path
from tests.support.toolbar import get_page
from tests.support.toolbar import make_toolbar_app

if t.TYPE_CHECKING:
    from flask.testing import FlaskClient


def nav_links(html: str) -> dict[str, str]:
    """``id`` to ``href`` of the links in the page's navigation."""
    nav = re.search(r'<nav[^>]*id="observe-nav"[^>]*>(.*?)</nav>', html, re.S)
    assert nav, "no navigation"
    return {
        ident: href for href, ident in re.findall(r'<a href="([^"]+)" id="([^"]+)"', nav.group(1))
    }


def memory_links(html: str) -> list[str]:
    panel = html[html.index('id="memory-links"') :]
    return re.findall(r'<a href="([^"]+)"', panel[: panel.index("</ul>")])


def open_page(client: FlaskClient, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    html = response.get_data(as_text=True)
    response.close()
    return html


def test_tier3_pages_link_back_to_the_page_they_were_opened_from() -> None:
    client = make_toolbar_app().test_client()
    links = memory_links(get_page(client, "/echo/bob?x=1&y=2"))
    assert links == [
        "/_observe/memory/heap?back=/echo/bob?x%3D1%26y%3D2",
        "/_observe/memory/sizes?back=/echo/bob?x%3D1%26y%3D2",
        "/_observe/memory/classes?back=/echo/bob?x%3D1%26y%3D2",
    ]
    for link in links:
        nav = nav_links(open_page(client, link))
        assert nav == {
            "observe-back": "/echo/bob?x=1&amp;y=2",
            "observe-history-link": "/_observe/history",
        }


def test_the_class_trackers_form_keeps_the_way_back() -> None:
    client = make_toolbar_app().test_client()
    html = open_page(client, "/_observe/memory/classes?back=/echo/bob")
    token = re.search(r'name="token" value="([^"]+)"', html)
    action = re.search(r'<form method="post" action="([^"]+)"', html)
    assert token and action and action.group(1) == "/_observe/memory/classes?back=/echo/bob"
    response = client.post(action.group(1), data={"token": token.group(1), "names": ""})
    assert nav_links(response.get_data(as_text=True))["observe-back"] == "/echo/bob"
    response.close()


def test_a_report_links_back_to_its_page_and_to_the_history() -> None:
    client = make_toolbar_app().test_client()
    response = client.get("/json")
    url = response.headers["X-Observe-Report"]
    response.close()
    assert nav_links(open_page(client, url)) == {
        "observe-back": "/json",
        "observe-history-link": "/_observe/history",
    }


def test_a_report_of_a_post_links_only_to_the_history() -> None:
    """Following a POST's path would send a GET the user never made: no back link."""
    app = make_toolbar_app()
    app.add_url_rule("/submit", "submit", lambda: {"ok": True}, methods=["POST"])
    client = app.test_client()
    response = client.post("/submit")
    url = response.headers["X-Observe-Report"]
    response.close()
    assert nav_links(open_page(client, url)) == {"observe-history-link": "/_observe/history"}


def test_the_history_page_opened_from_the_toolbar_links_back() -> None:
    client = make_toolbar_app().test_client()
    html = get_page(client, "/echo/ann")
    page = re.search(r'<a href="(/_observe/history[^"]*)"[^>]*>open as a page</a>', html)
    assert page and page.group(1) == "/_observe/history?back=/echo/ann"
    assert nav_links(open_page(client, page.group(1))) == {"observe-back": "/echo/ann"}


@pytest.mark.parametrize(
    "back",
    [
        pytest.param("https://evil.example/", id="absolute"),
        pytest.param("//evil.example/", id="scheme-relative"),
        pytest.param("/\\evil.example/", id="backslash"),
        pytest.param("javascript:alert(1)", id="script"),
        pytest.param("/a\nb", id="newline"),
        pytest.param("/" + "a" * 2000, id="too-long"),
    ],
)
def test_only_a_local_path_is_followed(back: str) -> None:
    assert local_path(back) is None
    client = make_toolbar_app().test_client()
    html = open_page(client, "/_observe/memory/sizes?" + _query(back))
    assert "observe-back" not in nav_links(html)
    assert "evil.example" not in html


def _query(back: str) -> str:
    from urllib.parse import urlencode

    return urlencode({"back": back})


def test_the_way_back_keeps_the_apps_mount_point() -> None:
    """An app mounted under ``/shop`` (``SCRIPT_NAME``) links back to ``/shop/...``."""
    client = make_toolbar_app().test_client()
    response = client.get("/echo/bob", base_url="http://localhost/shop/")
    html = response.get_data(as_text=True)
    response.close()
    assert memory_links(html)[0] == "/shop/_observe/memory/heap?back=/shop/echo/bob"
    page = client.get(
        "/_observe/memory/heap?back=/shop/echo/bob", base_url="http://localhost/shop/"
    )
    assert nav_links(page.get_data(as_text=True)) == {
        "observe-back": "/shop/echo/bob",
        "observe-history-link": "/shop/_observe/history",
    }
    page.close()
