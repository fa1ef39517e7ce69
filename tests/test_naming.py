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
from flask_observe.naming import format_number
from flask_observe.naming import status_code
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


def test_gauge_values_are_written_as_statsd_reads_them(
    make_app: AppFactory, udp: UdpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Floats without an exponent or trailing zeros, whole floats as integers; booleans,
    strings and non-finite values are refused with a warning and nothing sent."""
    app = make_app(**line_config(udp))
    with app.app_context():
        for value in (2.5, 3.0, 0.1, 1e15, 1e20, -0.25, 7):
            metrics.gauge("g", value)
        for bad in (True, "3", float("nan"), float("inf")):
            metrics.gauge("bad", bad)  # type: ignore[arg-type]
        metrics.gauge("last", 1)
    flush(app)
    assert udp.wait_for(9) == [
        "g:2.5|g",
        "g:3|g",
        "g:0.1|g",
        "g:1000000000000000|g",
        "g:100000000000000000000|g",
        "g:0|g",
        "g:-0.25|g",
        "g:7|g",
        "last:1|g",
    ]
    refused = [
        r for r in caplog.records if r.getMessage() == "Flask-Observe: metric 'bad' not sent"
    ]
    assert [str(r.exc_info[1]) for r in refused if r.exc_info] == [
        "a metric value must be an int or float, got True"
    ]  # once a minute: the later refusals are not logged
    errors = []
    for bad in (True, "3", float("nan"), float("inf")):
        try:
            format_number(bad)
        except (TypeError, ValueError) as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    assert errors == [
        "TypeError: a metric value must be an int or float, got True",
        "TypeError: a metric value must be an int or float, got '3'",
        "ValueError: a metric value must be finite, got nan",
        "ValueError: a metric value must be finite, got inf",
    ]


def test_tags_given_as_pairs_or_a_mapping_are_written_alike(
    make_app: AppFactory, udp: UdpReceiver
) -> None:
    app = make_app(**line_config(udp, OBSERVE_STATSD_TAGS="dogstatsd"))
    with app.app_context():
        metrics.incr("jobs", tags=[("queue", "mail"), ("kind", "retry")])
        metrics.incr("jobs", tags={"queue": "mail", "kind": "retry"})
    flush(app)
    assert udp.wait_for(2) == ["jobs:1|c|#queue:mail,kind:retry"] * 2


@pytest.mark.parametrize(
    ("part", "cleaned"),
    [
        ("api.list_items", "api.list_items"),
        ("", "_"),
        ("|", "_"),
        ("é", "_"),
        (".api", "api"),
        ("api.", "api"),
        ("api..items", "api.items"),
        ("x" * 100, "x" * 100),
        ("x" * 101, "x" * 100),
        ("X" * 99 + ".y|", "X" * 99),  # cut after the dot, which then goes too
    ],
)
def test_a_name_part_keeps_no_empty_node_and_no_other_character(part: str, cleaned: str) -> None:
    assert clean_part(part) == cleaned


@pytest.mark.parametrize(
    ("status", "code"),
    [("404 NOT FOUND", "404"), ("299 MADE UP", "299"), (None, "_"), ("", "_"), ("OK", "_")],
)
def test_the_status_name_part_is_the_code_or_an_underscore(status: str | None, code: str) -> None:
    assert status_code(status) == code


def test_a_long_prefix_is_cut_to_200_characters(make_app: AppFactory, udp: UdpReceiver) -> None:
    """Name parts are cut to 100 characters, the prefix (often dotted: ``shop.web1``)
    to 200, as the metrics page of the docs says."""
    prefix = "shop." + "p" * 250
    app = make_app(**line_config(udp, OBSERVE_STATSD_PREFIX=prefix))
    app.add_url_rule("/", "index", lambda: "ok")
    app.test_client().get("/", buffered=True)
    flush(app)
    lines = udp.wait_for(2)
    head = "shop." + "p" * 195 + "."
    assert sorted(line.split(":")[0] for line in lines) == [
        head + "request.index.GET",
        head + "response.index.GET.200",
    ]


def test_an_unknown_dialect_is_named_in_the_error() -> None:
    from flask_observe.naming import Dialect

    with pytest.raises(ValueError, match=r"^unknown tag dialect 'statsite'$"):
        Dialect("statsite", "")
