"""The Memory panel's always-on tier: RSS, GC and tracemalloc rows with their cost, on
async views and on the report of a view that raised, and a failing sample kept away from
the app."""

from __future__ import annotations

import re
import typing as t

import pytest

from tests.support.toolbar import cell
from tests.support.toolbar import get_page
from tests.support.toolbar import make_toolbar_app

if t.TYPE_CHECKING:
    pass


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


@pytest.mark.parametrize("url", ["/async", "/async-page"])
def test_async_views_with_the_toolbar_on(url: str) -> None:
    response = make_toolbar_app().test_client().get(url)
    assert response.status_code == 200
    if url == "/async":
        assert response.json == {"mode": "async"}
    else:
        assert "async page" in response.get_data(as_text=True)
        assert 'id="memory-rss"' in response.get_data(as_text=True)


def test_the_report_of_a_view_that_raised_has_its_memory_figures() -> None:
    client = make_toolbar_app().test_client()
    response = client.get("/missing")
    url = response.headers["X-Observe-Report"]
    response.close()
    html = client.get(url).get_data(as_text=True)
    assert re.search(r"\d+\.\d MiB", cell(html, "memory-rss"))


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
