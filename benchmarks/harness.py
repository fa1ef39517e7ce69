"""What the benchmark scripts share: the app configurations they compare, serving and
timing requests in-process, counting instructions under valgrind, and loading a real
server (gunicorn) with wrk.

The scripts run as modules from the checkout's root, so that they measure the checkout
and not an installed copy (``python -m benchmarks.overhead``); their child processes
run the same way. Importing the :mod:`benchmarks` package applies the memory layout a
callgrind run asks for (:func:`shift_layout`) before any script imports Flask: this
module therefore imports only the standard library at its top.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import importlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
from pathlib import Path
from time import perf_counter

if t.TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable
    from collections.abc import Iterator
    from collections.abc import Sequence

    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment
    from flask import Flask
    from sentry_sdk.client import BaseClient

#: The checkout's root: where child processes and servers run.
ROOT = Path(__file__).resolve().parent.parent

AppFactory = t.Callable[[], "WSGIApplication"]


# --- memory layouts ----------------------------------------------------------------------

#: The environment variable holding the layout number (0 or unset: no shift).
#:
#: A run under valgrind repeats to the instruction, but what it counts depends on where
#: objects land: ``contextvars`` hashes its variables by address, CPython's type attribute
#: cache is indexed by version tag and by the address of the name looked up, and the
#: allocator's work follows. Any change to what a process imports or allocates before
#: serving moves a configuration's count by up to about 1 % of a request, so
#: :func:`instructions` counts each configuration in several layouts and keeps the median.
LAYOUT_KEY = "OBSERVE_BENCH_LAYOUT"

#: What the layout keeps alive: a seeded set of small objects of mixed sizes (moving
#: every later small object) and of classes with version tags (moving every later tag).
layout_ballast: list[object] = []


def shift_layout() -> int:
    """Apply the layout :data:`LAYOUT_KEY` names, once per process; return its number."""
    layout = int(os.environ.get(LAYOUT_KEY) or 0)
    if layout <= 0 or layout_ballast:
        return layout
    chooser = random.Random(layout)
    for _ in range(chooser.randrange(200, 2000)):
        layout_ballast.append("x" * chooser.randrange(1, 400))
    for index in range(chooser.randrange(5, 80)):
        cls = type(f"_Layout{index}", (), {})
        getattr(cls, "tagged", None)  # a look-up gives the class its version tag
        layout_ballast.append(cls)
    return layout


# --- ports and helper processes ------------------------------------------------------------


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port that nothing listens on (at the time of asking)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port_dsn() -> str:
    """A Sentry DSN on a loopback port where nothing listens: connections are refused."""
    return f"http://public@127.0.0.1:{free_port()}/1"


#: Called by :func:`close_all` when a run ends: helper processes stopped, clients closed.
CLOSERS: list[t.Callable[[], object]] = []


def close_all() -> None:
    while CLOSERS:
        CLOSERS.pop(0)()


#: Prepended to a serving process's script: it exits when its stdin closes, that is when
#: the process that started it closes it or ends in any way (a gunicorn worker stopped).
_EXIT_WITH_PARENT = (
    "import os, sys, threading\n"
    "threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()\n"
)

#: A loopback UDP receiver draining what it gets, as a statsd daemon would (the kernel
#: wakes it; the sender pays for that).
UDP_DRAIN_SCRIPT = (
    "import socket\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.bind(('127.0.0.1', 0))\n"
    "print(s.getsockname()[1], flush=True)\n"
    "while True:\n"
    "    s.recv(65535)\n"
)


def serving_process(script: str) -> int:
    """Run ``python -c script`` in its own process, so that its work is not this
    process's; the script prints the port it serves on, then serves. Returns the port;
    :func:`close_all` stops the process."""
    process = subprocess.Popen(
        [sys.executable, "-c", _EXIT_WITH_PARENT + script],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert process.stdin is not None and process.stdout is not None
    port = int(process.stdout.readline())

    def close() -> None:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()
        process.wait(timeout=10)
        process.stdout.close()

    CLOSERS.append(close)
    return port


# --- the apps --------------------------------------------------------------------------------


def trivial_app(**config: object) -> Flask:
    """A Flask app with one trivial view (the one measured) and no SECRET_KEY (no
    session cost), plus a view that raises, for :func:`serve_one_error`."""
    from flask import Flask

    app = Flask("bench")
    app.config.update(config)

    @app.get("/hello")
    def hello() -> str:
        return "Hello, World!"

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    # Every configuration starts with the logger read, as a serving app has it once Flask
    # has logged its first unhandled error (production gets it by serving one). Python
    # 3.14 keeps an object's attributes inline only up to a limit, which a Flask app
    # passes with two attributes beyond those of its __init__: here the logger (a cached
    # property, stored on the app) and a middleware installed as app.wsgi_app. Past it,
    # each of Flask's `self.x` reads goes through a dictionary. Without this line the
    # floor and timing would stay under the limit while production went past it, and
    # Flask's dearer reads (0.5 to 1 k instructions a request) would count as
    # production's. Bare Flask, with no middleware, stays under it.
    app.logger  # noqa: B018

    return app


def serve_one_error(app: Flask) -> None:
    """Serve one unhandled error (unlogged) and wait until its event is handed to the
    transport: a production process has captured errors before, so what a capture
    leaves behind (threads, the SDK's state, what it set in the serving thread's
    context) is part of what each later request pays for."""
    from werkzeug.test import Client

    from flask_observe.sentry import flush

    app.config["PROPAGATE_EXCEPTIONS"] = False
    app.logger.disabled = True
    try:
        # Werkzeug's client, not app.test_client(): Flask's imports click.testing and
        # pdb, which no server process has (and which make its collections longer).
        response = Client(app).get("/boom")
    finally:
        app.logger.disabled = False
    assert response.status_code == 500, response.status_code
    flush(timeout=10)


class FloorMiddleware:
    """The floor: the least a middleware that times requests can do. A ``perf_counter``
    pair, ``X-Runtime`` and ``Server-Timing`` appended without looking at the headers
    already there, and the duration appended to a list under a lock (where a metrics
    client would pick it up; cleared when it grows, so memory stays flat).

    :param wsgi_app: the wrapped WSGI callable.
    """

    def __init__(self, wsgi_app: WSGIApplication) -> None:
        self.wsgi_app = wsgi_app
        self.lock = threading.Lock()
        self.durations: list[float] = []

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        start = perf_counter()
        lock = self.lock
        durations = self.durations

        # A type comment, as in flask_observe.timing: on Python 3.14 annotations would
        # build an __annotate__ function on every request, which the least does not.
        def timed_start_response(status, headers, exc_info=None):
            # type: (str, list[tuple[str, str]], OptExcInfo | None) -> t.Callable[[bytes], object]
            elapsed = perf_counter() - start
            headers.append(("X-Runtime", "%0.6f" % elapsed))
            headers.append(("Server-Timing", "app;dur=%.3f" % (elapsed * 1000.0)))
            with lock:
                durations.append(elapsed)
                if len(durations) > 1000:
                    durations.clear()
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, timed_start_response)


#: Environment variable: how many times slower than at full speed this process runs
#: (:func:`instructions` sets it for valgrind). The statsd flush interval and the
#: sender thread's collection interval are stretched by it, so that one flush covers as
#: many requests as it would at full speed: the sender thread's share per request is
#: then what it is in production, not a hundred times that.
TIME_SCALE_KEY = "OBSERVE_BENCH_TIME_SCALE"

#: About how many times slower callgrind runs these apps than the bare interpreter.
VALGRIND_SLOWDOWN = 100


def statsd_config(port: int, **config: object) -> dict[str, object]:
    """The app settings of a statsd configuration sending to *port*, its flush interval
    (0.5 s, the default) stretched by :data:`TIME_SCALE_KEY`, as is the sender
    thread's collection interval (process-wide)."""
    from flask_observe import statsd_client

    scale = float(os.environ.get(TIME_SCALE_KEY) or 1.0)
    statsd_client.COLLECT_INTERVAL = 0.5 * scale
    return {
        "OBSERVE_STATSD_HOST": "127.0.0.1",
        "OBSERVE_STATSD_PORT": port,
        "OBSERVE_STATSD_FLUSH_INTERVAL": 0.5 * scale,
        **config,
    }


