"""The aggregating sink's hand-over from the middleware: one look-up for a known
request key, a bounded table per endpoint, the overflow for the rest, and every request
counted, sampled or not."""

from __future__ import annotations

import random
import re

import pytest
from flask import Flask
from flask import request
from flask import Response
from werkzeug.test import EnvironBuilder
from werkzeug.test import run_wsgi_app

from flask_observe import aggregation
from flask_observe import current_record
from flask_observe import timed
from flask_observe.aggregation import Aggregator
from flask_observe.extension import get_state
from flask_observe.record import Timer
from flask_observe.sinks import AggregatingSink
from flask_observe.timing import ObserveMiddleware
from tests.support.apps import AppFactory
from tests.support.metrics import aggregator_of
from tests.support.metrics import counter_total
from tests.support.metrics import flush
from tests.support.metrics import line_config
from tests.support.metrics import timer_count
from tests.support.metrics import udp_config
from tests.support.metrics import UdpReceiver


def test_each_request_is_handed_over_as_one_tuple_and_collected_by_key(
    make_app: AppFactory, udp: UdpReceiver
) -> None:
    """A record-less request is one (endpoint, method, status line, seconds) tuple
    appended to the aggregator's pending requests; collecting groups them by key."""
    app = make_app(**udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=60.0))
    app.add_url_rule("/", "index", lambda: "ok")
    aggregator = aggregator_of(app)
    middleware = get_state(app).middleware
    assert isinstance(middleware, ObserveMiddleware)
    assert isinstance(middleware.sink, AggregatingSink)
    # The deque's own append: no Python frame on the request path.
    assert middleware.sink.add == aggregator.pending.append
    client = app.test_client()
    for _ in range(5):
        client.get("/", buffered=True)
    assert _table(aggregator) == [("index", "GET", "200 OK", 5)]
    assert len(aggregator.pending) == 0
    flush(app)
    lines = udp.wait_for(6)
    assert counter_total(lines, "response.index.GET.200") == 5
    assert timer_count(lines, "request.index.GET") == 5


def test_sending_every_line_starts_the_sender_without_a_warning(
    make_app: AppFactory, udp: UdpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Without aggregation the middleware starts the line sink too, before the first
    request: nothing to warn about, and the lines arrive."""
    app = make_app(**line_config(udp))
    app.add_url_rule("/", "index", lambda: "ok")
    assert app.test_client().get("/", buffered=True).text == "ok"
    flush(app)
    lines = udp.wait_for(2)
    assert counter_total(lines, "response.index.GET.200") == 1
    assert [r.getMessage() for r in caplog.records if r.name == "flask_observe"] == []


def _table(aggregator: Aggregator) -> list[tuple[str | None, str, str | None, int]]:
    """The request table, once the pending requests are collected, as (endpoint,
    method, status line, durations held)."""
    aggregator.collect()
    return [
        (endpoint, method, status, len(samples))
        for (endpoint, method, status), samples in aggregator._requests.items()
    ]


def test_every_method_and_status_of_an_endpoint_is_found_by_the_middleware(
    make_app: AppFactory, udp: UdpReceiver
) -> None:
    """An endpoint answering several methods and statuses has one table entry per pair; the
    middleware finds each of them, not only the first."""
    app = make_app(**udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=60.0))

    @app.route("/", methods=["GET", "POST"])
    def index() -> tuple[str, int]:
        return "ok", 201 if request.method == "POST" else 200

    @app.get("/other")
    def other() -> str:
        return "ok"

    client = app.test_client()
    for _ in range(4):
        client.get("/", buffered=True)
        client.post("/", buffered=True)
        client.get("/other", buffered=True)
    aggregator = aggregator_of(app)
    assert _table(aggregator) == [
        ("index", "GET", "200 OK", 4), ("index", "POST", "201 CREATED", 4),
        ("other", "GET", "200 OK", 4),
    ]  # fmt: skip
    flush(app)
    lines = udp.wait_for(15)
    assert counter_total(lines, "response.index.GET.200") == 4
    assert counter_total(lines, "response.index.POST.201") == 4
    assert timer_count(lines, "request.index.POST") == 4


def test_invented_methods_and_status_lines_keep_the_table_bounded(
    make_app: AppFactory, udp: UdpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Clients inventing methods (and an app inventing status lines) cannot grow the
    table: past its bound (16 keys here), requests are aggregated under their metric
    names, which are bounded, and every one is still counted."""
    monkeypatch.setattr(aggregation, "TABLE_KEYS", 16)
    app = make_app(**udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=60.0))

    @app.get("/")
    def index() -> Response:
        return Response("ok", status=f"299 MADE UP {request.args['n']}")

    client = app.test_client()
    invented = 48
    for number in range(invented):
        assert client.open("/", method=f"M{number}", buffered=True).status_code == 405
        assert client.get(f"/?n={number}", buffered=True).status_code == 299
    aggregator = aggregator_of(app)
    keys = _table(aggregator)
    assert len([key for key in keys if key[0] is None]) == 0  # a 405 keeps its endpoint
    assert len([key for key in keys if key[0] == "index"]) == 16
    flush(app)
    # 2 status counters; 1 value per table key (16), up to 16 values per overflow name (2)
    lines = udp.wait_for(2 + 16 + 2 * 16)
    assert len(lines) == 2 + 16 + 2 * 16
    assert counter_total(lines, "response.index._OTHER.405") == invented
    assert counter_total(lines, "response.index.GET.299") == invented
    assert timer_count(lines, "request.index.GET") == invented
    assert timer_count(lines, "request.index._OTHER") == invented


