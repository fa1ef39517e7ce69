"""The Memory panel's second tier: the heap diff when switched on, cut short by its budget."""

from __future__ import annotations

import re
import typing as t

from tests.support.toolbar import get_page
from tests.support.toolbar import make_toolbar_app
from tests.support.toolbar import MEMORY_ON

if t.TYPE_CHECKING:
    pass


def test_tier2_heap_diff_when_switched_on() -> None:
    # The whole test suite's heap is far bigger than an app's: a generous budget.
    client = make_toolbar_app(OBSERVE_MEMORY_BUDGET=30.0).test_client()
    client.set_cookie("fldt_active", MEMORY_ON)
    html = get_page(client, "/leak")
    table = html[html.index('id="memory-types"') :]
    row = re.search(r"tests\.support\.toolbar\.Leak</td>\s*<td[^>]*>\+(\d+)</td>", table)
    assert row and int(row.group(1)) == 5000
    assert 'id="memory-tier2-cost"' in html
    assert "(budget 30 s)" in html


def test_tier2_leaves_out_flask_observes_own_objects() -> None:
    """The panels' samples, the request's record and the ``timed`` timer of ``/`` are
    made during the view but are not the app's memory."""
    client = make_toolbar_app(OBSERVE_MEMORY_BUDGET=30.0).test_client()
    client.set_cookie("fldt_active", MEMORY_ON)
    for url in ("/", "/leak"):
        html = get_page(client, url)
        table = html[
            html.index('id="memory-types"') : html.index(
                "</table>", html.index('id="memory-types"')
            )
        ]
        names = re.findall(r"<tr[^>]*>\s*<td>([^<]+)</td>", table)
        assert names, url
        assert [name for name in names if name.startswith("flask_observe")] == [], url
    assert "tests.support.toolbar.Leak" in names


def test_tier2_is_cut_short_by_its_budget() -> None:
    ballast = [[index] for index in range(300_000)]
    client = make_toolbar_app(OBSERVE_MEMORY_BUDGET=0.01).test_client()
    client.set_cookie("fldt_active", MEMORY_ON)
    html = get_page(client, "/leak")
    del ballast
    assert 'id="memory-cut-short"' in html and "OBSERVE_MEMORY_BUDGET" in html
    assert 'id="memory-types"' not in html
