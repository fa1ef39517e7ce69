"""Errors answered by what the client asks for (``OBSERVE_JSON_ERRORS = None``, the
default): problem+json for API clients, the app's or Flask's HTML page for browsers,
with the same status and headers either way; ``True`` and ``False`` force one answer.
In the browser test Chromium itself makes the requests (page loads, a form, a fetch)."""

from __future__ import annotations

import json
import typing as t

import pytest
from flask import abort
from flask import Flask

from flask_observe import Observe
from tests.support.services import chromium_page
from tests.support.services import serve_in_thread
from tests.support.services import starts_services

if t.TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.support.apps import AppFactory

#: What Chromium sends when it navigates to a page.
BROWSER_ACCEPT = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
    "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"
)

HTML = "text/html; charset=utf-8"
PROBLEM = "application/problem+json"

FLASK_405_PAGE = (
    "<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n"
    "<h1>Method Not Allowed</h1>\n<p>The method is not allowed for the requested URL.</p>\n"
)


def add_routes(app: Flask) -> None:
    """``/explore`` (GET and POST), ``/busy`` (a 503 with ``Retry-After``), ``/boom``
    (an unhandled ``ValueError``)."""

    @app.route("/explore", methods=["GET", "POST"])
    def explore() -> str:
        return "explore"

    @app.get("/busy")
    def busy() -> str:
        abort(503, description="Try later.", retry_after=30)

    @app.get("/boom")
    def boom() -> str:
        raise ValueError("boom")


@pytest.mark.parametrize(
    ("headers", "content_type"),
    [
        pytest.param({}, PROBLEM, id="no-accept"),
        pytest.param({"Accept": "*/*"}, PROBLEM, id="anything"),
        pytest.param({"Accept": "application/json"}, PROBLEM, id="json"),
        pytest.param({"Accept": "application/problem+json"}, PROBLEM, id="problem-json"),
        pytest.param({"Accept": "application/json, text/html"}, PROBLEM, id="tie-goes-to-json"),
        pytest.param({"Accept": "application/xml"}, PROBLEM, id="neither"),
        pytest.param(
            {"Accept": BROWSER_ACCEPT, "Content-Type": "application/json"},
            PROBLEM,
            id="json-request",
        ),
        pytest.param({"Accept": BROWSER_ACCEPT}, HTML, id="browser"),
        pytest.param({"Accept": "text/html, */*"}, HTML, id="html-first"),
        pytest.param({"Accept": "text/html;q=0.9, application/json;q=0.5"}, HTML, id="html-q"),
        pytest.param({"Accept": "application/xhtml+xml"}, HTML, id="xhtml"),
    ],
)
def test_the_accept_header_chooses_the_body(
    make_app: AppFactory, headers: dict[str, str], content_type: str
) -> None:
    app = make_app(add_routes)
    response = app.test_client().delete("/explore", headers=headers, data=b"{}")
    assert response.status_code == 405
    assert response.headers["Content-Type"] == content_type
    # Werkzeug lists the methods of a set: their order changes from run to run.
    assert sorted(response.headers["Allow"].split(", ")) == ["GET", "HEAD", "OPTIONS", "POST"]
    assert response.headers["Vary"] == "Accept"


def test_a_browser_gets_flasks_page_and_an_api_client_the_problem(make_app: AppFactory) -> None:
    client = make_app(add_routes).test_client()
    page = client.delete("/explore", headers={"Accept": BROWSER_ACCEPT})
    assert page.get_data(as_text=True) == FLASK_405_PAGE
    problem = client.delete("/explore")
    assert json.loads(problem.get_data()) == {
        "type": "about:blank",
        "title": "Method Not Allowed",
        "status": 405,
        "detail": "The method is not allowed for the requested URL.",
    }


def test_retry_after_is_kept_in_both_bodies(make_app: AppFactory) -> None:
    client = make_app(add_routes).test_client()
    page = client.get("/busy", headers={"Accept": BROWSER_ACCEPT})
    problem = client.get("/busy", headers={"Accept": "application/json"})
    for response in (page, problem):
        assert (response.status_code, response.headers["Retry-After"]) == (503, "30")
    assert (page.headers["Content-Type"], problem.headers["Content-Type"]) == (HTML, PROBLEM)
    assert "<p>Try later.</p>" in page.get_data(as_text=True)


