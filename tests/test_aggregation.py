"""Client-side aggregation on the wire (a real UDP socket): counters summed per name,
timers as bounded samples whose statsd count stays exact, one batch per interval,
flushed at close, sampling and threads. The request path's hand-over to the aggregator
is in ``test_sinks.py``."""

from __future__ import annotations

import re
import time
from decimal import Decimal

import pytest
from flask import Flask

from flask_observe import aggregation
from flask_observe import ConfigError
from flask_observe import metrics
from flask_observe import Observe
from flask_observe import timed
from flask_observe.aggregation import power_weights
from flask_observe.extension import get_state
from flask_observe.naming import format_rate
from flask_observe.record import RequestRecord
from tests.support.apps import add_api_routes
from tests.support.apps import AppFactory
from tests.support.metrics import aggregator_of
from tests.support.metrics import counter_total
from tests.support.metrics import flush
from tests.support.metrics import requests_from_threads
from tests.support.metrics import timer_count
from tests.support.metrics import udp_config
from tests.support.metrics import UdpReceiver

MS = r"\d+\.\d{6}"


#: dialect -> (status counter of GET /api/items/<id>, its timer pattern, exception counter)
NAMES = {
    "none": (
        "p.response.api.get_item.GET.200:3|c",
        rf"p\.request\.api\.get_item\.GET:{MS}\|ms",
        "p.exception.api.boom.KeyError:2|c",
    ),
    "graphite": (
        "p.response;endpoint=api.get_item;method=GET;status=200:3|c",
        rf"p\.request;endpoint=api\.get_item;method=GET:{MS}\|ms",
        "p.exception;endpoint=api.boom;exception=KeyError:2|c",
    ),
    "influxdb": (
        "p.response,endpoint=api.get_item,method=GET,status=200:3|c",
        rf"p\.request,endpoint=api\.get_item,method=GET:{MS}\|ms",
        "p.exception,endpoint=api.boom,exception=KeyError:2|c",
    ),
    "dogstatsd": (
        "p.response:3|c|#endpoint:api.get_item,method:GET,status:200",
        rf"p\.request:{MS}\|ms\|#endpoint:api\.get_item,method:GET",
        "p.exception:2|c|#endpoint:api.boom,exception:KeyError",
    ),
}


@pytest.mark.parametrize("dialect", list(NAMES))
def test_counters_are_summed_and_timers_kept_per_name(
    dialect: str, make_app: AppFactory, udp: UdpReceiver
) -> None:
    config = udp_config(udp, OBSERVE_STATSD_PREFIX="p", OBSERVE_STATSD_TAGS=dialect)
    app = make_app(**config | {"OBSERVE_STATSD_FLUSH_INTERVAL": 60.0}, PROPAGATE_EXCEPTIONS=False)
    add_api_routes(app)
    client = app.test_client()
    for item in range(3):
        assert client.get(f"/api/items/{item}", buffered=True).status_code == 200
    for _ in range(2):
        assert client.post("/api/boom", buffered=True).status_code == 500
    flush(app)
    lines = udp.wait_for(8)
    counter, timer, exception = NAMES[dialect]
    assert counter in lines
    assert exception in lines
    assert len([line for line in lines if re.fullmatch(timer, line)]) == 3
    assert len(lines) == 8  # 2 status counters, 1 exception counter, 3 + 2 timer values
    assert len(udp.packets) == 1  # the whole interval in one packet


def test_timer_count_stays_exact_beyond_the_kept_samples(
    make_app: AppFactory, udp: UdpReceiver
) -> None:
    app = make_app(
        **udp_config(udp, OBSERVE_STATSD_TIMER_SAMPLES=4, OBSERVE_STATSD_FLUSH_INTERVAL=60.0)
    )
    app.add_url_rule("/", "index", lambda: "ok")
    client = app.test_client()
    for _ in range(37):
        client.get("/", buffered=True)
    flush(app)
    lines = udp.wait_for(5)
    timers = [line for line in lines if line.startswith("request.index.GET:")]
    assert len(timers) == 4  # 37 = 4 + 1 + 32: four samples, weights 1, 4 and two of 16
    assert timer_count(lines, "request.index.GET") == 37  # exactly, in floating point
    assert counter_total(lines, "response.index.GET.200") == 37
    for line in timers:
        rate = line.split("|@")[1] if "|@" in line else "1"
        weight = 1 / Decimal(rate)
        assert weight == int(weight) and int(weight) & (int(weight) - 1) == 0  # 2**k


