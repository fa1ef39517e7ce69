"""Metrics on the wire: exact statsd lines read from a real UDP socket, the app API,
recording, sampling, threads, fork, interpreter exit and many apps in one process."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import typing as t
import warnings
from pathlib import Path

import pytest
import statsd
from flask import Flask
from flask import Response

from flask_observe import ConfigError
from flask_observe import current_record
from flask_observe import metrics
from flask_observe import timed
from flask_observe.extension import get_state
from flask_observe.record import RequestRecord
from tests.support.apps import add_api_routes
from tests.support.apps import AppFactory
from tests.support.metrics import counter_total
from tests.support.metrics import flush
from tests.support.metrics import line_config
from tests.support.metrics import requests_from_threads
from tests.support.metrics import timer_count
from tests.support.metrics import udp_config
from tests.support.metrics import UdpReceiver

MS = r"\d+\.\d{6}"


def capture_records(app: Flask) -> list[RequestRecord]:
    """Collect each finished request's record (a finish hook after the metrics one)."""
    records: list[RequestRecord] = []
    get_state(app).add_finish_hook(records.append)
    return records


EXPECTED = {
    "none": [
        rf"p\.request\.api\.get_item\.GET:{MS}\|ms",
        r"p\.response\.api\.get_item\.GET\.200:1\|c",
        rf"p\.request\._unmatched\.GET:{MS}\|ms",
        r"p\.response\._unmatched\.GET\.404:1\|c",
        rf"p\.request\.api\.boom\.POST:{MS}\|ms",
        r"p\.response\.api\.boom\.POST\.500:1\|c",
        r"p\.exception\.api\.boom\.KeyError:1\|c",
    ],
    "graphite": [
        rf"p\.request;endpoint=api\.get_item;method=GET:{MS}\|ms",
        r"p\.response;endpoint=api\.get_item;method=GET;status=200:1\|c",
        rf"p\.request;endpoint=_unmatched;method=GET:{MS}\|ms",
        r"p\.response;endpoint=_unmatched;method=GET;status=404:1\|c",
        rf"p\.request;endpoint=api\.boom;method=POST:{MS}\|ms",
        r"p\.response;endpoint=api\.boom;method=POST;status=500:1\|c",
        r"p\.exception;endpoint=api\.boom;exception=KeyError:1\|c",
    ],
    "influxdb": [
        rf"p\.request,endpoint=api\.get_item,method=GET:{MS}\|ms",
        r"p\.response,endpoint=api\.get_item,method=GET,status=200:1\|c",
        rf"p\.request,endpoint=_unmatched,method=GET:{MS}\|ms",
        r"p\.response,endpoint=_unmatched,method=GET,status=404:1\|c",
        rf"p\.request,endpoint=api\.boom,method=POST:{MS}\|ms",
        r"p\.response,endpoint=api\.boom,method=POST,status=500:1\|c",
        r"p\.exception,endpoint=api\.boom,exception=KeyError:1\|c",
    ],
    "dogstatsd": [
        rf"p\.request:{MS}\|ms\|#endpoint:api\.get_item,method:GET",
        r"p\.response:1\|c\|#endpoint:api\.get_item,method:GET,status:200",
        rf"p\.request:{MS}\|ms\|#endpoint:_unmatched,method:GET",
        r"p\.response:1\|c\|#endpoint:_unmatched,method:GET,status:404",
        rf"p\.request:{MS}\|ms\|#endpoint:api\.boom,method:POST",
        r"p\.response:1\|c\|#endpoint:api\.boom,method:POST,status:500",
        r"p\.exception:1\|c\|#endpoint:api\.boom,exception:KeyError",
    ],
}


