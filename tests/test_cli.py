"""The ``flask observe`` commands: ``metrics`` lists the names per route and ``check``
sends a test line to the statsd target."""

from __future__ import annotations

import socket

from tests.support.apps import add_api_routes
from tests.support.apps import AppFactory
from tests.support.metrics import udp_config
from tests.support.metrics import UdpReceiver


def test_cli_metrics_lists_names_per_route(make_app: AppFactory) -> None:
    app = make_app(OBSERVE_STATSD_PREFIX="shop")
    add_api_routes(app)
    result = app.test_cli_runner().invoke(args=["observe", "metrics"])
    assert result.exit_code == 0, result.output
    assert "timer    shop.request.api.get_item.GET" in result.output
    assert "counter  shop.response.api.get_item.GET.<status>" in result.output
    assert "counter  shop.exception.api.boom.<ExceptionClass>" in result.output
    assert "counter  shop.response._unmatched.<METHOD>.<status>" in result.output


def test_cli_metrics_marks_excluded_paths_and_static(make_app: AppFactory) -> None:
    app = make_app(OBSERVE_EXCLUDE_PATHS=["/health", "/assets/*"])

    @app.get("/health")
    def health() -> str:
        return "ok"

    @app.get("/assets/<path:name>")
    def assets(name: str) -> str:
        return name

    output = app.test_cli_runner().invoke(args=["observe", "metrics"]).output
    assert "GET /health  ->  health  (not emitting: OBSERVE_EXCLUDE_PATHS)" in output
    assert "GET /assets/<path:name>  ->  assets  (not emitting" in output
    assert "request.health" not in output and "request.assets" not in output
    # static is measured unless excluded, and the listing says how to exclude it
    assert "GET /static/<path:filename>  ->  static\n" in output
    assert "OBSERVE_EXCLUDE_PATHS = ['/static/*'] stops them" in output
    excluded = make_app(OBSERVE_EXCLUDE_PATHS=["/static/*"])
    output = excluded.test_cli_runner().invoke(args=["observe", "metrics"]).output
    assert "GET /static/<path:filename>  ->  static  (not emitting" in output


def test_cli_metrics_in_a_tag_dialect(make_app: AppFactory) -> None:
    app = make_app(OBSERVE_STATSD_TAGS="dogstatsd")
    add_api_routes(app)
    result = app.test_cli_runner().invoke(args=["observe", "metrics"])
    assert "timer    request #endpoint:api.get_item,method:GET" in result.output


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