def _names(key: tuple[str | None, str, str | None]) -> aggregation.RequestNames:
    endpoint, method, status = key
    code = (status or "000").split()[0]
    return aggregation.RequestNames(
        aggregation.TimerSeries(f"request.{endpoint}.{method}", ""),
        f"response.{endpoint}.{method}.{code}:%s|c",
    )


def test_pending_requests_are_collected_by_key_and_drained_as_lines() -> None:
    """Requests handed over as tuples wait in ``pending``; collecting groups them by
    (endpoint, method, status line), and a drain collects first."""
    aggregator = aggregation.Aggregator(10, _names)
    for ms in (1, 2, 3):
        aggregator.pending.append(("index", "GET", "200 OK", ms / 1000.0))
    aggregator.pending.append(("index", "POST", "201 CREATED", 0.004))
    aggregator.collect()
    assert len(aggregator.pending) == 0
    aggregator.pending.append(("index", "GET", "200 OK", 0.005))  # after a collection
    lines = sorted(aggregator.drain())
    assert lines == [
        "request.index.GET:1.000000|ms",
        "request.index.GET:2.000000|ms",
        "request.index.GET:3.000000|ms",
        "request.index.GET:5.000000|ms",
        "request.index.POST:4.000000|ms",
        "response.index.GET.200:4|c",
        "response.index.POST.201:1|c",
    ]
    assert aggregator.drain() == []


def test_requests_pending_beyond_the_bound_drop_the_oldest_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With no sender thread collecting (a closed client), the pending requests stay
    bounded (4 here): the oldest are dropped, and the next collection says so."""
    monkeypatch.setattr(aggregation, "PENDING_REQUESTS", 4)
    aggregator = aggregation.Aggregator(10, _names)
    for ms in range(1, 7):
        aggregator.pending.append(("index", "GET", "200 OK", ms / 1000.0))
    assert len(aggregator.pending) == 4
    lines = aggregator.drain()
    assert sorted(lines) == [f"request.index.GET:{ms}.000000|ms" for ms in (3, 4, 5, 6)] + [
        "response.index.GET.200:4|c"
    ]
    warnings = [r.getMessage() for r in caplog.records if r.name == "flask_observe"]
    assert warnings == [
        "Flask-Observe: requests waited too long for the statsd sender thread; "
        "the oldest were not counted"
    ]


def test_collections_into_one_key_share_its_bound_and_count_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two collections in one interval fill one key's list up to its bound (3 here),
    and the values beyond it from either are counted, so all 7 are."""
    monkeypatch.setattr(aggregation, "COLLECTED", 3)
    aggregator = aggregation.Aggregator(2, _names)
    for ms in (1, 2):
        aggregator.pending.append(("index", "GET", "200 OK", ms / 1000.0))
    aggregator.collect()
    for ms in (3, 4, 5):
        aggregator.pending.append(("index", "GET", "200 OK", ms / 1000.0))
    aggregator.collect()  # room for one: two counted
    for ms in (6, 7):
        aggregator.pending.append(("index", "GET", "200 OK", ms / 1000.0))
    aggregator.collect()  # no room: two more counted
    assert [len(samples) for samples in aggregator._requests.values()] == [3]
    lines = aggregator.drain()
    assert "response.index.GET.200:7|c" in lines
    weights = [Decimal(1) / Decimal(line.split("|@")[1]) if "|@" in line else Decimal(1)
               for line in lines if line.startswith("request.")]  # fmt: skip
    assert sum(weights) == 7


def test_the_sender_collects_pending_requests_between_flushes(
    make_app: AppFactory, udp: UdpReceiver
) -> None:
    """With a flush interval of a minute, the sender thread still collects the pending
    requests within half a second, so they stay few; nothing is sent before the flush."""
    app = make_app(**udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=60.0))
    app.add_url_rule("/", "index", lambda: "ok")
    aggregator = aggregator_of(app)
    client = app.test_client()
    for _ in range(3):
        client.get("/", buffered=True)
    deadline = time.monotonic() + 5.0
    while aggregator.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(aggregator.pending) == 0
    assert udp.receive(timeout=0.1) == []
    flush(app)
    lines = udp.wait_for(4)
    assert counter_total(lines, "response.index.GET.200") == 3
    assert timer_count(lines, "request.index.GET") == 3


def test_samples_are_spread_over_the_interval(make_app: AppFactory, udp: UdpReceiver) -> None:
    app = make_app(
        **udp_config(udp, OBSERVE_STATSD_TIMER_SAMPLES=4, OBSERVE_STATSD_FLUSH_INTERVAL=60.0)
    )
    aggregator = aggregator_of(app)
    for ms in range(1, 33):  # the table holds seconds; lines carry milliseconds
        aggregator.pending.append(("index", "GET", "200 OK", ms / 1000.0))
    flush(app)
    values = sorted(
        float(line.split(":")[1].split("|")[0])
        for line in udp.wait_for(5)
        if line.startswith("request.")
    )
    assert values == [1.0, 9.0, 17.0, 25.0]