@pytest.mark.parametrize("dialect", list(EXPECTED))
def test_request_lines_on_the_wire(dialect: str, make_app: AppFactory, udp: UdpReceiver) -> None:
    """Without aggregation, each request's lines in order."""
    app = make_app(
        **line_config(udp, OBSERVE_STATSD_PREFIX="p", OBSERVE_STATSD_TAGS=dialect),
        PROPAGATE_EXCEPTIONS=False,
    )
    add_api_routes(app)
    client = app.test_client()
    assert client.get("/api/items/7", buffered=True).status_code == 200
    assert client.get("/no/such/page", buffered=True).status_code == 404
    assert client.post("/api/boom", buffered=True).status_code == 500
    flush(app)
    lines = udp.wait_for(7)
    assert len(lines) == 7, lines
    for pattern, line in zip(EXPECTED[dialect], lines, strict=True):
        assert re.fullmatch(pattern, line), (pattern, line)
    # One packet, not one datagram per line.
    assert len(udp.packets) == 1


@pytest.mark.parametrize("aggregate", [True, False], ids=["aggregated", "lines"])
def test_timer_measures_until_the_streamed_body_closed(
    aggregate: bool, make_app: AppFactory, udp: UdpReceiver
) -> None:
    app = make_app(**udp_config(udp, OBSERVE_STATSD_AGGREGATE=aggregate))
    pause = 0.05

    @app.get("/stream")
    def stream() -> Response:
        def generate() -> t.Iterator[str]:
            yield "a"
            time.sleep(pause)
            yield "b"

        return Response(generate())

    response = app.test_client().get("/stream", buffered=True)
    header_ms = float(response.headers["X-Runtime"]) * 1000
    flush(app)
    timer = next(line for line in udp.wait_for(2) if "|ms" in line)
    timer_ms = float(timer.split(":")[1].split("|")[0])
    # The pause came after the headers: the timer has it on top of the header time, on
    # any machine (both figures are rounded to the microsecond).
    assert timer_ms - header_ms >= pause * 1000 - 0.002


def test_lines_match_pystatsd(make_app: AppFactory, udp: UdpReceiver) -> None:
    """Our none-dialect lines are byte for byte what pystatsd sends for the same calls."""
    reference = statsd.StatsClient("127.0.0.1", udp.port, prefix="p")
    try:
        with reference.pipeline() as pipe:
            pipe.incr("jobs.sent")
            pipe.incr("jobs.sent", 3)
            pipe.decr("jobs.sent", 2)
            pipe.timing("jobs.time", 12.5)
            pipe.gauge("queue", 7)
            pipe.gauge("queue", -4)
            pipe.gauge("queue", 2, delta=True)
            pipe.gauge("queue", -1, delta=True)
        expected = udp.wait_for(9)
    finally:
        reference.close()
    app = make_app(**line_config(udp, OBSERVE_STATSD_PREFIX="p"))
    with app.app_context():
        metrics.incr("jobs.sent")
        metrics.incr("jobs.sent", 3)
        metrics.incr("jobs.sent", -2)
        metrics.timing("jobs.time", 12.5)
        metrics.gauge("queue", 7)
        metrics.gauge("queue", -4)
        metrics.gauge("queue", 2, delta=True)
        metrics.gauge("queue", -1, delta=True)
    flush(app)
    assert udp.wait_for(9) == expected
    assert len(expected) == 9


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("none", "p.mail.sent.bulk.eu:2|c"),
        ("graphite", "p.mail.sent;queue=bulk;region=eu:2|c"),
        ("influxdb", "p.mail.sent,queue=bulk,region=eu:2|c"),
        ("dogstatsd", "p.mail.sent:2|c|#queue:bulk,region:eu"),
    ],
)
def test_api_tags_per_dialect(
    dialect: str, expected: str, make_app: AppFactory, udp: UdpReceiver
) -> None:
    app = make_app(**udp_config(udp, OBSERVE_STATSD_PREFIX="p", OBSERVE_STATSD_TAGS=dialect))
    with app.app_context():
        metrics.incr("mail.sent", 2, tags={"queue": "bulk", "region": "eu"})
    flush(app)
    assert udp.wait_for(1) == [expected]


def test_api_outside_app_context_raises_clearly() -> None:
    for call in (
        lambda: metrics.incr("x"),
        lambda: metrics.gauge("x", 1),
        lambda: metrics.timing("x", 1.0),
        lambda: metrics.timer("x").__enter__(),
    ):
        with pytest.raises(RuntimeError, match="application context"):
            call()