def test_a_method_sent_in_lower_case_is_named_as_werkzeug_reads_it(
    make_app: AppFactory, udp: UdpReceiver
) -> None:
    """The middleware takes the method from the environ (as ``request.method`` does,
    before Werkzeug upper-cases it); ``get`` and ``GET`` are one metric name."""
    app = make_app(**udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=60.0))
    app.add_url_rule("/", "index", lambda: request.method)
    bodies = []
    for method in ("GET", "get", "get", "GET"):
        environ = EnvironBuilder(path="/").get_environ()
        environ["REQUEST_METHOD"] = method
        body, status, _ = run_wsgi_app(app, environ, buffered=True)
        assert status == "200 OK"
        bodies.append(b"".join(body))
    assert bodies == [b"GET"] * 4
    flush(app)
    lines = udp.wait_for(5)
    assert counter_total(lines, "response.index.GET.200") == 4
    assert timer_count(lines, "request.index.GET") == 4
    assert not [line for line in lines if "_OTHER" in line]


def test_a_full_table_sends_new_endpoints_to_the_overflow(
    make_app: AppFactory, udp: UdpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aggregation, "TABLE_KEYS", 2)
    app = make_app(**udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=60.0))
    for number in range(4):
        app.add_url_rule(f"/{number}", f"page{number}", lambda: "ok")
    client = app.test_client()
    for _ in range(3):
        for number in range(4):
            client.get(f"/{number}", buffered=True)
    aggregator = aggregator_of(app)
    assert [key[0] for key in _table(aggregator)] == ["page0", "page1"]
    flush(app)
    lines = udp.wait_for(16)
    for number in range(4):
        assert counter_total(lines, f"response.page{number}.GET.200") == 3
        assert timer_count(lines, f"request.page{number}.GET") == 3


def test_a_full_list_counts_the_requests_beyond_it(
    make_app: AppFactory, udp: UdpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(aggregation, "COLLECTED", 3)
    app = make_app(
        **udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=60.0, OBSERVE_STATSD_TIMER_SAMPLES=2)
    )
    app.add_url_rule("/", "index", lambda: "ok")
    aggregator = aggregator_of(app)
    client = app.test_client()
    for _ in range(7):
        client.get("/", buffered=True)
    assert _table(aggregator) == [("index", "GET", "200 OK", 3)]  # 3 kept, 4 counted
    flush(app)
    lines = udp.wait_for(3)
    assert counter_total(lines, "response.index.GET.200") == 7
    assert timer_count(lines, "request.index.GET") == 7
    client.get("/", buffered=True)  # emptied by the flush: kept again
    assert _table(aggregator) == [("index", "GET", "200 OK", 1)]