@pytest.mark.parametrize(
    ("total", "parts"), [(37, 4), (1000, 16), (16, 16), (17, 16), (3, 2), (7, 1), (2**40 + 5, 16)]
)
def test_power_weights_add_up(total: int, parts: int) -> None:
    weights = power_weights(total, parts)
    assert sum(weight * count for weight, count in weights) == total
    assert sum(count for _, count in weights) == max(parts, bin(total).count("1"))
    assert all(weight & (weight - 1) == 0 for weight, _ in weights)


@pytest.mark.parametrize("power", range(0, 60, 3))
def test_rates_parse_back_exactly(power: int) -> None:
    text = format_rate(1 / 2**power)
    assert "e" not in text
    if power:
        assert 1 / float(text[2:]) == 2**power  # as the daemon computes 1 / sampleRate


def test_one_batch_per_interval(make_app: AppFactory, udp: UdpReceiver) -> None:
    app = make_app(**udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=0.3))
    app.add_url_rule("/", "index", lambda: "ok")
    client = app.test_client()
    for _ in range(20):
        client.get("/", buffered=True)
    first = udp.wait_for(1, timeout=2)
    assert counter_total(first, "response.index.GET.200") == 20
    assert len(udp.packets) == 1
    for _ in range(5):
        client.get("/", buffered=True)
    second = udp.wait_for(1, timeout=2)
    assert counter_total(second, "response.index.GET.200") == 5
    assert len(udp.packets) == 2


def test_close_sends_what_was_aggregated(udp: UdpReceiver) -> None:
    app = Flask("closing")
    app.config.update(udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=60.0))
    Observe(app)
    app.add_url_rule("/", "index", lambda: "ok")
    for _ in range(7):
        app.test_client().get("/", buffered=True)
    with app.app_context():
        metrics.incr("jobs", 2)
        metrics.incr("jobs", 3)
        metrics.timing("upstream", 12.5)
    client = metrics.client(app)
    assert client is not None
    client.close()
    lines = udp.wait_for(10)
    assert len(lines) == 10  # 7 timer values, 1 status counter, jobs, upstream
    assert counter_total(lines, "response.index.GET.200") == 7
    assert timer_count(lines, "request.index.GET") == 7
    assert "jobs:5|c" in lines
    assert "upstream:12.500000|ms" in lines


def test_sampled_counters_carry_the_rate(make_app: AppFactory, udp: UdpReceiver) -> None:
    app = make_app(
        **udp_config(udp, OBSERVE_STATSD_SAMPLE_RATE=0.25, OBSERVE_STATSD_FLUSH_INTERVAL=60.0)
    )
    app.add_url_rule("/", "index", lambda: "ok")
    client = app.test_client()
    for _ in range(400):
        client.get("/", buffered=True)
    flush(app)
    lines = udp.wait_for(2)
    counters = [line for line in lines if line.startswith("response.")]
    assert len(counters) == 1
    match = re.fullmatch(r"response\.index\.GET\.200:(\d+)\|c\|@0\.25", counters[0])
    assert match, counters
    sampled = int(match.group(1))
    assert 50 <= sampled <= 150  # 100 expected; binomial sd is about 8.7
    assert counter_total(lines, "response.index.GET.200") == 4 * sampled
    assert timer_count(lines, "request.index.GET") == pytest.approx(4 * sampled)


def test_exact_counts_under_many_threads_while_flushing(
    make_app: AppFactory, udp: UdpReceiver
) -> None:
    """Requests append without the lock while the sender thread drains every 10 ms:
    every request is counted once, in the counter and in the timer's count."""
    app = make_app(**udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=0.01))
    app.add_url_rule("/", "index", lambda: "ok")
    received = requests_from_threads(app, udp)
    assert counter_total(received, "response.index.GET.200") == 2000
    assert timer_count(received, "request.index.GET") == 2000
    assert len(udp.packets) > 1


