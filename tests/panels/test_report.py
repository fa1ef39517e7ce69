"""``X-Observe-Report``: the header on JSON, streams and HTMX fragments (not on HTML
pages), a bounded store, the app's scrub keys applied, and the panels on redirects and
error pages."""

from __future__ import annotations

import re
import typing as t

import pytest

from tests.support.toolbar import cell
from tests.support.toolbar import make_toolbar_app

if t.TYPE_CHECKING:
    pass


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


def test_htmx_fragment_gets_a_report() -> None:
    client = make_toolbar_app().test_client()
    with pytest.warns(UserWarning, match="Could not insert debug toolbar"):
        response = client.get("/fragment", headers={"HX-Request": "true"})
    assert "X-Observe-Report" in response.headers


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
