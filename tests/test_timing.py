"""The request clock, X-Runtime, Server-Timing and the timed decorator."""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import re
import time
import typing as t

import pytest
from flask import abort
from flask import Blueprint
from flask import Flask
from flask import redirect
from flask import Response
from flask import stream_with_context
from flask.typing import ResponseReturnValue
from flask.views import MethodView
from flask.views import View
from werkzeug.test import Client
from werkzeug.test import EnvironBuilder

from flask_observe import current_record
from flask_observe import RequestRecord
from flask_observe import timed
from tests.support.timing import entries
from tests.support.timing import PATHS

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterator


RUNTIME = re.compile(r"^\d+\.\d{6}$")


APP_ENTRY = re.compile(r"(?:^|, )app;dur=(\d+\.\d{3})(?:,|$)")


def app_ms(response: t.Any) -> float:
    match = APP_ENTRY.search(response.headers["Server-Timing"])
    assert match, response.headers["Server-Timing"]
    return float(match.group(1))


def add_routes(app: Flask) -> None:
    @app.get("/")
    def index() -> str:
        return "hello"

    @app.get("/sleep")
    def sleep() -> str:
        time.sleep(0.05)
        return "slept"

    @app.get("/raise")
    def explode() -> str:
        raise RuntimeError("boom")

    @app.get("/abort-response")
    def abort_response() -> str:
        abort(Response("teapot", status=418, headers={"X-Custom": "1"}))

    @app.get("/go")
    def go() -> ResponseReturnValue:
        return redirect("/")

    @app.get("/folder/")
    def folder() -> str:
        return "folder"

    @app.get("/own")
    def own() -> tuple[str, dict[str, str]]:
        return "own", {"X-Runtime": "view-set", "Server-Timing": "db;dur=5.5"}


@pytest.fixture
def routed(make_app: Callable[..., Flask]) -> Flask:
    app = make_app(PROPAGATE_EXCEPTIONS=False)
    add_routes(app)
    return app


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("GET", "/", 200, id="ok"),
        pytest.param("GET", "/missing", 404, id="not-found"),
        pytest.param("POST", "/", 405, id="method-not-allowed"),
        pytest.param("GET", "/raise", 500, id="unhandled-error"),
        pytest.param("GET", "/abort-response", 418, id="abort-response"),
        pytest.param("GET", "/go", 302, id="redirect"),
        pytest.param("GET", "/folder", 308, id="slash-redirect"),
        pytest.param("HEAD", "/", 200, id="head"),
        pytest.param("OPTIONS", "/", 200, id="options"),
    ],
)
def test_every_response_gets_both_headers(
    routed: Flask, method: str, path: str, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.CRITICAL)  # the unhandled error is logged by Flask
    response = routed.test_client().open(path, method=method)
    assert response.status_code == status
    assert RUNTIME.match(response.headers["X-Runtime"])
    assert response.headers["Server-Timing"].startswith("app;dur=")
    assert abs(float(response.headers["X-Runtime"]) * 1000 - app_ms(response)) < 0.0011


def test_runtime_measures_the_request(routed: Flask) -> None:
    response = routed.test_client().get("/sleep")
    assert 0.05 <= float(response.headers["X-Runtime"]) < 5
    assert 50 <= app_ms(response) < 5000


def test_view_set_headers_are_kept_and_merged(routed: Flask) -> None:
    response = routed.test_client().get("/own")
    assert response.headers.getlist("X-Runtime") == ["view-set"]
    assert response.headers.getlist("Server-Timing")[0].startswith("db;dur=5.5, app;dur=")
    assert len(response.headers.getlist("Server-Timing")) == 1


@pytest.mark.parametrize(
    ("config", "runtime", "timing"),
    [
        pytest.param({}, True, True, id="defaults"),
        pytest.param({"OBSERVE_RUNTIME_HEADER": False}, False, True, id="no-runtime"),
        pytest.param({"OBSERVE_SERVER_TIMING": False}, True, False, id="no-server-timing"),
        pytest.param(
            {"OBSERVE_RUNTIME_HEADER": False, "OBSERVE_SERVER_TIMING": False},
            False,
            False,
            id="neither",
        ),
    ],
)
def test_headers_can_be_switched_off(
    make_app: Callable[..., Flask], config: dict[str, object], runtime: bool, timing: bool
) -> None:
    app = make_app(**config)
    add_routes(app)
    response = app.test_client().get("/")
    assert ("X-Runtime" in response.headers) is runtime
    assert ("Server-Timing" in response.headers) is timing


@pytest.mark.parametrize("config", PATHS)
def test_excluded_paths_get_nothing(
    make_app: Callable[..., Flask], config: dict[str, object]
) -> None:
    app = make_app(OBSERVE_EXCLUDE_PATHS=["/health", "/assets/*"], **config)
    seen: list[RequestRecord | None] = []

    @app.get("/<path:anything>")
    def anything(anything: str) -> str:
        seen.append(current_record())
        return anything

    client = app.test_client()
    for path in ["/health", "/assets/app.css", "/assets/"]:
        response = client.get(path)
        assert "X-Runtime" not in response.headers, path
        assert "Server-Timing" not in response.headers, path
    assert seen == [None, None, None]
    for path in ["/healthz", "/health/x", "/assetsx"]:
        assert "X-Runtime" in client.get(path).headers, path
    assert all(isinstance(record, RequestRecord) for record in seen[3:])


def test_head_and_options_match_plain_flask(make_app: Callable[..., Flask]) -> None:
    plain, observed = make_app(observe=False), make_app()
    for app in (plain, observed):
        add_routes(app)
    ours = ("X-Runtime", "Server-Timing")
    for method in ("HEAD", "OPTIONS"):
        expected = plain.test_client().open("/", method=method)
        got = observed.test_client().open("/", method=method)
        assert got.status_code == expected.status_code
        assert got.data == expected.data
        assert [h for h in got.headers if h[0] not in ours] == list(expected.headers)


# --- streaming -------------------------------------------------------------------------