#: ``Flask.__call__`` and ``logging.Logger.callHandlers`` as sentry-sdk's integrations
#: patched them (once per process), kept here after the originals are restored.
_SENTRY_PATCHES: dict[str, t.Callable[..., t.Any]] = {}


def confined_sentry_flask(app: Flask, dsn: str) -> tuple[WSGIApplication, BaseClient]:
    """*app* with sentry-sdk's default and auto-enabling integrations (hence
    ``FlaskIntegration`` and the logging integration), tracing off, confined to it;
    returns its WSGI callable and the client.

    sentry-sdk is process-global: ``FlaskIntegration`` patches ``Flask.__call__``, the
    logging integration ``logging.Logger.callHandlers``, both connect receivers to
    Flask's signals for every app of the process, and ``sentry_sdk.init`` would replace
    the client another configuration bound. So the client is built without binding it
    globally, the patches are undone and re-applied around this app's own calls only,
    the signal receivers reconnected with this app as their only sender, and the client
    bound on an isolation scope entered per request. The other configurations of the
    process pay nothing for it; the scope entry (well under 1 µs) is counted here.
    """
    import logging

    import sentry_sdk
    from flask import Flask
    from flask import got_request_exception
    from flask import request_started
    from sentry_sdk.integrations import flask as sentry_flask_module
    from sentry_sdk.scope import use_isolation_scope

    original_call = Flask.__call__
    original_handlers = logging.Logger.callHandlers
    client = sentry_sdk.Client(dsn=dsn, traces_sample_rate=None)
    CLOSERS.append(lambda: client.close(timeout=2))
    if client.get_integration("flask") is None:
        raise ImportError("sentry-sdk did not enable its FlaskIntegration")
    if not _SENTRY_PATCHES:
        if Flask.__call__ is original_call:
            raise ImportError("FlaskIntegration was set up before this benchmark")
        _SENTRY_PATCHES["call"] = Flask.__call__
        _SENTRY_PATCHES["handlers"] = logging.Logger.callHandlers
        Flask.__call__ = original_call  # type: ignore[method-assign]
        logging.Logger.callHandlers = original_handlers  # type: ignore[method-assign]
    patched_call, patched_handlers = _SENTRY_PATCHES["call"], _SENTRY_PATCHES["handlers"]
    for flask_signal, receiver in (
        (request_started, sentry_flask_module._request_started),
        (got_request_exception, sentry_flask_module._capture_exception),
    ):
        flask_signal.disconnect(receiver)
        flask_signal.connect(receiver, app)
    scope = sentry_sdk.get_isolation_scope().fork()
    scope.set_client(client)

    def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        logging.Logger.callHandlers = patched_handlers  # type: ignore[method-assign]
        try:
            with use_isolation_scope(scope):
                return t.cast("Iterable[bytes]", patched_call(app, environ, start_response))
        finally:
            logging.Logger.callHandlers = original_handlers  # type: ignore[method-assign]

    return wsgi, client


