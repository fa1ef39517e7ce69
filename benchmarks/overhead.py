"""Per-request cost of Flask-Observe configurations against bare Flask, in one run.

Each configuration is a small app with one trivial view, called through its WSGI
callable in-process (no HTTP). Rounds are interleaved so that machine noise hits every
configuration alike; the figure per configuration is the median per-request time over
the rounds, printed with its ratio to bare Flask.

    python benchmarks/overhead.py                 # all configurations
    python benchmarks/overhead.py --only bare timing
    python benchmarks/overhead.py --rounds 30 --requests 2000
    python benchmarks/overhead.py --instructions  # valgrind: instructions per request

Configurations that need an optional package that is missing are reported and skipped.
The ``floor`` configuration is the least a timing middleware can do (a ``perf_counter``
pair, both headers, one locked list append); each row also shows its gap to it.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import threading
import time
import typing as t
from pathlib import Path
from time import perf_counter

# Measure the checkout this script belongs to, not whichever copy is installed.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import layout  # noqa: E402

layout.shift()  # before Flask is imported (see benchmarks/layout.py)

from flask import Flask  # noqa: E402
from werkzeug.test import EnvironBuilder  # noqa: E402

if t.TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import WSGIApplication

AppFactory = t.Callable[[], "WSGIApplication"]

#: name -> (description, factory). Later features add their configurations here.
CONFIGURATIONS: dict[str, tuple[str, AppFactory]] = {}


def configuration(name: str, description: str) -> t.Callable[[AppFactory], AppFactory]:
    def register(factory: AppFactory) -> AppFactory:
        CONFIGURATIONS[name] = (description, factory)
        return factory

    return register


def trivial_app(**config: object) -> Flask:
    """A Flask app with one trivial view (the one measured) and no SECRET_KEY (no
    session cost), plus a view that raises, for :func:`serve_one_error`."""
    app = Flask("bench")
    app.config.update(config)

    @app.get("/hello")
    def hello() -> str:
        return "Hello, World!"

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")

    return app


def serve_one_error(app: Flask) -> None:
    """Serve one unhandled error (unlogged) and wait until its event is handed to the
    transport: a production process has captured errors before, so what a capture
    leaves behind (threads, the SDK's state, what it set in the serving thread's
    context) is part of what each later request pays for."""
    from flask_observe.sentry import flush

    app.config["PROPAGATE_EXCEPTIONS"] = False
    app.logger.disabled = True
    try:
        response = app.test_client().get("/boom")
    finally:
        app.logger.disabled = False
    assert response.status_code == 500, response.status_code
    flush(timeout=10)


@configuration("bare", "bare Flask")
def bare() -> WSGIApplication:
    return trivial_app()


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

        def timed_start_response(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> t.Callable[[bytes], object]:
            elapsed = perf_counter() - start
            headers.append(("X-Runtime", "%0.6f" % elapsed))
            headers.append(("Server-Timing", "app;dur=%.3f" % (elapsed * 1000.0)))
            with lock:
                durations.append(elapsed)
                if len(durations) > 1000:
                    durations.clear()
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, timed_start_response)


@configuration("floor", "floor: perf_counter pair + both headers + one locked list append")
def floor() -> WSGIApplication:
    app = trivial_app()
    app.wsgi_app = FloorMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    return app


@configuration("timing", "Flask-Observe, timing headers only")
def timing_only() -> WSGIApplication:
    from flask_observe import Observe

    app = trivial_app()
    Observe(app)
    return app


@configuration("runtime", "Flask-Observe, X-Runtime only")
def runtime_only() -> WSGIApplication:
    from flask_observe import Observe

    app = trivial_app(OBSERVE_SERVER_TIMING=False)
    Observe(app)
    return app


# --- metrics configurations (Metrics issue): add below this line ---


def serving_process(script: str, closers: list[t.Callable[[], None]]) -> int:
    """Run ``python -c script`` in its own process, so that its work is not this
    process's; the script prints the port it serves on, then serves. Returns the port
    and adds a function that stops the process to *closers*."""
    import subprocess

    command = [sys.executable, "-c", script]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert process.stdout is not None
    port = int(process.stdout.readline())

    def close() -> None:
        process.terminate()
        process.wait()
        assert process.stdout is not None
        process.stdout.close()

    closers.append(close)
    return port


#: A loopback UDP receiver draining what it gets, as a statsd daemon would (the kernel
#: wakes it; the sender pays for that).
UDP_DRAIN_SCRIPT = (
    "import socket, sys\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    "s.bind(('127.0.0.1', 0))\n"
    "print(s.getsockname()[1], flush=True)\n"
    "while True:\n"
    "    s.recv(65535)\n"
)


#: Closers of the benchmark's UDP receivers, called when the run ends.
RECEIVERS: list[t.Callable[[], None]] = []

#: Environment variable: how many times slower than at full speed this process runs
#: (:func:`instructions` sets it for valgrind). The statsd flush interval is stretched
#: by it, so that one flush covers as many requests as it would at full speed: the
#: sender thread's share per request is then what it is in production (a few
#: instructions), not a hundred times that.
TIME_SCALE_KEY = "OBSERVE_BENCH_TIME_SCALE"

#: About how many times slower callgrind runs these apps than the bare interpreter.
VALGRIND_SLOWDOWN = 100


def statsd_config(port: int, **config: object) -> dict[str, object]:
    """The app settings of a statsd configuration sending to *port*, its flush interval
    (0.5 s, the default) stretched by :data:`TIME_SCALE_KEY`."""
    import os

    scale = float(os.environ.get(TIME_SCALE_KEY) or 1.0)
    return {
        "OBSERVE_STATSD_HOST": "127.0.0.1",
        "OBSERVE_STATSD_PORT": port,
        "OBSERVE_STATSD_FLUSH_INTERVAL": 0.5 * scale,
        **config,
    }


@configuration("metrics", "timing + statsd timer and status counter, UDP to 127.0.0.1")
def metrics_udp() -> WSGIApplication:
    from flask_observe import Observe

    port = serving_process(UDP_DRAIN_SCRIPT, RECEIVERS)
    app = trivial_app(**statsd_config(port))
    Observe(app)
    return app


@configuration("metrics-tags", "as metrics, dogstatsd tags and a 0.5 sample rate")
def metrics_tags() -> WSGIApplication:
    from flask_observe import Observe

    port = serving_process(UDP_DRAIN_SCRIPT, RECEIVERS)
    app = trivial_app(
        **statsd_config(port, OBSERVE_STATSD_TAGS="dogstatsd", OBSERVE_STATSD_SAMPLE_RATE=0.5)
    )
    Observe(app)
    return app


@configuration("prometheus", "prometheus_flask_exporter, default metrics")
def prometheus() -> WSGIApplication:
    from prometheus_client import CollectorRegistry
    from prometheus_flask_exporter import PrometheusMetrics

    app = trivial_app()
    # A private registry, so that building the app twice in one process works.
    PrometheusMetrics(app, registry=CollectorRegistry(auto_describe=True))
    return app


# --- errors configurations (Errors issue): add below this line ---

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment


def _closed_port_dsn() -> str:
    """A DSN on a loopback port where nothing listens: connections are refused."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://public@127.0.0.1:{port}/1"