def test_api_on_app_without_observe_raises_clearly() -> None:
    with Flask("plain").app_context(), pytest.raises(RuntimeError, match="init_app"):
        metrics.incr("x")


def test_timer_context_manager_decorator_and_server_timing(
    make_app: AppFactory, udp: UdpReceiver
) -> None:
    app = make_app(**udp_config(udp))

    @metrics.timer("work.sync")
    def work() -> int:
        time.sleep(0.01)
        return 1

    @metrics.timer("work.async")
    async def work_async() -> int:
        await asyncio.sleep(0.01)
        return 2

    @app.get("/")
    def index() -> str:
        with metrics.timer("block") as block:
            time.sleep(0.005)
        assert block.ms is not None and block.ms >= 5.0
        return str(work())

    response = app.test_client().get("/", buffered=True)
    assert re.search(r"block;dur=\d+\.\d+", response.headers["Server-Timing"])
    with app.app_context():
        assert asyncio.run(work_async()) == 2
    flush(app)
    lines = udp.wait_for(5)
    names = [line.split(":")[0] for line in lines]
    assert sorted(names) == [
        "block",
        "request.index.GET",
        "response.index.GET.200",
        "work.async",
        "work.sync",
    ]
    sync = next(line for line in lines if line.startswith("work.sync:"))
    assert float(sync.split(":")[1].split("|")[0]) >= 10.0


def test_timed_view_emits_a_timer(make_app: AppFactory, udp: UdpReceiver) -> None:
    app = make_app(**udp_config(udp, OBSERVE_STATSD_PREFIX="p"))

    @app.get("/report")
    @timed("report.build")
    def report() -> str:
        return "ok"

    app.test_client().get("/report", buffered=True)
    flush(app)
    assert re.fullmatch(rf"p\.report\.build:{MS}\|ms", udp.wait_for(3)[-1])


@pytest.mark.parametrize("aggregate", [True, False], ids=["aggregated", "lines"])
def test_timed_view_timer_value_is_its_duration_in_milliseconds(
    aggregate: bool, make_app: AppFactory, udp: UdpReceiver
) -> None:
    app = make_app(**udp_config(udp, OBSERVE_STATSD_AGGREGATE=aggregate))

    @app.get("/report")
    @timed("report.build")
    def report() -> str:
        time.sleep(0.02)
        return "ok"

    response = app.test_client().get("/report", buffered=True)
    flush(app)
    lines = udp.wait_for(3)
    (view,) = [line for line in lines if line.startswith("report.build:")]
    (request,) = [line for line in lines if line.startswith("request.report.GET:")]
    assert re.fullmatch(rf"report\.build:{MS}\|ms", view), view
    view_ms = float(view.split(":")[1].split("|")[0])
    request_ms = float(request.split(":")[1].split("|")[0])
    assert 20.0 <= view_ms <= request_ms  # within the request it is part of
    # The same duration as the Server-Timing entry, which has three decimals.
    (entry,) = re.findall(r"report\.build;dur=([0-9.]+)", response.headers["Server-Timing"])
    assert abs(view_ms - float(entry)) <= 0.000501  # each rounded once


def test_development_default_records_and_sends_nothing(
    make_app: AppFactory,
) -> None:
    app = make_app(OBSERVE_STATSD_PREFIX="dev")

    @app.get("/")
    def index() -> str:
        metrics.incr("visits")
        return "ok"

    assert metrics.client(app) is None
    records = capture_records(app)
    app.test_client().get("/", buffered=True)
    record = records[0]
    assert record.metric_lines is not None
    assert record.metric_lines[0] == "dev.visits:1|c"
    assert re.fullmatch(rf"dev\.request\.index\.GET:{MS}\|ms", record.metric_lines[1])
    assert record.metric_lines[2] == "dev.response.index.GET.200:1|c"