# --- the configuration registry --------------------------------------------------------------


class NullStream:
    """``wsgi.errors``: Flask formats the tracebacks it logs; nothing is written."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        return None


class Registry:
    """App configurations by name, each built fresh by its factory, all asked for the
    same path; ``bare`` is the reference every table divides by.

    :param module: the module holding this registry as ``CONFIGURATIONS``: a child
        process imports it to build one configuration (see :func:`serve`).
    :param path: the path every request asks for.
    """

    def __init__(self, module: str, path: str) -> None:
        self.module = module
        self.path = path
        self.factories: dict[str, tuple[str, AppFactory]] = {}

    def add(self, name: str, description: str) -> t.Callable[[AppFactory], AppFactory]:
        """Register the decorated factory as configuration *name*."""

        def register(factory: AppFactory) -> AppFactory:
            self.factories[name] = (description, factory)
            return factory

        return register

    def names(self) -> list[str]:
        return list(self.factories)

    def describe(self, name: str) -> str:
        return self.factories[name][0]

    def build(self, name: str) -> WSGIApplication:
        """A fresh app of configuration *name*."""
        return self.factories[name][1]()

    def build_all(self, names: Sequence[str]) -> dict[str, WSGIApplication]:
        """The apps of *names*, those needing a missing optional package reported on
        stderr and left out."""
        apps: dict[str, WSGIApplication] = {}
        for name in names:
            try:
                apps[name] = self.build(name)
            except ImportError as exc:
                print(f"skipped {name}: {exc}", file=sys.stderr)
        return apps

    def environ(self) -> dict[str, t.Any]:
        """The WSGI environ of one request to :attr:`path`."""
        from werkzeug.test import EnvironBuilder

        environ = EnvironBuilder(path=self.path).get_environ()
        environ["wsgi.errors"] = NullStream()
        return environ

    def select(
        self, parser: argparse.ArgumentParser, only: Sequence[str] | None, among: Sequence[str]
    ) -> list[str]:
        """``bare`` then the names of *among* that *only* lists (all when it is empty),
        in *among*'s order; an unknown name is a command-line error."""
        unknown = set(only or ()) - set(among)
        if unknown:
            parser.error(f"unknown configuration(s): {', '.join(sorted(unknown))}")
        return ["bare", *(name for name in among if name != "bare" and name in (only or among))]

    def check(self, apps: dict[str, WSGIApplication], status: int, body: bytes | None) -> int:
        """Print whether each app answers :attr:`path` with *status* (and *body*), so that
        the ratios compare the same work; return 1 if any does not."""
        from werkzeug.test import Client

        failed = 0
        for name, app in apps.items():
            response = Client(app).get(self.path, environ_overrides={"wsgi.errors": NullStream()})
            ok = response.status_code == status and body in (None, response.get_data())
            print(f"{name:<14} {'ok' if ok else 'DIFFERENT'} {response.status}")
            failed += not ok
        return 1 if failed else 0