def test_sampled_requests_are_chosen_before_they_are_counted(
    make_app: AppFactory, udp: UdpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a sample rate, each request is drawn once: those drawn in are counted
    (and scaled up by the daemon), the others leave no trace."""
    app = make_app(
        **udp_config(udp, OBSERVE_STATSD_SAMPLE_RATE=0.5, OBSERVE_STATSD_FLUSH_INTERVAL=60.0)
    )
    app.add_url_rule("/", "index", lambda: "ok")
    draws = iter([0.9, 0.1, 0.7, 0.2, 0.3])
    monkeypatch.setattr(random, "random", lambda: next(draws))
    client = app.test_client()
    for _ in range(5):
        client.get("/", buffered=True)
    monkeypatch.undo()
    flush(app)
    lines = udp.wait_for(4)
    assert [line for line in lines if line.startswith("response.")] == [
        "response.index.GET.200:3|c|@0.5"
    ]
    timers = [line for line in lines if line.startswith("request.index.GET:")]
    assert len(timers) == 3 and all(line.endswith("|ms|@0.5") for line in timers)


class Statements:
    """A request's SQL summary as :mod:`flask_observe.sql` leaves it on the record:
    3 statements, 12.5 ms in the database."""

    count = 3
    seconds = 0.0125

    def timer(self) -> Timer:
        return Timer("db", self.seconds)


def add_sql_view(app: Flask) -> None:
    """``GET /books``: a ``timed("work")`` view that ran 3 statements (12.5 ms)."""

    @app.get("/books")
    @timed("work")
    def books() -> str:
        record = current_record()
        assert record is not None
        record.sql = Statements()
        return "ok"


@pytest.mark.parametrize("record", [True, False], ids=["recording", "not-recording"])
def test_sql_metrics_are_aggregated_once_per_request(
    record: bool, make_app: AppFactory, udp: UdpReceiver
) -> None:
    """The db timer and the statement counter of each request go to the aggregator once,
    with the tally's values, beside its named timer."""
    app = make_app(
        add_sql_view,
        **udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=60.0),
        OBSERVE_METRICS_RECORD=record,
    )
    client = app.test_client()
    for _ in range(2):
        response = client.get("/books", buffered=True)
        assert response.text == "ok"
        assert "db;dur=12.500" in response.headers["Server-Timing"]
    flush(app)
    # status counter, statement counter, 2 values of each of 3 timers
    lines = udp.wait_for(8)
    assert len(lines) == 8, lines
    assert sorted(line for line in lines if line.startswith("db")) == [
        "db.books.GET:12.500000|ms",
        "db.books.GET:12.500000|ms",
        "db_statements.books.GET:6|c",
    ]
    assert counter_total(lines, "response.books.GET.200") == 2
    assert timer_count(lines, "request.books.GET") == 2
    assert timer_count(lines, "work") == 2


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("none", ["db.books.GET:12.500000|ms", "db_statements.books.GET:3|c"]),
        (
            "dogstatsd",
            [
                "db:12.500000|ms|#endpoint:books,method:GET",
                "db_statements:3|c|#endpoint:books,method:GET",
            ],
        ),
    ],
)
def test_sql_metrics_are_written_per_request_without_aggregation(
    dialect: str, expected: list[str], make_app: AppFactory, udp: UdpReceiver
) -> None:
    app = make_app(add_sql_view, **line_config(udp, OBSERVE_STATSD_TAGS=dialect))
    client = app.test_client()
    for _ in range(2):
        assert client.get("/books", buffered=True).text == "ok"
    flush(app)
    lines = udp.wait_for(10)
    assert len(lines) == 10, lines  # 5 lines a request
    assert [line for line in lines if line.startswith("db")] == expected * 2