@configuration("errors", "timing + JSON errors + Sentry capture armed (closed port)")
def errors_armed() -> WSGIApplication:
    """Flask-Observe with JSON errors on and sentry-sdk initialised by the extension
    (``OBSERVE_SENTRY_DSN``, lean: no FlaskIntegration). The client is the process's
    global one, as in production; the success path must not touch it at all."""
    from flask_observe import Observe

    app = trivial_app(OBSERVE_SENTRY_DSN=_closed_port_dsn())
    Observe(app)
    serve_one_error(app)
    import sentry_sdk  # imported by Observe: its module-level set-up has run

    client = sentry_sdk.get_client()

    def unbind() -> None:
        if sentry_sdk.get_client() is client:
            sentry_sdk.get_global_scope().set_client(None)
        client.close(timeout=0.1)

    RECEIVERS.append(unbind)
    return app


def confine_flask_integration(app: Flask) -> None:
    """Reconnect sentry-sdk's FlaskIntegration signal receivers with *app* as their only
    sender, so that the other apps of the process pay nothing for them."""
    from flask import got_request_exception
    from flask import request_started
    from sentry_sdk.integrations import flask as sentry_flask_module

    for signal, receiver in (
        (request_started, sentry_flask_module._request_started),
        (got_request_exception, sentry_flask_module._capture_exception),
    ):
        signal.disconnect(receiver)
        signal.connect(receiver, app)


#: The ``Flask.__call__`` sentry-sdk's FlaskIntegration patched in (set up once per
#: process), kept here after ``Flask.__call__`` is restored.
_SENTRY_FLASK_CALL: list[t.Callable[..., t.Any]] = []