#: The configurations of the trivial view, compared by ``overhead``, ``peers`` and
#: ``opcodes``; each script picks its own set.
CONFIGURATIONS = Registry("benchmarks.harness", "/hello")


def _observe(**config: object) -> Flask:
    """The trivial app with Flask-Observe; with a Sentry DSN, after one captured error
    (the steady state of a process that has captured errors), its client closed by
    :func:`close_all`."""
    from flask_observe import Observe

    app = trivial_app(**config)
    Observe(app)
    if "OBSERVE_SENTRY_DSN" in config:
        import sentry_sdk

        serve_one_error(app)
        client = sentry_sdk.get_client()

        def unbind() -> None:
            if sentry_sdk.get_client() is client:
                sentry_sdk.get_global_scope().set_client(None)
            client.close(timeout=0.1)

        CLOSERS.append(unbind)
    return app


@CONFIGURATIONS.add("bare", "bare Flask")
def _bare() -> WSGIApplication:
    return trivial_app()


@CONFIGURATIONS.add("floor", "floor: perf_counter pair + both headers + one locked list append")
def _floor() -> WSGIApplication:
    app = trivial_app()
    app.wsgi_app = FloorMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app


@CONFIGURATIONS.add("timing", "Flask-Observe, timing headers only")
def _timing() -> WSGIApplication:
    return _observe()


@CONFIGURATIONS.add("runtime", "Flask-Observe, X-Runtime only")
def _runtime() -> WSGIApplication:
    return _observe(OBSERVE_SERVER_TIMING=False)


@CONFIGURATIONS.add("metrics", "timing + statsd timer and status counter, UDP to 127.0.0.1")
def _metrics() -> WSGIApplication:
    return _observe(**statsd_config(serving_process(UDP_DRAIN_SCRIPT)))


@CONFIGURATIONS.add("metrics-tags", "as metrics, dogstatsd tags and a 0.5 sample rate")
def _metrics_tags() -> WSGIApplication:
    port = serving_process(UDP_DRAIN_SCRIPT)
    return _observe(
        **statsd_config(port, OBSERVE_STATSD_TAGS="dogstatsd", OBSERVE_STATSD_SAMPLE_RATE=0.5)
    )


