"""The ``flask observe`` commands: ``metrics`` lists the names per route and ``check``
sends a test line to the statsd target."""

from __future__ import annotations

import re
import socket

import pytest
from flask import Blueprint
from flask import Flask

from flask_observe import Observe
from tests.support.apps import add_api_routes
from tests.support.apps import AppFactory
from tests.support.metrics import udp_config
from tests.support.metrics import UdpReceiver


def shop_app() -> Flask:
    """An app with a blueprint, an excluded path and two static routes."""
    app = Flask("shop")
    app.config.update(OBSERVE_STATSD_PREFIX="shop", OBSERVE_EXCLUDE_PATHS=["/health"])
    add_api_routes(app)
    app.add_url_rule("/health", "health", lambda: "ok")
    app.register_blueprint(
        Blueprint("admin", __name__, static_folder="static", url_prefix="/admin")
    )
    Observe(app)
    return app


def metrics_output(app: Flask, *args: str, exit_code: int = 0) -> str:
    result = app.test_cli_runner().invoke(args=["observe", "metrics", *args])
    assert result.exit_code == exit_code, result.output
    return result.output


COMPACT = """\
GET,HEAD,OPTIONS /admin/static/<path:filename>  ->  admin.static
  timer    shop.request.admin.static.<METHOD>
  counter  shop.response.admin.static.<METHOD>.<status>
  counter  shop.exception.admin.static.<ExceptionClass>
POST,OPTIONS /api/boom  ->  api.boom
  timer    shop.request.api.boom.<METHOD>
  counter  shop.response.api.boom.<METHOD>.<status>
  counter  shop.exception.api.boom.<ExceptionClass>
GET,HEAD,OPTIONS /api/items/<int:item_id>  ->  api.get_item
  timer    shop.request.api.get_item.<METHOD>
  counter  shop.response.api.get_item.<METHOD>.<status>
  counter  shop.exception.api.get_item.<ExceptionClass>
GET,HEAD,OPTIONS /health  ->  health  (not emitting: OBSERVE_EXCLUDE_PATHS)
GET,HEAD,OPTIONS /static/<path:filename>  ->  static
  timer    shop.request.static.<METHOD>
  counter  shop.response.static.<METHOD>.<status>
  counter  shop.exception.static.<ExceptionClass>
* (no route matched)  ->  _unmatched
  timer    shop.request._unmatched.<METHOD>
  counter  shop.response._unmatched.<METHOD>.<status>
  counter  shop.exception._unmatched.<ExceptionClass>
Note: static files emit metrics too; to stop them, set
  OBSERVE_EXCLUDE_PATHS = ['/admin/static/*', '/static/*']
OBSERVE_STATSD_HOST is not set: metrics are not sent.
"""


def test_cli_metrics_folds_methods_per_route_and_notes_static_once() -> None:
    assert metrics_output(shop_app()) == COMPACT


def test_cli_metrics_all_lists_every_method() -> None:
    output = metrics_output(shop_app(), "--all")
    assert output.count("  timer    shop.request.api.get_item.") == 3
    for method in ("GET", "HEAD", "OPTIONS"):
        assert f"{method} /api/items/<int:item_id>  ->  api.get_item\n" in output
        assert f"  timer    shop.request.api.get_item.{method}\n" in output
        assert f"  counter  shop.response.api.get_item.{method}.<status>\n" in output
        assert f"{method} /health  ->  health  (not emitting: OBSERVE_EXCLUDE_PATHS)" in output
    assert "  timer    shop.request.api.boom.POST\n" in output
    assert "  counter  shop.exception.api.boom.<ExceptionClass>\n" in output
    assert output.count("Note: static files emit metrics too") == 1
    assert "<METHOD>.<status>" in output  # the _unmatched names only
    assert metrics_output(shop_app(), "--verbose") == output


@pytest.mark.parametrize(
    ("patterns", "endpoints"),
    [
        pytest.param(["api.*"], ["api.boom", "api.get_item"], id="blueprint"),
        pytest.param(["*static"], ["admin.static", "static"], id="suffix"),
        pytest.param(["health", "_unmatched"], ["health", "_unmatched"], id="two"),
        pytest.param(["API.*"], None, id="case-sensitive"),
    ],
)
def test_cli_metrics_filters_by_endpoint(patterns: list[str], endpoints: list[str] | None) -> None:
    args = [arg for pattern in patterns for arg in ("--endpoint", pattern)]
    if endpoints is None:
        output = metrics_output(shop_app(), *args, exit_code=1)
        assert "No endpoint matches API.*." in output
        return
    output = metrics_output(shop_app(), *args)
    listed = re.findall(r"^\S+ \S+(?: \S+)*  ->  (\S+)", output, re.M)
    assert listed == endpoints
    assert ("Note: static files" in output) == ("static" in endpoints)


def test_cli_metrics_in_a_tag_dialect(make_app: AppFactory) -> None:
    app = make_app(OBSERVE_STATSD_TAGS="dogstatsd")
    add_api_routes(app)
    output = metrics_output(app)
    assert "  timer    request #endpoint:api.get_item,method:<METHOD>\n" in output
    output = metrics_output(app, "-a", "-e", "api.get_item")
    assert "  timer    request #endpoint:api.get_item,method:GET\n" in output


def test_cli_metrics_excluded_static(make_app: AppFactory) -> None:
    output = metrics_output(make_app(OBSERVE_EXCLUDE_PATHS=["/static/*"]), "-e", "static")
    assert output.startswith(
        "GET,HEAD,OPTIONS /static/<path:filename>  ->  static  (not emitting: "
        "OBSERVE_EXCLUDE_PATHS)\n"
    )


def test_cli_check_udp_sent(make_app: AppFactory, udp: UdpReceiver) -> None:
    app = make_app(**udp_config(udp, OBSERVE_STATSD_PREFIX="p"))
    result = app.test_cli_runner().invoke(args=["observe", "check"])
    assert result.exit_code == 0, result.output
    assert "sent over UDP" in result.output
    assert udp.wait_for(1) == ["p.flask_observe.check:1|c"]


def test_cli_check_udp_nobody_listening(make_app: AppFactory) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = make_app(OBSERVE_STATSD_HOST="127.0.0.1", OBSERVE_STATSD_PORT=port)
    result = app.test_cli_runner().invoke(args=["observe", "check"])
    assert result.exit_code == 1
    assert "refused" in result.output


def test_cli_check_tcp(make_app: AppFactory) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        app = make_app(
            OBSERVE_STATSD_HOST="127.0.0.1",
            OBSERVE_STATSD_PORT=server.getsockname()[1],
            OBSERVE_STATSD_PROTOCOL="tcp",
        )
        result = app.test_cli_runner().invoke(args=["observe", "check"])
        assert result.exit_code == 0, result.output
        assert "statsd answered" in result.output
        conn, _ = server.accept()
        with conn:
            assert conn.recv(100) == b"flask_observe.check:1|c\n"


def test_cli_check_without_host(make_app: AppFactory) -> None:
    result = make_app().test_cli_runner().invoke(args=["observe", "check"])
    assert result.exit_code == 1
    assert "OBSERVE_STATSD_HOST is not set" in result.output