@configuration("sentry_flask", "bare Flask + sentry-sdk stock FlaskIntegration, no tracing")
def sentry_flask() -> WSGIApplication:
    """Bare Flask with sentry-sdk's defaults (default and auto-enabling integrations,
    hence FlaskIntegration), tracing off, DSN on a closed port.

    sentry-sdk is process-global, and measuring it next to the other configurations in
    one interleaved run needs care: ``FlaskIntegration`` patches ``Flask.__call__`` and
    connects receivers to Flask's signals for *every* app in the process, and
    ``sentry_sdk.init`` would replace the client the "errors" configuration bound. So
    this factory builds its client without binding it globally, confines the
    integration to its own app (``Flask.__call__`` is restored and the patched one
    called only for this app; the signal receivers are reconnected with this app as
    sender) and binds its client on an isolation scope entered per request. The other
    configurations pay nothing for it; the scope entry (well under 1 µs) is counted in
    this figure, next to the ~+170 µs it measures.
    """
    import sentry_sdk
    from sentry_sdk.scope import use_isolation_scope

    original_call = Flask.__call__
    client = sentry_sdk.Client(dsn=_closed_port_dsn(), traces_sample_rate=None)
    RECEIVERS.append(lambda: client.close(timeout=0.1))
    if client.get_integration("flask") is None:
        raise ImportError("sentry-sdk did not enable its FlaskIntegration")
    if not _SENTRY_FLASK_CALL:
        if Flask.__call__ is original_call:
            raise ImportError("FlaskIntegration was set up before this benchmark")
        _SENTRY_FLASK_CALL.append(Flask.__call__)
        Flask.__call__ = original_call  # type: ignore[method-assign]
    patched_call = _SENTRY_FLASK_CALL[0]
    app = trivial_app()
    confine_flask_integration(app)
    scope = sentry_sdk.get_isolation_scope().fork()
    scope.set_client(client)

    def wsgi(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        with use_isolation_scope(scope):
            return t.cast("Iterable[bytes]", patched_call(app, environ, start_response))

    return wsgi


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


def measure(
    apps: dict[str, WSGIApplication], rounds: int, requests: int, path: str = "/hello"
) -> dict[str, float]:
    """Median seconds per request of each app over interleaved rounds."""
    environ = EnvironBuilder(path=path).get_environ()
    samples: dict[str, list[float]] = {name: [] for name in apps}
    for app in apps.values():  # warm up
        run_once(app, environ, max(requests // 10, 10))
    gc.collect()
    gc.disable()
    try:
        for round_index in range(rounds):
            names = list(apps)
            if round_index % 2:
                names.reverse()
            for name in names:
                samples[name].append(run_once(apps[name], environ, requests))
    finally:
        gc.enable()
    return {name: statistics.median(values) for name, values in samples.items()}


def _run_only(name: str, requests: int) -> int:
    """Serve *requests* requests of one configuration, untimed (under valgrind)."""
    app = CONFIGURATIONS[name][1]()
    try:
        run_once(app, EnvironBuilder(path="/hello").get_environ(), requests)
    finally:
        for close in RECEIVERS:
            close()
    return 0


def instructions(
    names: list[str],
    low: int = 300,
    high: int = 1800,
    script: str = __file__,
    describe: t.Callable[[str], str] | None = None,
    layouts: int = 3,
) -> int:
    """Instructions per request of each configuration, counted by valgrind's callgrind:
    the difference between a run of *high* and one of *low* requests, so start-up cancels
    out. Unlike wall time this does not move with the load of a shared machine (it does
    not count the kernel's side of a send, nor cache effects). ``PYTHONHASHSEED=0``
    makes the interpreter's own start-up repeatable.

    One run is repeatable to the instruction, but where objects land in memory still
    moves a configuration by up to about 1 % (see :mod:`benchmarks.layout`). So each
    configuration is counted in *layouts* memory layouts (the same ones for every
    configuration), and the median is printed with the spread (largest minus
    smallest).

    Threads are counted apart (``--separate-threads``): the last columns are the main
    thread's alone, the request path. Background threads (the statsd sender) work once
    per flush interval; under valgrind an interval would hold about a hundredth of the
    requests it holds at full speed, so the children run with :data:`TIME_SCALE_KEY`
    set and the flush interval stretched to match.

    :param script: the benchmark script, run as ``script --run-only NAME REQUESTS``.
    :param describe: the one-line description of a configuration.
    :param layouts: how many memory layouts to count each configuration in."""
    import concurrent.futures
    import os
    import re
    import shutil
    import subprocess
    import tempfile

    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("--instructions needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2

    def count(name: str, requests: int, index: int) -> tuple[int, int]:
        """All instructions of the run, and those of its main (request) thread."""
        env = {
            **os.environ,
            "PYTHONHASHSEED": "0",
            layout.ENVIRON_KEY: str(index),
            TIME_SCALE_KEY: str(VALGRIND_SLOWDOWN),
        }
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "callgrind.out")
            command = [valgrind, "--tool=callgrind", "--separate-threads=yes",
                       f"--callgrind-out-file={out}", sys.executable, script,
                       "--run-only", name, str(requests)]  # fmt: skip
            output = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
            match = re.search(r"Collected : (\d+)", output.stderr)
            if match is None:
                raise RuntimeError(f"no instruction count for {name}:\n{output.stderr[-2000:]}")
            with open(out + "-01") as main_thread:
                totals = re.search(r"^totals: (\d+)", main_thread.read(), re.M)
            if totals is None:
                raise RuntimeError(f"no main-thread count for {name}")
        return int(match.group(1)), int(totals.group(1))

    jobs = [(name, n, index) for name in names for index in range(layouts) for n in (low, high)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        counts = dict(zip(jobs, pool.map(lambda job: count(*job), jobs), strict=True))
    samples = {
        name: [
            (counts[(name, high, index)][0] - counts[(name, low, index)][0]) / (high - low)
            for index in range(layouts)
        ]
        for name in names
    }
    per_request = {name: statistics.median(values) for name, values in samples.items()}
    request_thread = {
        name: statistics.median(
            (counts[(name, high, index)][1] - counts[(name, low, index)][1]) / (high - low)
            for index in range(layouts)
        )
        for name in names
    }
    base = per_request["bare"]
    floor = per_request.get("floor")
    width = max(14, *(len(name) for name in names))
    print(
        f"{'configuration':<{width}} {'instructions':>13} {'spread':>7} {'vs bare':>8} "
        f"{'overhead':>10}"
        + (f" {'vs floor':>10}" if floor is not None else "")
        + f" {'request thread':>16}  description"
    )
    for name, value in per_request.items():
        description = describe(name) if describe else CONFIGURATIONS[name][0]
        spread = max(samples[name]) - min(samples[name])
        gap = f" {(value - floor) / 1000:>+8.1f} k" if floor is not None else ""
        own = request_thread[name]
        print(
            f"{name:<{width}} {value / 1000:>11.1f} k {spread / 1000:>5.1f} k "
            f"{value / base:>7.3f}x {(value - base) / 1000:>+8.1f} k{gap} "
            f"{own / 1000:>7.1f} k {own / request_thread['bare']:.3f}x  {description}"
        )
    print(
        f"median of {layouts} memory layout(s); {high} minus {low} requests each; "
        "spread: largest minus smallest; request thread: the main thread alone (without "
        f"background threads such as the statsd sender, whose flush interval is stretched "
        f"{VALGRIND_SLOWDOWN}x to cover as many requests as at full speed)"
    )
    return 0


def check(apps: dict[str, WSGIApplication]) -> int:
    """Every configuration must answer the trivial view exactly as bare Flask does, so
    that the ratios compare the same work."""
    from werkzeug.test import Client

    failed = 0
    for name, app in apps.items():
        response = Client(app).get("/hello")
        ok = response.status_code == 200 and response.get_data() == b"Hello, World!"
        print(f"{name:<14} {'ok' if ok else 'DIFFERENT'} {response.status}")
        failed += not ok
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--only", nargs="*", help="configuration names (bare is always in)")
    parser.add_argument(
        "--check", action="store_true", help="no timing: check each app serves the same view"
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per request under valgrind instead of timing (deterministic)",
    )
    parser.add_argument(
        "--layouts", type=int, default=3, help="with --instructions: memory layouts per figure"
    )
    parser.add_argument("--run-only", nargs=2, metavar=("NAME", "REQUESTS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_only:
        return _run_only(args.run_only[0], int(args.run_only[1]))
    names = ["bare", *(n for n in CONFIGURATIONS if n != "bare")]
    if args.only:
        unknown = set(args.only) - set(CONFIGURATIONS)
        if unknown:
            parser.error(f"unknown configuration(s): {', '.join(sorted(unknown))}")
        names = ["bare", *(n for n in names if n in args.only and n != "bare")]
    if args.instructions:
        return instructions(names, layouts=args.layouts)
    apps: dict[str, WSGIApplication] = {}
    for name in names:
        description, factory = CONFIGURATIONS[name]
        try:
            apps[name] = factory()
        except ImportError as exc:
            print(f"skipped {name}: {exc}", file=sys.stderr)
    try:
        if args.check:
            return check(apps)
        results = measure(apps, args.rounds, args.requests)
    finally:
        for close in RECEIVERS:
            close()
    base = results["bare"]
    print(f"{'configuration':<14} {'per request':>12} {'vs bare':>8}  description")
    for name, seconds in results.items():
        description = CONFIGURATIONS[name][0]
        print(f"{name:<14} {seconds * 1e6:>9.1f} µs {seconds / base:>7.3f}x  {description}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