@CONFIGURATIONS.add("errors", "timing + JSON errors + Sentry capture armed (closed port)")
def _errors() -> WSGIApplication:
    """JSON errors on and sentry-sdk initialised by the extension (lean: no
    FlaskIntegration); the success path must not touch the client at all."""
    return _observe(OBSERVE_SENTRY_DSN=closed_port_dsn())


@CONFIGURATIONS.add("production", "timing + statsd (UDP) + JSON errors + Sentry armed")
def _production() -> WSGIApplication:
    port = serving_process(UDP_DRAIN_SCRIPT)
    return _observe(
        **statsd_config(port, OBSERVE_STATSD_PREFIX="bench", OBSERVE_SENTRY_DSN=closed_port_dsn())
    )


@CONFIGURATIONS.add(
    "production-floor", "production's app and process, its request path replaced by the floor's"
)
def _production_floor() -> WSGIApplication:
    """The floor in the process production runs in: the same app, Sentry initialised
    and an error captured, the statsd client made, with the request path swapped for
    :class:`FloorMiddleware`. Against ``floor``, it shows what the process itself
    costs each request (a larger heap for the collector, more types for the type
    attribute cache; the app's attributes are past 3.14's inline limit in both, see
    :func:`trivial_app`); against ``production``, what the request path costs."""
    from flask import Flask

    from flask_observe.state import get_state

    app = _production()
    assert isinstance(app, Flask)
    app.wsgi_app = FloorMiddleware(get_state(app).middleware.wsgi_app)  # type: ignore[method-assign,union-attr]
    return app


@CONFIGURATIONS.add("prometheus", "prometheus_flask_exporter, default metrics")
def _prometheus() -> WSGIApplication:
    from prometheus_client import CollectorRegistry
    from prometheus_flask_exporter import PrometheusMetrics

    app = trivial_app()
    # A private registry, so that building the app twice in one process works.
    PrometheusMetrics(app, registry=CollectorRegistry(auto_describe=True))
    return app


@CONFIGURATIONS.add("sentry_flask", "bare Flask + sentry-sdk stock FlaskIntegration, no tracing")
def _sentry_flask() -> WSGIApplication:
    return confined_sentry_flask(trivial_app(), closed_port_dsn())[0]


@CONFIGURATIONS.add("otel", "opentelemetry-instrumentation-flask, SDK tracer, no exporter")
def _otel() -> WSGIApplication:
    """Instruments the whole process: only in a process of its own (``peers``)."""
    from opentelemetry import trace
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.sdk.trace import TracerProvider

    provider = TracerProvider()
    trace.set_tracer_provider(provider)
    app = trivial_app()
    FlaskInstrumentor().instrument_app(app, tracer_provider=provider)  # type: ignore[no-untyped-call]
    return app


@CONFIGURATIONS.add("debugtoolbar", "Flask-DebugToolbar, default panels (needs SECRET_KEY)")
def _debugtoolbar() -> WSGIApplication:
    from flask_debugtoolbar import DebugToolbarExtension

    app = trivial_app(SECRET_KEY="bench", DEBUG_TB_ENABLED=True, DEBUG_TB_INTERCEPT_REDIRECTS=False)
    app.debug = True
    DebugToolbarExtension(app)
    return app


def build(name: str) -> WSGIApplication:
    """A fresh app of the trivial-view configuration *name*, for gunicorn:
    ``gunicorn 'benchmarks.harness:build("production")'``."""
    return CONFIGURATIONS.build(name)


# --- serving and timing in-process ------------------------------------------------------------


def _write(data: bytes) -> None:
    return None


def _start_response(
    status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None, /
) -> t.Callable[[bytes], object]:
    return _write


def run_once(app: WSGIApplication, environ: dict[str, t.Any], requests: int) -> float:
    """Seconds per request over *requests* calls of the WSGI callable."""
    start = time.perf_counter()
    for _ in range(requests):
        body = app(environ.copy(), _start_response)
        for _chunk in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return (time.perf_counter() - start) / requests