def test_streaming_reports_time_to_headers_and_records_the_full_duration(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app()
    finished: list[RequestRecord] = []
    app.extensions["observe"].add_finish_hook(finished.append)
    pause = 0.1

    @app.get("/stream")
    def stream() -> Response:
        def generate() -> Iterator[str]:
            yield "first\n"
            time.sleep(pause)
            yield "second\n"

        return Response(stream_with_context(generate()))

    response = app.test_client().get("/stream", buffered=False)
    runtime = float(response.headers["X-Runtime"])
    assert finished == []  # the body is still open
    assert response.get_data() == b"first\nsecond\n"
    response.close()
    assert len(finished) == 1
    record = finished[0]
    assert record.total_seconds is not None and record.app_seconds is not None
    assert abs(record.app_seconds - runtime) < 1e-6
    # The pause in the body came after the headers: the header time leaves it out and the
    # full duration includes it, however slow the machine (no absolute bound on either).
    assert record.total_seconds - record.app_seconds >= pause
    assert record.server_timing == response.headers["Server-Timing"]
    assert (record.status, record.method, record.endpoint) == (200, "GET", "stream")


def test_a_failing_finish_hook_is_contained(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    later: list[int] = []

    def broken(record: RequestRecord) -> None:
        raise ValueError("hook bug")

    state = app.extensions["observe"]
    state.add_finish_hook(broken)
    state.add_finish_hook(lambda record: later.append(record.status))
    add_routes(app)
    response = app.test_client().get("/")
    response.close()
    assert response.status_code == 200 and later == [200]
    assert "a finish hook failed" in caplog.text
    assert all(r.levelno == logging.WARNING for r in caplog.records)


class Broken:
    """Stands in for anything the request path consults; fails when it does."""

    def __contains__(self, item: object) -> bool:
        raise RuntimeError("header bug")

    def __call__(self, *args: object) -> None:
        raise RuntimeError("header bug")


@pytest.mark.parametrize("config", PATHS)
def test_a_failure_while_adding_headers_never_breaks_the_response(
    make_app: Callable[..., Flask],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    config: dict[str, object],
) -> None:
    import flask_observe.containment
    import flask_observe.timing

    monkeypatch.setattr(flask_observe.timing, "_add_timing_headers", Broken())
    monkeypatch.setattr(flask_observe.timing, "_WATCHED_LENGTHS", Broken())
    monkeypatch.setattr(flask_observe.containment, "_last_warned", {})
    app = make_app(**config)
    sink = app.extensions["observe"].middleware.sink
    assert (sink is not None and sink.every_record) is not ("TESTING" in config)
    add_routes(app)
    for _ in range(3):
        response = app.test_client().get("/")
        assert response.status_code == 200 and response.text == "hello"
    warnings = [r for r in caplog.records if "could not add its headers" in r.getMessage()]
    assert len(warnings) == 1  # rate-limited
    assert warnings[0].levelno == logging.WARNING
    assert warnings[0].getMessage() == "Flask-Observe could not add its headers"
    assert warnings[0].exc_info and warnings[0].exc_info[0] is not None  # with the traceback


@pytest.mark.parametrize("config", PATHS)
@pytest.mark.parametrize("path", ["/", "/own"])
def test_the_servers_start_response_is_called_once_and_its_error_propagates(
    make_app: Callable[..., Flask],
    caplog: pytest.LogCaptureFixture,
    config: dict[str, object],
    path: str,
) -> None:
    """Only our own work is contained: a server whose ``start_response`` refuses the
    response sees its error raised, after one call, on every path of the middleware."""
    app = make_app(**config)
    add_routes(app)
    calls = []

    def refusing_start_response(
        status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
    ) -> t.Callable[[bytes], object]:
        calls.append(status)
        raise OSError("client went away")

    environ = EnvironBuilder(path=path).get_environ()
    with pytest.raises(OSError, match="client went away"):
        app(environ, refusing_start_response)
    assert calls == ["200 OK"]
    assert not [r for r in caplog.records if "could not add its headers" in r.getMessage()]


# --- timed -----------------------------------------------------------------------------


class Point:
    """A custom return type the app's own make_response converts."""

    def __init__(self, x: int) -> None:
        self.x = x


class PointFlask(Flask):
    def make_response(self, rv: t.Any) -> Response:
        if isinstance(rv, Point):
            return super().make_response({"x": rv.x})
        return super().make_response(rv)


RETURN_VALUES: list[t.Any] = [
    pytest.param(lambda: "text", id="str"),
    pytest.param(lambda: b"bytes", id="bytes"),
    pytest.param(lambda: {"a": 1}, id="dict"),
    pytest.param(lambda: [1, 2], id="list"),
    pytest.param(lambda: ("created", 201), id="tuple-status"),
    pytest.param(lambda: ("hdr", {"X-A": "1"}), id="tuple-headers"),
    pytest.param(lambda: ("both", 202, {"X-B": "2"}), id="tuple-status-headers"),
    pytest.param(lambda: Response("resp", status=203), id="response"),
    pytest.param(lambda: Point(3), id="custom-type"),
    pytest.param(lambda: (x for x in ["gen", "erator"]), id="generator"),
]


@pytest.mark.parametrize("observe", [True, False], ids=["with-extension", "standalone"])
@pytest.mark.parametrize("make_rv", RETURN_VALUES)
def test_timed_accepts_every_return_value_flask_accepts(
    make_rv: Callable[[], t.Any], observe: bool
) -> None:
    def build(decorate: bool) -> Flask:
        app = PointFlask("timed")
        if observe and decorate:
            from flask_observe import Observe

            Observe(app)
        view = timed(make_rv) if decorate else make_rv
        app.add_url_rule("/", "view", view)
        return app

    expected = build(decorate=False).test_client().get("/")
    got = build(decorate=True).test_client().get("/")
    assert got.status_code == expected.status_code
    assert got.data == expected.data
    assert got.content_type == expected.content_type
    for name in ("X-A", "X-B"):
        assert got.headers.get(name) == expected.headers.get(name)
    assert entries(got)[-1] == "view"
    assert RUNTIME.match(got.headers["X-Runtime"])
    if observe:
        assert entries(got) == ["app", "view"]
    else:
        assert entries(got) == ["view"]


def test_timed_names_and_entries(make_app: Callable[..., Flask]) -> None:
    app = make_app()

    @app.get("/bare")
    @timed
    def bare() -> str:
        return "bare"

    @app.get("/named")
    @timed("db query")
    def named() -> str:
        return "named"

    @app.get("/empty-name")
    @timed(None)
    def empty_name() -> str:
        return "none"

    client = app.test_client()
    assert entries(client.get("/bare")) == ["app", "view"]
    assert entries(client.get("/named")) == ["app", "db_query"]
    assert entries(client.get("/empty-name")) == ["app", "view"]


def test_timed_records_metric_flag_only_for_named_timers(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    records: list[RequestRecord] = []
    app.extensions["observe"].add_finish_hook(records.append)

    @app.get("/")
    @timed("outer")
    def outer() -> str:
        return "x"

    @app.get("/bare")
    @timed
    def bare() -> str:
        return "x"

    app.test_client().get("/").close()
    app.test_client().get("/bare").close()
    assert [(tm.name, tm.metric) for tm in records[0].timers] == [("outer", True)]
    assert [(tm.name, tm.metric) for tm in records[1].timers] == [("view", False)]
    assert records[0].timers[0].seconds <= (records[0].app_seconds or 0)


def test_timed_async_view(make_app: Callable[..., Flask]) -> None:
    app = make_app()

    @app.get("/async")
    @timed("async")
    async def view() -> dict[str, str]:
        await asyncio.sleep(0.02)
        return {"mode": "async"}

    response = app.test_client().get("/async")
    assert response.json == {"mode": "async"}
    assert entries(response) == ["app", "async"]
    timer_ms = float(response.headers["Server-Timing"].split("async;dur=")[1])
    assert 20 <= timer_ms <= app_ms(response)


def test_timed_async_view_standalone() -> None:
    app = Flask("standalone")

    @app.get("/")
    @timed
    async def view() -> str:
        await asyncio.sleep(0.02)
        return "async"

    response = app.test_client().get("/")
    assert response.text == "async"
    assert float(response.headers["X-Runtime"]) >= 0.02


def test_timed_class_based_views(make_app: Callable[..., Flask]) -> None:
    app = make_app()

    class Hello(View):
        decorators = [timed("hello")]

        def dispatch_request(self) -> str:
            return "hello"

    class Items(MethodView):
        decorators = [timed]

        def get(self) -> dict[str, list[int]]:
            return {"items": [1]}

        def post(self) -> tuple[str, int]:
            return "made", 201

    app.add_url_rule("/hello", view_func=Hello.as_view("hello"))
    app.add_url_rule("/items", view_func=Items.as_view("items"))
    client = app.test_client()
    assert entries(client.get("/hello")) == ["app", "hello"]
    response = client.post("/items")
    assert response.status_code == 201 and entries(response) == ["app", "view"]


def test_timed_blueprint_views(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    bp = Blueprint("shop", __name__)

    @bp.get("/cart")
    @timed("cart")
    def cart() -> str:
        return "cart"

    app.register_blueprint(bp, url_prefix="/shop")
    response = app.test_client().get("/shop/cart")
    assert response.text == "cart" and entries(response) == ["app", "cart"]


def test_timed_standalone_keeps_view_headers() -> None:
    app = Flask("standalone")

    @app.get("/")
    @timed("t")
    def view() -> tuple[str, dict[str, str]]:
        return "x", {"X-Runtime": "mine", "Server-Timing": "db;dur=1"}

    response = app.test_client().get("/")
    assert response.headers["X-Runtime"] == "mine"
    assert response.headers["Server-Timing"].startswith("db;dur=1, t;dur=")


def test_timed_keeps_the_signature() -> None:
    def view(item_id: int, *, verbose: bool = False) -> str:
        """Docs."""
        return str(item_id)

    wrapped = timed(view)
    assert wrapped.__name__ == "view"
    assert wrapped.__doc__ == "Docs."
    assert wrapped.__wrapped__ is view  # type: ignore[attr-defined]
    assert inspect.signature(wrapped) == inspect.signature(view)
    assert timed("x")(view).__name__ == "view"


@pytest.mark.parametrize("observe", [True, False], ids=["with-extension", "standalone"])
@pytest.mark.parametrize("bad", [pytest.param(None, id="none"), pytest.param(3.5, id="float")])
def test_timed_fails_the_way_flask_fails(
    make_app: Callable[..., Flask], observe: bool, bad: object
) -> None:
    def view() -> t.Any:
        return bad

    messages = []
    for decorate in (False, True):
        app = make_app(observe=observe)
        app.add_url_rule("/", "view", timed(view) if decorate else view)
        with pytest.raises(TypeError) as info:
            app.test_client().get("/")
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert "view" in messages[0]


def test_mypy_understands_timed(tmp_path: t.Any) -> None:
    from mypy import api

    source = tmp_path / "sample.py"
    source.write_text(
        "from flask_observe import timed\n"
        "@timed\n"
        "def a(item_id: int) -> str:\n"
        "    return ''\n"
        "@timed('named')\n"
        "async def b(name: str) -> dict[str, int]:\n"
        "    return {}\n"
        "a(1)\n"
        "b('x')\n"
        "a('wrong')\n"
        "b(2)\n"
        "reveal_type(a)\n"
    )
    stdout, _stderr, status = api.run(["--strict", "--no-incremental", str(source)])
    assert status == 1
    assert 'sample.py:10: error: Argument 1 to "a" has incompatible type "str"' in stdout
    assert 'sample.py:11: error: Argument 1 to "b" has incompatible type "int"' in stdout
    assert "def (item_id: int) -> flask.wrappers.Response" in stdout
    assert stdout.count("error:") == 2


# --- the request hook (the path metrics use without recording) ----------------------


class Handed(t.NamedTuple):
    endpoint: str | None
    method: str
    status: str | None
    seconds: float
    record: RequestRecord | None


class ListSink:
    """A sink that keeps what the middleware hands it, as :class:`Handed` tuples."""

    every_record = False

    def __init__(self) -> None:
        self.handed: list[Handed] = []
        #: The process ids the middleware started the sink in, once each.
        self.started_in: list[int] = []

    def add(self, request: tuple[str | None, str, str | None, float], /) -> None:
        self.handed.append(Handed(*request, None))

    def start(self) -> None:
        self.started_in.append(os.getpid())

    def finish(self, record: RequestRecord) -> None:
        assert record.end is not None
        seconds = record.end - record.start
        self.handed.append(
            Handed(record.endpoint, record.method, record.status_line, seconds, record)
        )


def hooked_app(**config: object) -> tuple[Flask, list[Handed]]:
    """A plain Flask app behind the middleware with a sink and no finish hook."""
    from flask_observe.timing import ObserveMiddleware

    app = Flask("hooked")
    app.config.update(config)
    sink = ListSink()
    handed = sink.handed
    middleware = ObserveMiddleware(app.wsgi_app, sink=sink)
    app.wsgi_app = middleware.entry  # type: ignore[method-assign,assignment]
    add_routes(app)
    return app, handed


def test_the_sink_is_started_before_the_first_request_of_each_process() -> None:
    """The sink's start (the statsd sender thread) runs once per process, before its
    first request: again in a forked child, whose fork hook is called here in-process as
    a forked worker calls it."""
    from flask_observe import timing
    from flask_observe.timing import ObserveMiddleware

    app = Flask("started")
    sink = ListSink()
    middleware = ObserveMiddleware(app.wsgi_app, sink=sink)
    app.wsgi_app = middleware.entry  # type: ignore[method-assign,assignment]
    add_routes(app)
    assert sink.started_in == []
    client = app.test_client()
    for _ in range(3):
        assert client.get("/").text == "hello"
    assert sink.started_in == [os.getpid()]
    timing._after_fork_in_child()
    assert sink.started_in == [os.getpid()]  # not at the fork: at the next request
    for _ in range(2):
        assert client.get("/").text == "hello"
    assert sink.started_in == [os.getpid()] * 2
    assert [handed.status for handed in sink.handed] == ["200 OK"] * 5


def test_a_sink_that_cannot_start_is_contained(caplog: pytest.LogCaptureFixture) -> None:
    """A sink whose start raises (no thread can be made) leaves requests answered and
    handed over, with one warning."""
    from flask_observe.timing import ObserveMiddleware

    class Unstartable(ListSink):
        def start(self) -> None:
            raise RuntimeError("can't start new thread")

    app = Flask("unstartable")
    sink = Unstartable()
    app.wsgi_app = ObserveMiddleware(app.wsgi_app, sink=sink).entry  # type: ignore[method-assign,assignment]
    add_routes(app)
    for _ in range(2):
        response = app.test_client().get("/")
        assert response.status_code == 200 and response.text == "hello"
    assert [handed.endpoint for handed in sink.handed] == ["index", "index"]
    warnings = [r for r in caplog.records if r.name == "flask_observe"]
    assert [r.getMessage() for r in warnings] == ["Flask-Observe: the metrics sink failed"]
    assert warnings[0].exc_info is not None  # with the traceback
    assert "RuntimeError: can't start new thread" in caplog.text


def test_sink_gets_each_plain_request_without_a_record() -> None:
    app, handed = hooked_app()
    response = app.test_client().get("/")
    assert RUNTIME.match(response.headers["X-Runtime"])
    assert entries(response) == ["app"]
    assert len(handed) == 1
    assert handed[0][:3] == ("index", "GET", "200 OK")
    assert handed[0].record is None
    assert abs(handed[0].seconds - float(response.headers["X-Runtime"])) < 1e-6
    app.test_client().post("/")
    assert handed[1][:3] == ("index", "POST", "405 METHOD NOT ALLOWED")


def test_sink_gets_the_record_when_one_was_made() -> None:
    app, handed = hooked_app()

    @app.get("/timed")
    @timed("work")
    def work() -> str:
        return "done"

    response = app.test_client().get("/timed")
    assert entries(response) == ["app", "work"]
    record = handed[0].record
    assert record is not None and record.end is not None
    assert [timer.name for timer in record.timers] == ["work"]
    assert (record.endpoint, record.method, record.status) == ("work", "GET", 200)


def test_sink_times_a_stream_until_it_is_closed() -> None:
    app, handed = hooked_app()

    @app.get("/stream")
    def stream() -> Response:
        def generate() -> Iterator[str]:
            yield "first\n"
            time.sleep(0.1)
            yield "second\n"

        return Response(stream_with_context(generate()))

    response = app.test_client().get("/stream", buffered=False)
    assert handed == []  # the body is still open
    assert response.get_data() == b"first\nsecond\n"
    response.close()
    assert len(handed) == 1
    # the headers went out before the body's pause; the request ended after it
    assert handed[0].seconds - float(response.headers["X-Runtime"]) >= 0.0999
    assert handed[0][:3] == ("stream", "GET", "200 OK")


def test_sink_on_a_propagated_exception() -> None:
    app, handed = hooked_app(TESTING=True)
    with pytest.raises(RuntimeError):
        app.test_client().get("/raise")
    assert len(handed) == 1
    assert handed[0].status == "500 INTERNAL SERVER ERROR"


def test_sink_merges_headers_the_view_set() -> None:
    app, handed = hooked_app()
    response = app.test_client().get("/own")
    assert response.headers["X-Runtime"] == "view-set"
    assert response.headers["Server-Timing"].startswith("db;dur=5.5, app;dur=")
    assert len(handed) == 1 and handed[0].status == "200 OK"


def test_sink_with_a_lazy_start_response() -> None:
    """A wrapped app may start the response while its body is iterated (PEP 3333)."""
    from flask_observe.timing import ObserveMiddleware

    sink = ListSink()
    handed = sink.handed

    def lazy_app(environ: dict[str, t.Any], start_response: t.Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"late"

    middleware = ObserveMiddleware(lazy_app, sink=sink)
    from werkzeug.test import Client

    response = Client(middleware.entry).get("/")
    assert response.get_data() == b"late"
    assert RUNTIME.match(response.headers["X-Runtime"])
    response.close()
    assert len(handed) == 1 and handed[0].status == "200 OK"


def users_app(**config: object) -> Flask:
    """An app built the way users build it: no ``TESTING`` (which would make metrics
    record every request), no statsd host, so requests take the plain timing path."""
    from flask_observe import Observe

    app = Flask("users_app")
    app.config.update(config)
    add_routes(app)
    Observe(app)
    assert app.wsgi_app.__name__ == "_timed"  # the plain path, not the record path
    return app


def timed_get(app: Flask, path: str) -> tuple[t.Any, float]:
    """The response to ``GET path`` and the seconds the whole client call took, measured
    around it by the test (the request's own duration can only be shorter)."""
    client = app.test_client()
    start = time.perf_counter()
    response = client.get(path)
    return response, time.perf_counter() - start


@pytest.mark.parametrize("path", ["/", "/sleep"])
def test_plain_path_header_values(path: str) -> None:
    response, outside = timed_get(users_app(), path)
    runtime = response.headers["X-Runtime"]
    assert re.fullmatch(r"\d+\.\d{6}", runtime), runtime
    timing = response.headers["Server-Timing"]
    assert re.fullmatch(r"app;dur=\d+\.\d{3}", timing), timing
    assert 0 < float(runtime) <= outside
    # the same duration in seconds and in milliseconds
    assert abs(float(runtime) * 1000 - float(timing.removeprefix("app;dur="))) < 0.0011


@pytest.mark.parametrize(
    ("config", "runtime", "timing"),
    [
        pytest.param({"OBSERVE_SERVER_TIMING": False}, True, False, id="runtime-only"),
        pytest.param({"OBSERVE_RUNTIME_HEADER": False}, False, True, id="server-timing-only"),
    ],
)
def test_plain_path_one_header(config: dict[str, object], runtime: bool, timing: bool) -> None:
    response, outside = timed_get(users_app(**config), "/")
    if runtime:
        assert re.fullmatch(r"\d+\.\d{6}", response.headers["X-Runtime"])
        assert 0 < float(response.headers["X-Runtime"]) <= outside
    else:
        assert "X-Runtime" not in response.headers
    if timing:
        assert re.fullmatch(r"app;dur=\d+\.\d{3}", response.headers["Server-Timing"])
        assert 0 < float(response.headers["Server-Timing"][8:]) <= outside * 1000
    else:
        assert "Server-Timing" not in response.headers


def test_plain_path_merges_headers_the_view_set() -> None:
    response, outside = timed_get(users_app(), "/own")
    assert response.headers.getlist("X-Runtime") == ["view-set"]
    (timing,) = response.headers.getlist("Server-Timing")
    assert re.fullmatch(r"db;dur=5\.5, app;dur=\d+\.\d{3}", timing), timing
    assert 0 < float(timing.split("app;dur=")[1]) <= outside * 1000


def test_closing_the_response_closes_the_apps_body_then_finishes() -> None:
    """PEP 3333: the server's close() reaches the app's body, then the record ends."""
    from werkzeug.test import Client

    from flask_observe.timing import ObserveMiddleware

    events: list[str] = []

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"streamed"

        def close(self) -> None:
            events.append("body closed")

    def app(environ: dict[str, t.Any], start_response: t.Any) -> Body:
        start_response("200 OK", [("Content-Type", "text/plain")])  # no length: a stream
        return Body()

    sink = ListSink()
    middleware = ObserveMiddleware(app, sink=sink)
    response = Client(middleware.entry).get("/")
    assert response.get_data() == b"streamed"
    assert events == [] and sink.handed == []
    response.close()
    assert events == ["body closed"]
    assert [handed.status for handed in sink.handed] == ["200 OK"]


def test_plain_path_with_a_finish_hook_added_after_init_app() -> None:
    app = users_app()
    records: list[RequestRecord] = []
    app.extensions["observe"].add_finish_hook(records.append)
    response, _ = timed_get(app, "/")
    assert response.status_code == 200
    assert [(r.endpoint, r.method, r.status) for r in records] == [("index", "GET", 200)]
    assert response.headers["Server-Timing"] == records[0].server_timing


def test_the_middleware_object_is_itself_a_wsgi_app() -> None:
    """Wrapped by hand (``app.wsgi_app = ObserveMiddleware(app.wsgi_app)``)."""
    from flask_observe.timing import ObserveMiddleware

    app = Flask("by_hand")
    add_routes(app)
    app.wsgi_app = ObserveMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    response = app.test_client().get("/")
    assert response.text == "hello"
    assert re.fullmatch(r"\d+\.\d{6}", response.headers["X-Runtime"])
    assert re.fullmatch(r"app;dur=\d+\.\d{3}", response.headers["Server-Timing"])


def test_a_body_without_close_is_finished_quietly() -> None:
    from werkzeug.test import Client

    from flask_observe.timing import ObserveMiddleware

    def app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])  # no length: a stream
        return [b"listed"]

    sink = ListSink()
    response = Client(ObserveMiddleware(app, sink=sink).entry).get("/")
    assert response.get_data() == b"listed"
    response.close()  # a list has no close(): nothing raised, the record finished
    assert [handed.status for handed in sink.handed] == ["200 OK"]


def test_plain_path_notes_the_start_on_a_record_made_on_demand() -> None:
    """On the plain path, a record the view asked for learns as the response starts
    its status, endpoint and method, and when the headers went out: a streamed body
    reads them while it is sent."""
    app = users_app()

    @app.get("/report")
    def report() -> Response:
        record = current_record()
        assert record is not None and record.headers_at is None

        def generate() -> Iterator[str]:
            assert record.headers_at is not None and record.headers_at >= record.start
            yield f"{record.status} {record.status_line} {record.endpoint} {record.method}"

        return Response(generate(), status=203)

    response = app.test_client().get("/report")
    assert response.text == "203 203 NON AUTHORITATIVE INFORMATION report GET"
    assert re.fullmatch(r"\d+\.\d{6}", response.headers["X-Runtime"])


class RecordingServer:
    """The server's side of requests sent straight to a WSGI callable: each
    ``start_response`` call, in order, and the body."""

    def __init__(self) -> None:
        #: (status, headers, exc_info) of each call.
        self.calls: list[tuple[str, list[tuple[str, str]], t.Any]] = []

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
    ) -> t.Callable[[bytes], object]:
        self.calls.append((status, headers, exc_info))
        return lambda data: None

    def call(self, wsgi_app: t.Callable[..., t.Iterable[bytes]], path: str = "/") -> t.Any:
        """The body *wsgi_app* returns for *path*, not iterated yet."""
        return wsgi_app(EnvironBuilder(path=path).get_environ(), self.start_response)

    def get(self, wsgi_app: t.Callable[..., t.Iterable[bytes]], path: str = "/") -> bytes:
        """The whole body for *path*, closed as a server closes it."""
        body = self.call(wsgi_app, path)
        try:
            return b"".join(body)
        finally:
            getattr(body, "close", lambda: None)()


@pytest.mark.parametrize("with_sink", [False, True], ids=["timing-only", "sink"])
def test_an_apps_exc_info_reaches_the_server(with_sink: bool) -> None:
    """PEP 3333: an app that replaces its response after an error calls
    ``start_response`` again with ``exc_info``; the server gets that same ``exc_info``
    (it decides whether the headers can still be replaced or the error re-raised)."""
    import sys

    from flask_observe.timing import ObserveMiddleware

    failures: list[t.Any] = []

    def app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
        try:
            raise LookupError("late failure")
        except LookupError:
            failures.append(sys.exc_info())
            start_response("500 INTERNAL SERVER ERROR", [], failures[0])
        return [b"failed"]

    server = RecordingServer()
    sink = ListSink() if with_sink else None
    middleware = ObserveMiddleware(app, sink=sink)
    before = time.perf_counter()
    body = server.call(middleware.entry)
    took = time.perf_counter() - before
    assert list(body) == [b"failed"]
    calls = [(status, exc_info) for status, _, exc_info in server.calls]
    assert calls == [("200 OK", None), ("500 INTERNAL SERVER ERROR", failures[0])]
    # The replacement is what the client gets: it carries the timing headers too, with
    # the time since the request started.
    for _, headers, _ in server.calls:
        assert [name for name, _ in headers if name in ("X-Runtime", "Server-Timing")] == [
            "X-Runtime",
            "Server-Timing",
        ]
        assert 0 <= float(dict(headers)["X-Runtime"]) <= took


@pytest.mark.parametrize("with_sink", [False, True], ids=["timing-only", "sink"])
def test_a_stream_replaced_after_an_error_ends_with_the_new_status(with_sink: bool) -> None:
    """A streamed response (no ``Content-Length``) that the app replaces after an error,
    before its body starts, is counted with the status the client gets, and the
    replacement carries the timing headers."""
    import sys

    from flask_observe.timing import ObserveMiddleware

    def app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise LookupError("late failure")
        except LookupError:
            start_response("503 SERVICE UNAVAILABLE", [("Retry-After", "1")], sys.exc_info())
        return [b"later"]

    server = RecordingServer()
    sink = ListSink() if with_sink else None
    assert server.get(ObserveMiddleware(app, sink=sink).entry) == b"later"
    status, headers, _ = server.calls[-1]
    assert status == "503 SERVICE UNAVAILABLE"
    assert dict(headers)["Retry-After"] == "1"
    assert re.fullmatch(r"\d+\.\d{6}", dict(headers)["X-Runtime"])
    assert re.fullmatch(r"app;dur=\d+\.\d{3}", dict(headers)["Server-Timing"])
    if sink is not None:
        assert [handed.status for handed in sink.handed] == ["503 SERVICE UNAVAILABLE"]


def test_a_flask_stream_replaced_after_an_error_ends_with_the_new_status() -> None:
    """The same with a Flask view behind a WSGI middleware that replaces a failed
    stream's response: the sink gets the endpoint, the method and the new status."""
    import sys

    from flask_observe.timing import ObserveMiddleware

    flask_app = Flask(__name__)

    @flask_app.get("/feed")
    def feed() -> Response:
        def chunks() -> t.Iterator[str]:
            yield "one"

        return Response(chunks(), mimetype="text/plain")

    def replacing(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        body = flask_app.wsgi_app(environ, start_response)
        try:
            raise OSError("the stream's source went away")
        except OSError:
            start_response("502 BAD GATEWAY", [("Content-Type", "text/plain")], sys.exc_info())
        getattr(body, "close", lambda: None)()
        return [b"gone"]

    server = RecordingServer()
    sink = ListSink()
    assert server.get(ObserveMiddleware(replacing, sink=sink).entry, "/feed") == b"gone"
    status, headers, _ = server.calls[-1]
    assert status == "502 BAD GATEWAY"
    assert re.fullmatch(r"\d+\.\d{6}", dict(headers)["X-Runtime"])
    assert [(h.endpoint, h.method, h.status) for h in sink.handed] == [
        ("feed", "GET", "502 BAD GATEWAY")
    ]


def test_a_response_with_a_record_replaced_after_an_error_gets_the_headers() -> None:
    """On the timing-only path, a request whose record was asked for (here by the view)
    and whose response is replaced after an error: the replacement carries the headers."""
    import sys

    from flask_observe.timing import ObserveMiddleware

    flask_app = Flask(__name__)

    @flask_app.get("/")
    def index() -> str:
        assert current_record() is not None
        return "hello"

    def replacing(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        flask_app.wsgi_app(environ, start_response)
        try:
            raise OSError("the cache went away")
        except OSError:
            start_response("500 INTERNAL SERVER ERROR", [], sys.exc_info())
        return [b"failed"]

    server = RecordingServer()
    middleware = ObserveMiddleware(replacing)
    assert middleware.entry == middleware._timed
    server.call(middleware.entry)
    assert [status for status, _, _ in server.calls] == ["200 OK", "500 INTERNAL SERVER ERROR"]
    for _, headers, _ in server.calls:
        assert re.fullmatch(r"\d+\.\d{6}", dict(headers)["X-Runtime"])


def test_a_response_started_late_survives_a_header_failure(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An app that starts its response while its body is iterated: a failure while
    adding the headers then is the same contained warning, and the body goes out."""
    import flask_observe.timing
    from flask_observe.timing import ObserveMiddleware

    def app(environ: dict[str, t.Any], start_response: t.Any) -> t.Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"late"

    monkeypatch.setattr(flask_observe.timing, "_add_timing_headers", Broken())
    server = RecordingServer()
    sink = ListSink()
    body = server.call(ObserveMiddleware(app, sink=sink).entry)
    assert server.calls == []  # not started yet
    assert b"".join(body) == b"late"
    getattr(body, "close", lambda: None)()
    assert [status for status, _, _ in server.calls] == ["200 OK"]
    assert [handed.status for handed in sink.handed] == ["200 OK"]
    warnings = [r for r in caplog.records if "could not add its headers" in r.getMessage()]
    assert len(warnings) == 1


def test_header_failures_warn_once_a_minute_on_either_path(
    make_app: Callable[..., Flask],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failure while adding the headers is the same warning on the plain path and on
    the metrics path: one a minute in the process, whichever path failed first."""
    import flask_observe.timing

    monkeypatch.setattr(flask_observe.timing, "_add_timing_headers", Broken())
    monkeypatch.setattr(flask_observe.timing, "_WATCHED_LENGTHS", Broken())
    plain = make_app(TESTING=False)
    measured = make_app(TESTING=False, OBSERVE_STATSD_HOST="127.0.0.1", OBSERVE_STATSD_PORT=9)
    for app in (plain, measured):
        add_routes(app)
    for app in (plain, measured, plain, measured):
        response = app.test_client().get("/")
        assert response.status_code == 200 and response.text == "hello"
    warnings = [r for r in caplog.records if "could not add its headers" in r.getMessage()]
    assert len(warnings) == 1


def test_each_failing_finish_hook_warns_once_a_minute(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    """Each failing hook is its own warning, a hook without a ``__qualname__`` (a
    partial) too; the repeats of each are rate limited, and so is the same hook code
    failing for two apps."""
    import functools

    def make_hook(error: type[Exception]) -> Callable[[RequestRecord], None]:
        def hook(record: RequestRecord) -> None:
            raise error("hook bug")

        return hook

    def failing(error: type[Exception], record: RequestRecord) -> None:
        raise error("partial hook bug")

    apps = [make_app(), make_app()]
    for app, error in zip(apps, (ValueError, KeyError), strict=True):
        app.extensions["observe"].add_finish_hook(make_hook(error))
        add_routes(app)
    first = apps[0].extensions["observe"]
    first.add_finish_hook(functools.partial(failing, LookupError))
    first.add_finish_hook(functools.partial(failing, TypeError))
    for _ in range(2):
        for app in apps:
            response = app.test_client().get("/")
            response.close()
            assert response.status_code == 200
    failed = [r for r in caplog.records if r.name == "flask_observe"]
    assert [r.exc_info[0] for r in failed if r.exc_info] == [ValueError, LookupError, TypeError]
    assert [r.getMessage() for r in failed] == ["Flask-Observe: a finish hook failed"] * 3


def test_a_failing_sink_is_contained(caplog: pytest.LogCaptureFixture) -> None:
    """A sink that fails on a finished request is one warning a minute, with its
    traceback; the response and the finish hooks are unaffected."""
    from flask_observe.timing import ObserveMiddleware

    class FailingSink(ListSink):
        def finish(self, record: RequestRecord) -> None:
            raise RuntimeError("sink bug")

    app = Flask("failing_sink")
    add_routes(app)
    records: list[RequestRecord] = []
    middleware = ObserveMiddleware(app.wsgi_app, sink=FailingSink(), finish_hooks=[records.append])
    app.wsgi_app = middleware.entry  # type: ignore[method-assign,assignment]
    for _ in range(2):
        response = app.test_client().get("/")
        response.close()
        assert response.status_code == 200 and response.text == "hello"
    assert [record.status for record in records] == [200, 200]
    warnings = [r for r in caplog.records if r.name == "flask_observe"]
    assert [r.getMessage() for r in warnings] == ["Flask-Observe: the metrics sink failed"]
    assert warnings[0].levelno == logging.WARNING
    assert warnings[0].exc_info and warnings[0].exc_info[0] is RuntimeError


def test_sink_path_times_the_request() -> None:
    """On the metrics path (a sink, no record), the headers and the duration handed to
    the sink measure the request: never longer than the client call around it."""
    app, handed = hooked_app()
    response, outside = timed_get(app, "/sleep")
    runtime = float(response.headers["X-Runtime"])
    assert 0.05 <= runtime <= outside
    assert 50 <= app_ms(response) <= outside * 1000
    assert len(handed) == 1 and handed[0].record is None
    assert 0.05 <= handed[0].seconds <= outside


def test_the_metrics_paths_frames_are_hidden_from_the_debugger() -> None:
    """Werkzeug's debugger leaves the middleware's frames out on the metrics path too
    (tests/test_debugger.py checks the plain path and the toolbar's)."""
    from werkzeug.debug.tbtools import DebugTraceback

    app, _ = hooked_app(PROPAGATE_EXCEPTIONS=True)
    caught: list[DebugTraceback] = []

    def outer(environ: dict[str, t.Any], start_response: t.Any) -> t.Any:
        try:
            return app(environ, start_response)
        except RuntimeError as error:
            caught.append(DebugTraceback(error, hide=True))
            raise

    with pytest.raises(RuntimeError, match="boom"):
        Client(outer).get("/raise")
    frames = [(frame.filename, frame.name) for frame in caught[0].all_frames]
    assert [name for filename, name in frames if filename == __file__][-1] == "explode"
    assert not [name for filename, name in frames if "/flask_observe/" in filename]


def add_header_routes(app: Flask) -> None:
    """Responses with headers of the lengths the middleware looks at (9, 13 and 14
    characters) that are not its own nor ``Content-Length``; ``/sized`` has its
    length written in lower case, ``/stream`` has none."""
    others = {"X-Version": "1", "Cache-Control": "no-store", "X-Stream-Token": "t"}

    @app.get("/sized")
    def sized() -> Response:
        return Response([b"ok"], headers={**others, "content-length": "2"})

    @app.get("/stream")
    def stream() -> Response:
        return Response(iter([b"o", b"k"]), headers=others)


@pytest.mark.parametrize("config", PATHS)
@pytest.mark.parametrize("path", ["/sized", "/stream"])
def test_our_headers_are_added_once_as_users_see_them(
    make_app: Callable[..., Flask], config: dict[str, object], path: str
) -> None:
    """Whatever other headers of the watched lengths a response has, ``X-Runtime`` and
    ``Server-Timing`` are added once each, spelled as in the docs."""
    app = make_app(add_header_routes, **config)
    response = app.test_client().get(path)
    assert response.text == "ok"
    names = [name for name, _ in response.headers]
    assert [name for name in names if name.lower() in ("x-runtime", "server-timing")] == [
        "X-Runtime",
        "Server-Timing",
    ]
    assert re.fullmatch(r"\d+\.\d{6}", response.headers["X-Runtime"])
    assert re.fullmatch(r"app;dur=\d+\.\d{3}", response.headers["Server-Timing"])
    assert response.headers["X-Version"] == "1"


@pytest.mark.parametrize("path", ["/sized", "/stream"])
def test_a_response_is_complete_as_it_starts_only_with_a_content_length(path: str) -> None:
    """A ``Content-Length`` (in any case) makes a response complete as it starts: the
    sink gets it without a record, and a record ends as its headers start. A stream,
    whatever its other headers, ends when its body is closed."""
    app, handed = hooked_app()
    add_header_routes(app)
    records: list[RequestRecord] = []
    recording = app_with_finish_hook(records.append)
    add_header_routes(recording)
    for target in (app, recording):
        response = target.test_client().get(path, buffered=False)
        assert response.get_data() == b"ok"
        response.close()
    assert len(handed) == 1 and len(records) == 1
    (record,) = records
    assert record.end is not None and record.headers_at is not None
    if path == "/sized":
        assert handed[0].record is None
        assert record.end == record.headers_at
    else:
        assert handed[0].record is not None
        assert record.end > record.headers_at


def app_with_finish_hook(hook: t.Callable[[RequestRecord], None]) -> Flask:
    """A plain Flask app behind the middleware with one finish hook (every request
    keeps a record)."""
    from flask_observe.timing import ObserveMiddleware

    app = Flask("with_hook")
    middleware = ObserveMiddleware(app.wsgi_app, finish_hooks=[hook])
    app.wsgi_app = middleware.entry  # type: ignore[method-assign,assignment]
    return app


@pytest.mark.parametrize("hooks", [0, 1], ids=["plain", "with-finish-hook"])
def test_a_server_timing_header_first_in_the_list_is_merged(hooks: int) -> None:
    """The app's own ``Server-Timing`` gets our entry appended wherever it is in the
    header list, the first place included."""
    from flask_observe.timing import ObserveMiddleware

    def app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        start_response("200 OK", [("Server-Timing", "cache;dur=1"), ("Content-Length", "2")])
        return [b"ok"]

    records: list[RequestRecord] = []
    middleware = ObserveMiddleware(app, finish_hooks=[records.append] * hooks)
    response = Client(middleware.entry).get("/")
    assert response.get_data() == b"ok"
    (timing,) = response.headers.getlist("Server-Timing")
    assert re.fullmatch(r"cache;dur=1, app;dur=\d+\.\d{3}", timing), timing
    assert len(records) == hooks


@pytest.mark.parametrize("config", PATHS)
def test_a_request_without_path_info_is_served(
    make_app: Callable[..., Flask], config: dict[str, object]
) -> None:
    """PEP 3333 lets a server leave out an empty ``PATH_INFO``; with excluded paths
    (prefixes too) the request is still served and timed."""
    app = make_app(OBSERVE_EXCLUDE_PATHS=["/health", "/assets/*"], **config)
    app.add_url_rule("/", "index", lambda: "home")
    environ = EnvironBuilder(path="/").get_environ()
    del environ["PATH_INFO"]
    started: list[tuple[str, dict[str, str]]] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: t.Any = None
    ) -> t.Callable[[bytes], object]:
        started.append((status, dict(headers)))
        return lambda data: None

    body = app(environ, start_response)
    assert b"".join(body) == b"home"
    getattr(body, "close", lambda: None)()
    ((status, headers),) = started
    assert status == "200 OK"
    assert re.fullmatch(r"\d+\.\d{6}", headers["X-Runtime"])


def test_a_stream_on_the_sink_path_notes_its_start_on_the_record() -> None:
    """On the metrics path a stream gets a record as its response starts: its body
    reads the status and when the headers went out."""
    app, handed = hooked_app()

    @app.get("/report")
    def report() -> Response:
        def generate() -> Iterator[str]:
            record = current_record()
            assert record is not None and record.headers_at is not None
            yield f"{record.status} {record.headers_at >= record.start}"

        return Response(stream_with_context(generate()))

    response = app.test_client().get("/report")
    assert response.text == "200 True"
    response.close()
    assert [h.status for h in handed] == ["200 OK"]


@pytest.mark.parametrize("hooks", [0, 1], ids=["plain", "with-finish-hook"])
def test_a_server_timing_header_late_in_the_list_is_merged(hooks: int) -> None:
    """Third in the list, after headers of other names: our entry joins that header,
    and the headers before it keep their values."""
    from flask_observe.timing import ObserveMiddleware

    def app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        headers = [("X-A", "1"), ("X-B", "2"), ("Server-Timing", "cache;dur=1")]
        start_response("200 OK", [*headers, ("Content-Length", "2")])
        return [b"ok"]

    middleware = ObserveMiddleware(app, finish_hooks=[lambda record: None] * hooks)
    response = Client(middleware.entry).get("/")
    assert (response.headers["X-A"], response.headers["X-B"]) == ("1", "2")
    (timing,) = response.headers.getlist("Server-Timing")
    assert re.fullmatch(r"cache;dur=1, app;dur=\d+\.\d{3}", timing), timing


def test_startup_checks_run_before_the_first_request_until_one_passes() -> None:
    """A check that raises refuses the request (and the next, until it passes); once
    every check passed, none runs again."""
    from flask_observe.timing import ObserveMiddleware

    calls: list[str] = []
    ready = False

    def check() -> None:
        calls.append("check")
        if not ready:
            raise RuntimeError("not ready")

    def app(environ: dict[str, t.Any], start_response: t.Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    client = Client(ObserveMiddleware(app, startup_checks=[check]).entry)
    with pytest.raises(RuntimeError, match="not ready"):
        client.get("/")
    assert calls == ["check"]
    ready = True
    for _ in range(3):
        assert client.get("/").get_data() == b"ok"
    assert calls == ["check", "check"]
