"""A 405 on a known path keeps its endpoint in metric names and tags; a path no rule
matches (404) is still ``_unmatched``. The lines are read from a UDP socket standing in
for statsd."""

from __future__ import annotations

import re
import typing as t

import pytest
from flask import Blueprint
from flask import Flask

from flask_observe import current_record
from flask_observe.record import RequestRecord
from flask_observe.state import get_state
from tests.support.metrics import flush
from tests.support.metrics import line_config

if t.TYPE_CHECKING:
    from tests.support.apps import AppFactory
    from tests.support.metrics import UdpReceiver

MS = r"\d+\.\d{6}"


def add_routes(app: Flask) -> None:
    """``/explore`` (GET), ``/items`` (GET ``list_items``, POST ``create_item``) and a
    blueprint's ``/shop/cart`` (PUT)."""

    @app.get("/explore")
    def explore() -> str:
        return "explore"

    @app.get("/items")
    def list_items() -> str:
        return "[]"

    @app.post("/items")
    def create_item() -> str:
        return "{}"

    shop = Blueprint("shop", __name__)

    @shop.put("/cart")
    def cart() -> str:
        return "ok"

    app.register_blueprint(shop, url_prefix="/shop")


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        pytest.param(
            "none",
            [rf"p\.request\.explore\.DELETE:{MS}\|ms", r"p\.response\.explore\.DELETE\.405:1\|c"],
            id="none",
        ),
        pytest.param(
            "graphite",
            [
                rf"p\.request;endpoint=explore;method=DELETE:{MS}\|ms",
                r"p\.response;endpoint=explore;method=DELETE;status=405:1\|c",
            ],
            id="graphite",
        ),
        pytest.param(
            "dogstatsd",
            [
                rf"p\.request:{MS}\|ms\|#endpoint:explore,method:DELETE",
                r"p\.response:1\|c\|#endpoint:explore,method:DELETE,status:405",
            ],
            id="dogstatsd",
        ),
    ],
)
def test_a_405_is_named_after_the_route_it_matched(
    make_app: AppFactory, udp: UdpReceiver, dialect: str, expected: list[str]
) -> None:
    app = make_app(
        add_routes, **line_config(udp, OBSERVE_STATSD_PREFIX="p", OBSERVE_STATSD_TAGS=dialect)
    )
    response = app.test_client().delete("/explore", buffered=True)
    assert response.status_code == 405
    flush(app)
    lines = udp.wait_for(2)
    assert len(lines) == 2, lines
    for pattern, line in zip(expected, lines, strict=True):
        assert re.fullmatch(pattern, line), (pattern, line)


@pytest.mark.parametrize(
    ("method", "path", "counter"),
    [
        pytest.param("PATCH", "/items", "p.response.list_items.PATCH.405", id="first-allowed"),
        pytest.param("GET", "/shop/cart", "p.response.shop.cart.GET.405", id="blueprint"),
        pytest.param("BREW", "/explore", "p.response.explore._OTHER.405", id="invented-method"),
        pytest.param("DELETE", "/nope", "p.response._unmatched.DELETE.404", id="unknown-path"),
    ],
)
def test_which_endpoint_a_wrong_method_is_counted_under(
    make_app: AppFactory, udp: UdpReceiver, method: str, path: str, counter: str
) -> None:
    app = make_app(add_routes, **line_config(udp, OBSERVE_STATSD_PREFIX="p"))
    app.test_client().open(path, method=method, buffered=True)
    flush(app)
    lines = udp.wait_for(2)
    assert f"{counter}:1|c" in lines, lines


def test_the_record_of_a_405_names_its_endpoint(make_app: AppFactory) -> None:
    app = make_app(add_routes)
    records: list[RequestRecord] = []
    get_state(app).add_finish_hook(records.append)

    @app.before_request
    def make_record() -> None:
        current_record()  # made on demand, as the toolbar and timers do

    client = app.test_client()
    assert client.delete("/explore", buffered=True).status_code == 405
    assert client.get("/nope", buffered=True).status_code == 404
    assert [(r.endpoint, r.method, r.status) for r in records] == [
        ("explore", "DELETE", 405),
        (None, "GET", 404),
    ]