def test_the_apps_own_handler_answers_browsers(make_app: AppFactory) -> None:
    def routes(app: Flask) -> None:
        add_routes(app)

        @app.errorhandler(404)
        def not_found(error: Exception) -> tuple[str, int]:
            return "<h1>Nothing here</h1>", 404

    client = make_app(routes).test_client()
    response = client.get("/nope", headers={"Accept": BROWSER_ACCEPT})
    assert (response.status_code, response.headers["Content-Type"]) == (404, HTML)
    assert response.get_data(as_text=True) == "<h1>Nothing here</h1>"


@pytest.mark.parametrize(
    ("setting", "browser", "api"),
    [
        pytest.param(True, PROBLEM, PROBLEM, id="true-always-json"),
        pytest.param(False, HTML, HTML, id="false-always-flask"),
        pytest.param(None, HTML, PROBLEM, id="none-negotiates"),
    ],
)
def test_the_setting_forces_or_negotiates(
    make_app: AppFactory, setting: bool | None, browser: str, api: str
) -> None:
    client = make_app(add_routes, OBSERVE_JSON_ERRORS=setting).test_client()
    for accept, expected in ((BROWSER_ACCEPT, browser), ("application/json", api)):
        response = client.get("/nope", headers={"Accept": accept})
        assert (response.status_code, response.headers["Content-Type"]) == (404, expected)
        assert ("Vary" in response.headers) is (setting is None)


def test_an_unhandled_error_shows_a_browser_flasks_500_page(make_app: AppFactory) -> None:
    client = make_app(add_routes, TESTING=False).test_client()
    page = client.get("/boom", headers={"Accept": BROWSER_ACCEPT})
    assert (page.status_code, page.headers["Content-Type"]) == (500, HTML)
    assert "<title>500 Internal Server Error</title>" in page.get_data(as_text=True)
    problem = client.get("/boom")
    assert (problem.status_code, problem.headers["Content-Type"]) == (500, PROBLEM)


@pytest.fixture
@starts_services
def server() -> Iterator[str]:
    """An app with the negotiated default, not testing, on a free loopback port."""
    app = Flask("negotiation_browser")
    add_routes(app)

    @app.get("/form")
    def form() -> str:
        return (
            "<!doctype html><title>form</title>"
            '<form method="post" action="/busy"><button id="send">Send</button></form>'
        )

    Observe(app)
    with serve_in_thread(app) as url:
        yield url


@pytest.mark.services
def test_a_real_browser_sees_html_error_pages(server: str, tmp_path: Path) -> None:
    with chromium_page(tmp_path / "profile") as page:
        missing = page.goto(f"{server}/nope")
        assert missing is not None
        assert (missing.status, missing.headers["content-type"]) == (404, HTML)
        assert page.title() == "404 Not Found"
        assert page.locator("h1").inner_text() == "Not Found"

        broken = page.goto(f"{server}/boom")
        assert broken is not None
        assert (broken.status, broken.headers["content-type"]) == (500, HTML)
        assert page.title() == "500 Internal Server Error"
        assert "boom" not in page.content()

        # A form posting to a GET-only route: the 405 page, Allow kept.
        page.goto(f"{server}/form")
        with page.expect_navigation() as navigation:
            page.click("#send")
        wrong_method = navigation.value
        assert wrong_method is not None
        assert (wrong_method.status, wrong_method.headers["content-type"]) == (405, HTML)
        assert sorted(wrong_method.headers["allow"].split(", ")) == ["GET", "HEAD", "OPTIONS"]
        assert page.title() == "405 Method Not Allowed"

        # The same page's script, asking for JSON, gets the problem.
        problem = page.evaluate(
            """async () => {
                const r = await fetch('/nope', {headers: {Accept: 'application/json'}});
                return [r.status, r.headers.get('content-type'), await r.json()];
            }"""
        )
        assert problem == [
            404,
            PROBLEM,
            {
                "type": "about:blank",
                "title": "Not Found",
                "status": 404,
                "detail": "The requested URL was not found on the server. If you entered "
                "the URL manually please check your spelling and try again.",
            },
        ]
