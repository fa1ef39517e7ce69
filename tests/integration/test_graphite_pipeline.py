"""End to end through the real pipeline: the demo app -> statsd daemon -> carbon ->
graphite-web, read back with ``/render?format=json`` under the documented names; and
every target of the shipped Grafana dashboard returns data."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import pytest

from demo_app import create_app
from flask_observe import metrics
from tests.support.services import Pipeline

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from flask import Flask

pytestmark = pytest.mark.services

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana" / "flask-observe.json"

#: (method, path, times, expected status)
TRAFFIC = [
    ("GET", "/api/items", 7, 200),
    ("GET", "/api/items/1", 3, 200),
    ("GET", "/api/items/99", 2, 404),
    ("GET", "/", 4, 200),
    ("GET", "/no/such/page", 5, 404),
    ("GET", "/api//items", 2, 308),
    ("GET", "/api/boom", 3, 500),
    ("GET", "/api/stream?lines=3", 1, 200),
]

#: graphite target -> the total expected over the run.
COUNTS = {
    "stats.counters.e2e.response.api.list_items.GET.200.count": 7,
    "stats.counters.e2e.response.api.get_item.GET.200.count": 3,
    "stats.counters.e2e.response.api.get_item.GET.404.count": 2,
    "stats.counters.e2e.response.pages.index.GET.200.count": 4,
    "stats.counters.e2e.response._unmatched.GET.404.count": 5,
    "stats.counters.e2e.response._unmatched.GET.308.count": 2,
    "stats.counters.e2e.response.api.boom.GET.500.count": 3,
    "stats.counters.e2e.exception.api.boom.RuntimeError.count": 3,
    "stats.timers.e2e.request.api.list_items.GET.count": 7,
    "stats.timers.e2e.request.pages.index.GET.count": 4,
    "stats.timers.e2e.request._unmatched.GET.count": 7,
    "stats.timers.e2e.page.count": 4,
}


@pytest.fixture(scope="module")
def driven(graphite_pipeline: Pipeline) -> Iterator[Pipeline]:
    """The demo app sends a known mix of requests through the real statsd daemon."""
    app = demo(graphite_pipeline, "e2e")
    try:
        client = app.test_client()
        for method, path, times, status in TRAFFIC:
            for _ in range(times):
                response = client.open(path, method=method, buffered=True)
                assert response.status_code == status, (path, response.status_code)
    finally:
        close(app)
    yield graphite_pipeline


def demo(pipeline: Pipeline, prefix: str, **config: object) -> Flask:
    return create_app(
        {
            "TESTING": True,
            "PROPAGATE_EXCEPTIONS": False,
            "OBSERVE_STATSD_HOST": "127.0.0.1",
            "OBSERVE_STATSD_PORT": pipeline.statsd_port,
            "OBSERVE_STATSD_PREFIX": prefix,
            "OBSERVE_STATSD_FLUSH_INTERVAL": 0.05,
            **config,
        }
    )


def close(app: Flask) -> None:
    client = metrics.client(app)
    assert client is not None
    client.close()


def test_counts_and_timers_through_graphite(driven: Pipeline) -> None:
    for target, expected in COUNTS.items():
        assert driven.wait_for_total(target, expected) == expected, target
    means = driven.values("stats.timers.e2e.request.api.list_items.GET.mean")
    assert means and all(value > 0 for value in means)
    assert driven.values("stats.timers.e2e.request.api.list_items.GET.upper_90")
    # The streamed body took at least 3 x 10 ms, and the timer saw all of it.
    stream = driven.values("stats.timers.e2e.request.api.stream.GET.upper_90")
    assert stream and max(stream) >= 30.0


def test_every_grafana_panel_target_returns_data(driven: Pipeline) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["prefix"]
    driven.wait_for_total(next(iter(COUNTS)), COUNTS[next(iter(COUNTS))])
    targets = [
        (panel["title"], target["target"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]
    assert len(targets) >= 9
    for title, target in targets:
        query = target.replace("${prefix}", "e2e").replace("$prefix", "e2e")
        series = driven.render(query)
        points = [value for one in series for value, _ in one["datapoints"] if value is not None]
        assert points, f"panel {title!r}: no data for {query}"


def test_sampling_is_honoured_by_the_daemon(graphite_pipeline: Pipeline) -> None:
    app = demo(graphite_pipeline, "sampled", OBSERVE_STATSD_SAMPLE_RATE=0.5)
    try:
        client = app.test_client()
        for _ in range(400):
            client.get("/api/items", buffered=True)
    finally:
        close(app)
    target = "stats.counters.sampled.response.api.list_items.GET.200.count"
    total = graphite_pipeline.wait_for_stable_total(target, 300)
    # Each sampled request counts for 2; about 200 of 400 are sampled (sd 10).
    assert 300 <= total <= 500
    assert total % 2 == 0


def test_counts_beyond_the_kept_values_are_exact_in_graphite(graphite_pipeline: Pipeline) -> None:
    """One flush of more requests and timer values than the 4,096 kept per name: the
    daemon still counts every one of them."""
    app = demo(graphite_pipeline, "many", OBSERVE_STATSD_FLUSH_INTERVAL=60.0)
    try:
        client = app.test_client()
        for _ in range(5000):
            client.get("/", buffered=True)
        with app.app_context():
            for n in range(6000):
                metrics.timing("many_work", n % 7)
    finally:
        close(app)  # sends the interval's lines
    counts = {
        "stats.counters.many.response.pages.index.GET.200.count": 5000,
        "stats.timers.many.request.pages.index.GET.count": 5000,
        "stats.timers.many.many_work.count": 6000,
    }
    for target, expected in counts.items():
        assert graphite_pipeline.wait_for_stable_total(target, expected) == expected, target