def interleaved(names: Sequence[str], rounds: int) -> Iterator[str]:
    """Each name once per round, the order reversed every other round, so that a change
    in the machine's load hits every configuration alike."""
    for round_index in range(rounds):
        yield from (reversed(names) if round_index % 2 else names)


def serve(module: str, name: str, requests: int) -> None:
    """Serve *requests* requests of configuration *name* of *module*'s registry, untimed:
    what a child process counted by valgrind runs."""
    registry: Registry = importlib.import_module(module).CONFIGURATIONS
    app = registry.build(name)
    # Start-up's garbage collected now, as in a server that has been up a while. Left
    # to the collector, it goes in one-off collections whose size follows everything
    # imported and built: on 3.14 one of 2-3 ms in the first 2,000 requests (inside the
    # counted requests, where it cost a few tenths of a percent per request, more the
    # larger the start-up), then one of about 10 ms near request 25,000 and none in the
    # next 275,000. Counted, they charged a one-off of start-up to each request.
    gc.collect()
    try:
        run_once(app, registry.environ(), requests)
    finally:
        close_all()


def in_child(module: str, function: str, *args: object) -> t.Any:
    """What ``module.function(*args)`` returns, called in a fresh interpreter in the
    checkout and handed back as JSON: one configuration per process, since some of them
    (sentry-sdk) set process-wide state.

    :raise RuntimeError: the child failed; the end of its stderr is in the message."""
    code = (
        "import importlib, json, sys; "
        "function = getattr(importlib.import_module(sys.argv[1]), sys.argv[2]); "
        "print(json.dumps(function(*json.loads(sys.argv[3]))))"
    )
    command = [sys.executable, "-c", code, module, function, json.dumps(args)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"{module}.{function}{args} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.splitlines()[-1])


# --- instructions (valgrind) -------------------------------------------------------------------


@dataclasses.dataclass
class Instructions:
    """Instructions per request of one configuration, one figure per memory layout."""

    total: list[float]
    #: The main thread's alone: the request path, without background threads.
    request_thread: list[float]


def callgrind(registry: Registry, name: str, requests: int, layout: int) -> tuple[int, int]:
    """All instructions of a process serving *requests* requests of configuration
    *name* in memory layout *layout* under valgrind's callgrind, and those of its main
    (request) thread (``--separate-threads=yes``), as :func:`read_callgrind` reads them.

    ``PYTHONHASHSEED=0`` makes the interpreter's own start-up repeatable, and
    :data:`TIME_SCALE_KEY` stretches the statsd flush interval to valgrind's pace."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("counting instructions needs valgrind (apt-get install valgrind)")
    env = {
        **os.environ,
        "PYTHONHASHSEED": "0",
        LAYOUT_KEY: str(layout),
        TIME_SCALE_KEY: str(VALGRIND_SLOWDOWN),
    }
    code = f"from benchmarks.harness import serve; serve({registry.module!r}, {name!r}, {requests})"
    with tempfile.TemporaryDirectory() as tmp:
        out = f"--callgrind-out-file={tmp}/callgrind.out.%p"
        command = [valgrind, "--tool=callgrind", "--separate-threads=yes", out,
                   sys.executable, "-c", code]  # fmt: skip
        # Valgrind (and Debian's wrapper script) execs the tool: the pid stays the same.
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT
        )
        _out, stderr = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"{name} failed under valgrind:\n{stderr[-3000:]}")
        return read_callgrind(stderr, Path(tmp), process.pid)


def read_callgrind(stderr: str, directory: Path, pid: int) -> tuple[int, int]:
    """All instructions of process *pid* and those of its main thread, from a callgrind
    run with ``--separate-threads=yes --callgrind-out-file=DIRECTORY/callgrind.out.%p``:
    the total from its ``==PID== Collected : N`` line on *stderr*, the main thread's
    from the ``totals:`` line of ``callgrind.out.PID-01`` (one file per thread, ``-NN``).

    Only *pid*'s report counts. Valgrind 3.24 and later (Debian trixie's, forky's) also
    report a child the process forks, when the child execs (the statsd drain of
    :func:`serving_process`): its ``Collected`` line comes first on *stderr*, and its
    files are named after its own pid. Valgrind 3.19 (Debian 12's) does not report it.

    :raise RuntimeError: *pid*'s report is missing, or its threads' files do not add
        up to its total (a format this function does not know).
    """
    total = re.search(rf"^=={pid}== Collected : (\d+)$", stderr, re.M)
    threads: dict[int, int] = {}
    for path in directory.glob(f"callgrind.out.{pid}-*"):
        text = path.read_text()
        thread = re.search(r"^thread: (\d+)$", text, re.M)
        totals = re.search(r"^totals: (\d+)$", text, re.M)
        if thread is not None and totals is not None:
            threads[int(thread.group(1))] = int(totals.group(1))
    if total is None or 1 not in threads:
        raise RuntimeError(f"no callgrind report of process {pid}:\n{stderr[-2000:]}")
    if sum(threads.values()) != int(total.group(1)):
        raise RuntimeError(
            f"the threads of process {pid} add up to {sum(threads.values())} instructions, "
            f"its report says {total.group(1)}"
        )
    return int(total.group(1)), threads[1]


def write_bytecode(packages: Iterable[Path]) -> None:
    """Compile the modules of *packages* to their ``__pycache__`` now, for this
    interpreter. A counted run that imports a module whose bytecode is missing or stale
    compiles it (some 30 M instructions for the checkout's modules): in the run of a pair
    that imports first, not in the other, which moved the figures by up to 20 k
    instructions per request after every edit and on every interpreter's first run."""
    import compileall

    for package in packages:
        if not compileall.compile_dir(package, quiet=1):
            raise RuntimeError(f"cannot compile {package}")


def instructions(
    registry: Registry, names: Sequence[str], low: int, high: int, layouts: int
) -> dict[str, Instructions]:
    """Instructions per request of each configuration, counted by :func:`callgrind`: the
    difference between a run of *high* and one of *low* requests, so that start-up
    cancels out, in *layouts* memory layouts (the same ones for every configuration).
    Unlike wall time this does not move with the load of a shared machine (nor does it
    count the kernel's side of a send, or cache effects)."""
    import concurrent.futures

    write_bytecode([ROOT / "flask_observe", ROOT / "benchmarks"])
    jobs = [(name, n, layout) for name in names for layout in range(layouts) for n in (low, high)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        counts = dict(zip(jobs, pool.map(lambda job: callgrind(registry, *job), jobs), strict=True))

    def per_request(name: str, thread: int) -> list[float]:
        return [
            (counts[(name, high, layout)][thread] - counts[(name, low, layout)][thread])
            / (high - low)
            for layout in range(layouts)
        ]

    return {name: Instructions(per_request(name, 0), per_request(name, 1)) for name in names}


def print_instructions(
    registry: Registry, counts: dict[str, Instructions], low: int, high: int
) -> int:
    """The table of :func:`instructions`: medians over the layouts, the spread (largest
    minus smallest), the ratio to ``bare`` and the gap to ``floor`` when it was counted,
    then the request thread alone."""
    total = {name: statistics.median(c.total) for name, c in counts.items()}
    own = {name: statistics.median(c.request_thread) for name, c in counts.items()}
    base, floor = total["bare"], total.get("floor")
    width = max(14, *(len(name) for name in counts))
    print(
        f"{'configuration':<{width}} {'instructions':>13} {'spread':>7} {'vs bare':>8} "
        f"{'overhead':>10}"
        + (f" {'vs floor':>10}" if floor is not None else "")
        + f" {'request thread':>16}  description"
    )
    for name, value in total.items():
        spread = max(counts[name].total) - min(counts[name].total)
        gap = f" {(value - floor) / 1000:>+8.1f} k" if floor is not None else ""
        print(
            f"{name:<{width}} {value / 1000:>11.1f} k {spread / 1000:>5.1f} k "
            f"{value / base:>7.3f}x {(value - base) / 1000:>+8.1f} k{gap} "
            f"{own[name] / 1000:>7.1f} k {own[name] / own['bare']:.3f}x  "
            f"{registry.describe(name)}"
        )
    layouts = len(counts["bare"].total)
    print(
        f"median of {layouts} memory layout(s); {high} minus {low} requests each; "
        "spread: largest minus smallest; request thread: the main thread alone (without "
        f"background threads such as the statsd sender, whose flush interval is stretched "
        f"{VALGRIND_SLOWDOWN}x to cover as many requests as at full speed)"
    )
    return 0


# --- a real server: gunicorn and wrk -----------------------------------------------------------


@contextlib.contextmanager
def gunicorn(
    app: str,
    *,
    workers: int = 1,
    threads: int = 1,
    preload: bool = False,
    env: dict[str, str] | None = None,
    extra_args: Sequence[str] = (),
    warm_up: str | None = None,
) -> Iterator[str]:
    """Serve the gunicorn app spec *app* (``"demo_app:create_app()"``) from the
    checkout; yields its base URL. With *warm_up*, that path is requested a few times
    per worker first (a worker's first request is slow while it finishes importing).
    On exit, a graceful stop: workers finish, run ``atexit`` and flush what they buffer.
    """
    binary = Path(sys.executable).with_name("gunicorn")
    if not binary.exists():
        raise RuntimeError("gunicorn is missing: run `make venv`")
    port = free_port()
    command = [str(binary), "--workers", str(workers), "--bind", f"127.0.0.1:{port}",
               "--log-level", "critical", "--graceful-timeout", "10", *extra_args]  # fmt: skip
    if threads > 1:
        command += ["--threads", str(threads), "--worker-class", "gthread"]
    if preload:
        command.append("--preload")
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [*command, app], cwd=ROOT, env={**os.environ, **(env or {})},
        start_new_session=True, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    output = log.read().decode(errors="replace")[-4000:]
                    raise RuntimeError(f"gunicorn did not start:\n{output}") from None
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        if warm_up is not None:
            _warm_up(url + warm_up, workers * threads * 4)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def _warm_up(url: str, requests: int) -> None:
    import urllib.error
    import urllib.request

    def hit() -> None:
        for _ in range(requests // 4 + 1):
            with contextlib.suppress(OSError, urllib.error.URLError):
                urllib.request.urlopen(url, timeout=10).close()

    pool = [threading.Thread(target=hit) for _ in range(4)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()


def raise_one_in_ten(ok_path: str, error_path: str) -> str:
    """A wrk Lua script requesting *error_path* every tenth request, *ok_path* else."""
    return f"""
counter = 0
request = function()
  counter = counter + 1
  if counter % 10 == 0 then
    return wrk.format("GET", "{error_path}")
  end
  return wrk.format("GET", "{ok_path}")
end
"""


@dataclasses.dataclass
class WrkResult:
    """What a wrk run reports: latencies in seconds."""

    requests: int
    rps: float
    p50: float
    p99: float
    non_2xx: int
    socket_errors: int


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def parse_wrk(output: str) -> WrkResult:
    """The figures of ``wrk --latency`` output."""

    def number(pattern: str) -> float:
        match = re.search(pattern, output, re.M)
        if not match:
            raise RuntimeError(f"unexpected wrk output (no {pattern!r}):\n{output}")
        return float(match.group(1))

    def latency(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if not match:
            raise RuntimeError(f"no {label} latency in wrk output:\n{output}")
        return float(match.group(1)) * _UNITS[match.group(2)]

    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return WrkResult(
        requests=int(number(r"^\s+(\d+) requests in")),
        rps=number(r"Requests/sec:\s+([\d.]+)"),
        p50=latency("50%"),
        p99=latency("99%"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
    )


def run_wrk(
    url: str, seconds: int, *, connections: int = 8, threads: int = 2, script: str | None = None
) -> WrkResult:
    """Load *url* with wrk for *seconds* (with a Lua *script* choosing the requests)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is missing: run `make services`")
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
               "--timeout", "5s"]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        if script:
            path = Path(tmp) / "script.lua"
            path.write_text(script)
            command += ["-s", str(path)]
        output = subprocess.run(
            [*command, url], capture_output=True, text=True, check=True, timeout=seconds + 60
        ).stdout
    return parse_wrk(output)
