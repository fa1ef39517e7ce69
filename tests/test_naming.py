"""Metric names: hostile names and tags are cleaned to one safe line each, and random
unmatched paths keep the set of names bounded."""

from __future__ import annotations

import random
import re
import typing as t

import pytest
from werkzeug.test import EnvironBuilder

from flask_observe import metrics
from flask_observe.extension import get_state
from flask_observe.naming import clean_part
from tests.support.apps import add_api_routes
from tests.support.apps import AppFactory
from tests.support.metrics import flush
from tests.support.metrics import line_config
from tests.support.metrics import UdpReceiver

LINE = re.compile(r"^[A-Za-z0-9_.-]+(?:[;,][A-Za-z0-9_.=;,-]+)?:[-+]?[0-9.]+\|(?:c|ms|g)")


HOSTILE = [
    pytest.param("a|c\nevil:9|c", id="pipe-newline-injection"),
    pytest.param("x:1|c@0.1", id="colon-at"),
    pytest.param("café.naïve", id="non-ascii"),
    pytest.param("e" * 300, id="300-chars"),
    pytest.param("..dots..", id="empty-nodes"),
    pytest.param("#tag,k=v;t=1 ", id="tag-separators"),
]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_cleaned(name: str, make_app: AppFactory, udp: UdpReceiver) -> None:
    app = make_app(**line_config(udp, OBSERVE_STATSD_MAX_PACKET=8192))

    def view() -> str:
        metrics.incr(name, tags={name: name})
        return "ok"

    app.add_url_rule("/hostile", endpoint=name, view_func=view)
    response = app.test_client().open("/hostile", method="BREW\x7f", buffered=True)
    assert response.status_code == 405  # a method outside the route still gets metrics
    response = app.test_client().get("/hostile", buffered=True)
    assert response.status_code == 200
    flush(app)
    lines = udp.wait_for(5)
    assert len(lines) == 5, lines
    for line in lines:
        assert LINE.match(line), line
        key = line.split(":")[0]
        assert len(key) < 400
    assert "._OTHER" in lines[0]
    clean = clean_part(name)
    assert lines[2].startswith(f"{clean}.{clean}:1|c")
    assert lines[4] == f"response.{clean}.GET.200:1|c"
    assert len(clean) <= 100


def test_random_unmatched_paths_keep_names_bounded(make_app: AppFactory) -> None:
    app = make_app()
    add_api_routes(app)
    names: set[str] = set()
    get_state(app).add_finish_hook(
        lambda record: names.update(line.split(":")[0] for line in record.metric_lines or ())
    )
    rng = random.Random(1234)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@é|\n"
    base = EnvironBuilder(path="/").get_environ()

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
    ) -> t.Any:
        return None

    for _ in range(10_000):
        path = "/" + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
        body = app(dict(base, PATH_INFO=path), start_response)
        b"".join(body)
        body.close()  # type: ignore[attr-defined]
    routes = len(list(app.url_map.iter_rules()))
    timers = {name for name in names if name.startswith("request.")}
    assert 1 <= len(timers) <= routes + 1, timers
    assert len(names) <= (routes + 1) * 4, sorted(names)