@pytest.mark.parametrize("path", ["/", "/books"], ids=["without-record", "with-record"])
def test_a_request_is_sampled_when_its_draw_is_below_the_rate(
    path: str, make_app: AppFactory, udp: UdpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``random()`` draws from [0, 1): a draw equal to the rate is out, so exactly that
    share of the requests is sent."""
    app = make_app(
        add_sql_view,
        **udp_config(udp, OBSERVE_STATSD_SAMPLE_RATE=0.5, OBSERVE_STATSD_FLUSH_INTERVAL=60.0),
        OBSERVE_METRICS_RECORD=False,
    )
    app.add_url_rule("/", "index", lambda: "ok")
    draws = iter([0.5, 0.4999, 0.5])
    monkeypatch.setattr(random, "random", lambda: next(draws))
    client = app.test_client()
    for _ in range(3):
        client.get(path, buffered=True)
    monkeypatch.undo()
    flush(app)
    lines = udp.wait_for(2)
    endpoint = "index" if path == "/" else "books"
    assert [line for line in lines if line.startswith("response.")] == [
        f"response.{endpoint}.GET.200:1|c|@0.5"
    ]


def test_each_extra_metric_is_written_on_its_own_without_aggregation(
    make_app: AppFactory, udp: UdpReceiver
) -> None:
    """A record with only SQL statements, only a named timer or only an exception still
    has that metric written beside its request lines."""
    app = make_app(**line_config(udp), PROPAGATE_EXCEPTIONS=False)

    @app.get("/count")
    def count() -> str:
        record = current_record()
        assert record is not None
        record.sql = Statements()
        return "ok"

    @app.get("/work")
    @timed("work")
    def work() -> str:
        return "ok"

    @app.get("/boom")
    def boom() -> str:
        raise KeyError("boom")

    client = app.test_client()
    assert client.get("/count", buffered=True).text == "ok"
    assert client.get("/work", buffered=True).text == "ok"
    assert client.get("/boom", buffered=True).status_code == 500
    flush(app)
    lines = udp.wait_for(10)
    assert len(lines) == 10, lines  # 2 request lines each, 2 SQL lines, 1 timer, 1 counter
    assert [line for line in lines if line.startswith(("db", "exception"))] == [
        "db.count.GET:12.500000|ms",
        "db_statements.count.GET:3|c",
        "exception.boom.KeyError:1|c",
    ]
    assert len([line for line in lines if re.fullmatch(r"work:\d+\.\d{6}\|ms", line)]) == 1


def test_the_overflow_counts_requests_beyond_its_collected_values(
    make_app: AppFactory, udp: UdpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past a full table, an endpoint's requests go to the overflow, whose lists are
    bounded too (3 values here): the rest are counted, and every request is."""
    monkeypatch.setattr(aggregation, "TABLE_KEYS", 1)
    monkeypatch.setattr(aggregation, "COLLECTED", 3)
    app = make_app(
        **udp_config(udp, OBSERVE_STATSD_FLUSH_INTERVAL=60.0, OBSERVE_STATSD_TIMER_SAMPLES=2)
    )
    app.add_url_rule("/0", "page0", lambda: "ok")
    app.add_url_rule("/1", "page1", lambda: "ok")
    client = app.test_client()
    for path in ["/0"] + ["/1"] * 5:
        assert client.get(path, buffered=True).text == "ok"
    flush(app)
    lines = udp.wait_for(5)
    assert counter_total(lines, "response.page0.GET.200") == 1
    assert counter_total(lines, "response.page1.GET.200") == 5
    assert timer_count(lines, "request.page1.GET") == 5
    assert len([line for line in lines if line.startswith("request.page1.GET:")]) == 2


def test_sampled_extra_metrics_carry_the_rate_without_aggregation(
    make_app: AppFactory, udp: UdpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(add_sql_view, **line_config(udp, OBSERVE_STATSD_SAMPLE_RATE=0.5))
    monkeypatch.setattr(random, "random", lambda: 0.1)
    assert app.test_client().get("/books", buffered=True).text == "ok"
    monkeypatch.undo()
    flush(app)
    lines = udp.wait_for(5)
    assert [line for line in lines if line.startswith("db")] == [
        "db.books.GET:12.500000|ms|@0.5",
        "db_statements.books.GET:3|c|@0.5",
    ]
    assert len([line for line in lines if line.endswith("|@0.5")]) == 5