def test_app_metrics_are_aggregated(make_app: AppFactory, udp: UdpReceiver) -> None:
    app = make_app(**udp_config(udp, OBSERVE_STATSD_PREFIX="p"))

    @app.get("/report")
    @timed("report.build")
    def report() -> str:
        metrics.incr("visits", tags={"page": "report"})
        with metrics.timer("render"):
            pass
        return "ok"

    client = app.test_client()
    for _ in range(3):
        client.get("/report", buffered=True)
    with app.app_context():
        metrics.incr("sampled", 2, rate=1.0)
        metrics.gauge("queue", 4)
    flush(app)
    lines = udp.wait_for(13)
    assert len(lines) == 13  # 4 counters and gauges, 3 values of each of 3 timers
    assert "p.visits.report:3|c" in lines
    assert "p.sampled:2|c" in lines
    assert "p.queue:4|g" in lines  # gauges are sent as they are
    assert timer_count(lines, "p.render") == 3
    assert timer_count(lines, "p.report.build") == 3
    assert counter_total(lines, "p.response.report.GET.200") == 3


def test_recording_keeps_each_requests_lines_while_aggregating(
    make_app: AppFactory, udp: UdpReceiver
) -> None:
    app = make_app(**udp_config(udp), OBSERVE_METRICS_RECORD=True)
    app.add_url_rule("/", "index", lambda: "ok")
    records: list[RequestRecord] = []
    get_state(app).add_finish_hook(records.append)
    client = app.test_client()
    for _ in range(3):
        client.get("/", buffered=True)
    assert all(record.metric_lines is not None for record in records)
    assert [record.metric_lines[1] for record in records if record.metric_lines] == [
        "response.index.GET.200:1|c"
    ] * 3
    flush(app)
    lines = udp.wait_for(4)
    assert counter_total(lines, "response.index.GET.200") == 3
    assert "response.index.GET.200:3|c" in lines


def test_a_request_with_a_record_still_counts_once(make_app: AppFactory, udp: UdpReceiver) -> None:
    """A request that made a record (a timed view) goes through the record path; one
    without goes through the table; each is counted once."""
    app = make_app(**udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=60.0))
    app.add_url_rule("/plain", "plain", lambda: "ok")

    @app.get("/timed")
    @timed
    def timed_view() -> str:
        return "ok"

    client = app.test_client()
    for _ in range(4):
        client.get("/plain", buffered=True)
        client.get("/timed", buffered=True)
    flush(app)
    lines = udp.wait_for(10)
    assert counter_total(lines, "response.plain.GET.200") == 4
    assert counter_total(lines, "response.timed_view.GET.200") == 4
    assert timer_count(lines, "request.timed_view.GET") == 4


def test_statsd_down_costs_nothing_with_aggregation(make_app: AppFactory, udp: UdpReceiver) -> None:
    """With the daemon down (a closed port: each send is refused), requests take no
    longer than with it up: both apps serve interleaved rounds in this test, and the
    quickest round of each is compared (a bound relative to the same machine's load)."""
    down = make_app(
        OBSERVE_STATSD_HOST="127.0.0.1", OBSERVE_STATSD_PORT=9, OBSERVE_STATSD_FLUSH_INTERVAL=0.01
    )
    up = make_app(**udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=0.01))
    quickest: dict[str, float] = {}
    for app in (down, up):
        app.add_url_rule("/", "index", lambda: "ok")
    clients = {"down": down.test_client(), "up": up.test_client()}
    for _ in range(5):
        for name, client in clients.items():
            started = time.perf_counter()
            for _ in range(40):
                assert client.get("/", buffered=True).status_code == 200
            took = time.perf_counter() - started
            quickest[name] = min(took, quickest.get(name, took))
    assert quickest["down"] < 2 * quickest["up"] + 0.02, quickest
    flush(down)
    flush(up)
    lines: list[str] = []
    deadline = time.monotonic() + 5.0
    while counter_total(lines, "response.index.GET.200") < 200 and time.monotonic() < deadline:
        lines += udp.receive(0.05)
    assert counter_total(lines, "response.index.GET.200") == 200  # the up app counted all


@pytest.mark.parametrize(
    ("key", "value"),
    [("OBSERVE_STATSD_AGGREGATE", "yes"), ("OBSERVE_STATSD_TIMER_SAMPLES", 0)],
)
def test_invalid_aggregation_settings_name_the_key(key: str, value: object) -> None:
    app = Flask("bad")
    app.config[key] = value
    with pytest.raises(ConfigError, match=key):
        Observe(app)