def test_production_without_host_has_no_hook() -> None:
    app = Flask("prod")
    from flask_observe import Observe

    Observe(app)
    state = get_state(app)
    assert state.finish_hooks == ()
    with app.app_context():
        metrics.incr("x")  # no host, no recording: nothing happens, nothing raises


def test_recording_can_be_forced_off_in_testing(make_app: AppFactory) -> None:
    app = make_app(OBSERVE_METRICS_RECORD=False)
    assert get_state(app).finish_hooks == ()
    seen: list[RequestRecord | None] = []

    @app.get("/")
    def index() -> str:
        metrics.incr("visits")
        seen.append(current_record())
        return "ok"

    app.test_client().get("/", buffered=True)
    assert seen[0] is not None and seen[0].metric_lines is None


def test_sampling_marks_lines_with_the_rate(make_app: AppFactory, udp: UdpReceiver) -> None:
    app = make_app(**line_config(udp, OBSERVE_STATSD_SAMPLE_RATE=0.25))
    app.add_url_rule("/", "index", lambda: "ok")
    client = app.test_client()
    for _ in range(400):
        client.get("/", buffered=True)
    flush(app)
    lines = udp.wait_for(800, timeout=1)
    responses = [line for line in lines if line.startswith("response.")]
    assert all(line == "response.index.GET.200:1|c|@0.25" for line in responses)
    assert 50 <= len(responses) <= 150  # 100 expected; binomial sd is about 8.7
    timers = [line for line in lines if line.startswith("request.")]
    assert len(timers) == len(responses)
    assert all(line.endswith("|ms|@0.25") for line in timers)


@pytest.mark.parametrize("config", [line_config, udp_config], ids=["lines", "aggregated"])
def test_a_tiny_sample_rate_is_written_in_full(
    make_app: AppFactory, udp: UdpReceiver, monkeypatch: pytest.MonkeyPatch, config: t.Any
) -> None:
    """A rate of one in ten million is written as it is, never rounded to ``|@0`` (a
    rate the daemon cannot divide by): every request is sampled here."""
    monkeypatch.setattr("flask_observe.sinks.random.random", lambda: 0.0)
    app = make_app(**config(udp, OBSERVE_STATSD_SAMPLE_RATE=1e-7))
    app.add_url_rule("/", "index", lambda: "ok")
    client = app.test_client()
    for _ in range(3):
        client.get("/", buffered=True)
    flush(app)
    lines = udp.wait_for(4 if config is line_config else 2)
    counters = [line for line in lines if line.startswith("response.")]
    assert counters, lines
    assert all(line.endswith("|c|@0.0000001") for line in counters), counters
    assert counter_total(lines, "response.index.GET.200") == 3 * 10**7
    timers = [line for line in lines if line.startswith("request.")]
    assert timers and all("|ms|@0.0000001" in line for line in timers), timers


def test_thread_safe_under_many_threads(make_app: AppFactory, udp: UdpReceiver) -> None:
    udp.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    app = make_app(**line_config(udp))
    app.add_url_rule("/", "index", lambda: "ok")
    received = requests_from_threads(app, udp)
    assert received.count("response.index.GET.200:1|c") == 2000
    assert len(received) == 4000
    assert all(re.fullmatch(rf"request\.index\.GET:{MS}\|ms", line) for line in received[::2])


@pytest.mark.parametrize("aggregate", [True, False], ids=["aggregated", "lines"])
def test_fork_child_sends_its_own_metrics(
    aggregate: bool, make_app: AppFactory, udp: UdpReceiver
) -> None:
    app = make_app(
        **udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=30.0, OBSERVE_STATSD_AGGREGATE=aggregate)
    )
    app.add_url_rule("/parent", "parent", lambda: "ok")
    app.add_url_rule("/child", "child", lambda: "ok")
    client = app.test_client()
    for _ in range(2):
        client.get("/parent", buffered=True)  # buffered in the parent at fork time
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, 3.12+
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process
        code = 1
        try:
            for _ in range(3):
                app.test_client().get("/child", buffered=True)
            child_client = metrics.client(app)
            assert child_client is not None
            child_client.close()
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    flush(app)
    lines = udp.wait_for(10 if not aggregate else 6)
    assert counter_total(lines, "response.child.GET.200") == 3
    assert counter_total(lines, "response.parent.GET.200") == 2
    assert timer_count(lines, "request.child.GET") == 3
    assert timer_count(lines, "request.parent.GET") == 2
    assert len(lines) == (10 if not aggregate else 7)  # aggregated: 2 counters, 5 timer values