def test_counts_stay_exact_beyond_the_values_kept_per_flush(
    make_app: AppFactory, udp: UdpReceiver
) -> None:
    """More requests and user timer values in one interval than the 4,096 values kept
    per name: the extra ones are only counted, and every count still comes out exact."""
    app = make_app(**udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=60.0))
    app.add_url_rule("/", "index", lambda: "ok")
    app.add_url_rule("/new", "new", lambda: ("made", 201))
    client = app.test_client()
    for _ in range(5000):
        client.get("/", buffered=True)
    for _ in range(4100):
        client.get("/new", buffered=True)
    with app.app_context():
        for n in range(6000):
            metrics.timing("work", n % 7)
    flush(app)
    # 16 kept values per timer (the default), one line per status counter
    lines = udp.wait_for(3 * 16 + 2)
    assert len(lines) == 3 * 16 + 2, lines
    assert counter_total(lines, "response.index.GET.200") == 5000
    assert counter_total(lines, "response.new.GET.201") == 4100
    assert timer_count(lines, "request.index.GET") == 5000
    assert timer_count(lines, "request.new.GET") == 4100
    assert timer_count(lines, "work") == 6000


def test_the_values_kept_are_the_first_collected_of_the_interval(
    make_app: AppFactory, udp: UdpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the values collected per name (3 here), values are only counted; the 2 sent
    are spread over the 3 collected, and stand for all 5."""
    monkeypatch.setattr(aggregation, "COLLECTED", 3)
    app = make_app(
        **udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=60.0, OBSERVE_STATSD_TIMER_SAMPLES=2)
    )
    with app.app_context():
        for ms in range(1, 6):
            metrics.timing("work", ms)
    flush(app)
    lines = udp.wait_for(2)
    assert lines == ["work:1.000000|ms", "work:2.000000|ms|@0.25"]


def test_one_value_kept_per_timer(make_app: AppFactory, udp: UdpReceiver) -> None:
    """``OBSERVE_STATSD_TIMER_SAMPLES = 1``: one value a flush per timer, standing for all."""
    app = make_app(
        **udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=60.0, OBSERVE_STATSD_TIMER_SAMPLES=1)
    )
    with app.app_context():
        for ms in (1, 2, 3, 4):
            metrics.timing("work", ms)
    flush(app)
    assert udp.wait_for(1) == ["work:1.000000|ms|@0.25"]


def test_an_aggregator_keeps_at_least_one_value() -> None:
    def describe(key: aggregation.RequestKey) -> aggregation.RequestNames:
        raise AssertionError("not called")

    with pytest.raises(ValueError, match="^max_samples must be at least 1$"):
        aggregation.Aggregator(0, describe)


@pytest.mark.parametrize("record", [False, True], ids=["without-record", "with-record"])
def test_the_aggregated_request_timer_is_the_runtime_in_milliseconds(
    record: bool, make_app: AppFactory, udp: UdpReceiver
) -> None:
    """The request timer's value is the duration ``X-Runtime`` reports, in milliseconds
    (a request of 20 ms or more, so that a scale off by 0.1% shows), whether the request
    kept a record (``OBSERVE_METRICS_RECORD`` keeps one for every request) or not."""
    app = make_app(
        **udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=60.0),
        TESTING=False,
        OBSERVE_METRICS_RECORD=record,
    )

    @app.get("/")
    def index() -> str:
        time.sleep(0.02)
        return "ok"

    response = app.test_client().get("/")
    flush(app)
    lines = udp.wait_for(2)
    (timer,) = [line for line in lines if line.startswith("request.index.GET:")]
    match = re.fullmatch(r"request\.index\.GET:(\d+\.\d{6})\|ms", timer)
    assert match, timer
    assert abs(float(match.group(1)) - float(response.headers["X-Runtime"]) * 1000) < 0.001


def test_kept_values_are_weighted_in_order(make_app: AppFactory, udp: UdpReceiver) -> None:
    """7 values, 3 kept (every 7/3rd): the first stands for 1 value, the next for 2,
    the last for 4, in the order they were collected."""
    app = make_app(
        **udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=60.0, OBSERVE_STATSD_TIMER_SAMPLES=3)
    )
    with app.app_context():
        for ms in range(1, 8):
            metrics.timing("work", ms)
    flush(app)
    assert udp.wait_for(3) == [
        "work:1.000000|ms",
        "work:3.000000|ms|@0.5",
        "work:5.000000|ms|@0.25",
    ]


def test_many_kept_values_of_one_timer_fill_several_packets(
    make_app: AppFactory, udp: UdpReceiver
) -> None:
    """300 values kept for one timer are more than a packet holds: they are split into
    packets line by line, none dropped."""
    app = make_app(
        **udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=60.0, OBSERVE_STATSD_TIMER_SAMPLES=300)
    )
    with app.app_context():
        for ms in range(300):
            metrics.timing("work", ms)
    flush(app)
    lines = udp.wait_for(300)
    assert lines == ["work:%d.000000|ms" % ms for ms in range(300)]
    assert len(udp.packets) > 1