def test_buffer_is_flushed_at_interpreter_exit(udp: UdpReceiver, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        from flask import Flask
        from flask_observe import Observe

        app = Flask("exiting")
        app.config.update(
            OBSERVE_STATSD_HOST="127.0.0.1",
            OBSERVE_STATSD_PORT={udp.port},
            OBSERVE_STATSD_FLUSH_INTERVAL=60.0,
        )
        Observe(app)
        app.add_url_rule("/", "index", lambda: "ok")
        client = app.test_client()
        for _ in range(5):
            client.get("/", buffered=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        cwd=os.getcwd(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    lines = udp.wait_for(6)
    assert counter_total(lines, "response.index.GET.200") == 5
    assert timer_count(lines, "request.index.GET") == 5


def test_many_apps_keep_their_own_configuration(udp: UdpReceiver) -> None:
    from flask_observe import Observe

    apps = []
    try:
        for number in range(50):
            app = Flask(f"app{number}")
            app.config.update(udp_config(udp, OBSERVE_STATSD_PREFIX=f"app{number}"))
            Observe(app)
            apps.append(app)
        for app in apps:
            with app.app_context():
                metrics.incr("hit")
            flush(app)
    finally:
        for app in apps:
            client = metrics.client(app)
            assert client is not None
            client.close()
    assert sorted(udp.wait_for(50)) == sorted(f"app{n}.hit:1|c" for n in range(50))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("OBSERVE_STATSD_PORT", 0),
        ("OBSERVE_STATSD_SAMPLE_RATE", 0.0),
        ("OBSERVE_STATSD_SAMPLE_RATE", 1.5),
        ("OBSERVE_STATSD_PROTOCOL", "http"),
        ("OBSERVE_STATSD_TAGS", "prometheus"),
        ("OBSERVE_STATSD_MAX_PACKET", 10),
    ],
)
def test_invalid_metrics_configuration_names_the_key(key: str, value: object) -> None:
    from flask_observe import Observe

    app = Flask("bad")
    app.config[key] = value
    with pytest.raises(ConfigError, match=key):
        Observe(app)


def test_a_sampled_counter_carries_its_rate_line_by_line(
    make_app: AppFactory, udp: UdpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    import random

    app = make_app(**line_config(udp))
    draws = iter([0.3, 0.2])  # the first call is not sampled, the second is
    monkeypatch.setattr(random, "random", lambda: next(draws))
    with app.app_context():
        metrics.incr("jobs", 3, tags={"queue": "mail"}, rate=0.25)
        metrics.incr("jobs", 3, tags={"queue": "mail"}, rate=0.25)
        metrics.gauge("depth", 7)
    flush(app)
    assert udp.wait_for(2) == ["jobs.mail:3|c|@0.25", "depth:7|g"]


def test_sampling_on_the_record_path(
    make_app: AppFactory, udp: UdpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every request recorded (the toolbar, OBSERVE_METRICS_RECORD), the sample
    rate still picks which requests are sent, each line marked with it."""
    import random

    app = make_app(**line_config(udp, OBSERVE_STATSD_SAMPLE_RATE=0.5, OBSERVE_METRICS_RECORD=True))
    app.add_url_rule("/", "index", lambda: "ok")
    draws = iter([0.7, 0.3])  # the first request is left out, the second sent
    monkeypatch.setattr(random, "random", lambda: next(draws))
    client = app.test_client()
    for _ in range(2):
        client.get("/", buffered=True)
    flush(app)
    lines = udp.wait_for(2)
    assert "response.index.GET.200:1|c|@0.5" in lines
    assert timer_count(lines, "request.index.GET") == 2  # one value standing for two
    assert len(lines) == 2
