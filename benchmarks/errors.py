"""Cost of an unhandled error on the request thread, against bare Flask's own 500, in
one run: the same raising view in each configuration.

    python -m benchmarks.errors                  # wall clock, in-process, interleaved
    python -m benchmarks.errors --instructions   # valgrind: request-thread instructions
    python -m benchmarks.errors --load           # gunicorn + wrk, 1 request in 10 raises

Configurations (``PROPAGATE_EXCEPTIONS`` off everywhere, so every one answers 500 and
Flask logs the traceback, into a null stream):

``bare``
    bare Flask's own 500: the reference, ``1.000x``.
``observe``
    Flask-Observe (timing headers, problem+json errors), no Sentry.
``sentry``
    Flask-Observe with Sentry armed (``OBSERVE_SENTRY_DSN`` to a local receiver in
    another process), the default throttle: one error repeated, as in a storm, so after
    the first ten events every repeat is counted and suppressed.
``sentry-each``
    the same with the throttle off (``OBSERVE_SENTRY_ERROR_RATE = None``): every error
    is noted and queued for the capture worker, whose building competes for the GIL
    (wall clock) but is not counted in ``--instructions``; the queue drops the oldest
    events it cannot keep up with.
``sentry-inline``
    in-request capture, for comparison: each event built and captured in the request
    thread (``benchmarks/sentry_baseline.py``), throttle off.
``sentry_flask``
    bare Flask with sentry-sdk's stock integrations (``FlaskIntegration``), the same
    receiver.

Wall clock: each configuration's WSGI callable is called in-process; rounds are
interleaved, the figure is the median per request, and between rounds (untimed) each
configuration's pending events are built and sent so that no background work leaks into
another configuration's round.

Instructions: each configuration runs in its own process under valgrind's callgrind with
``--separate-threads=yes``, which counts each thread apart; the figure is the main
thread's count (thread 1, the one serving the requests), as the difference between a run
of *high* and one of *low* requests so that start-up cancels out. The capture worker and
sentry-sdk's transport run on other threads and are left out: that is the point.

Load (``--load``): gunicorn (4 sync workers) serving a small app, wrk with 8 connections,
one request in ten raising the same error; requests/s with Sentry armed against the same
app with Sentry off (and bare Flask, and in-request capture), then 50 distinct errors, each of
which must reach the receiver.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import typing as t

from flask import Flask

from benchmarks import harness

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

#: The configurations, in table order, all asked for the raising view.
CONFIGURATIONS = harness.Registry("benchmarks.errors", "/order")

#: Called between timed rounds (untimed): background work of a configuration finished.
SETTLERS: dict[str, t.Callable[[], object]] = {}


class OrderError(Exception):
    """The error every configuration's view raises."""


def _price(order: dict[str, t.Any], catalogue: dict[str, float]) -> float:
    total = 0.0
    for line in order["lines"]:
        total += catalogue[line["sku"]] * line["quantity"]
    if total > order["limit"]:
        raise OrderError(f"order {order['id']} exceeds its limit: {total:.2f}")
    return total


def raising_app(**config: object) -> Flask:
    """A Flask app whose ``/order`` view raises two frames down, with a few locals, and
    ``/order/<n>`` raising one of 50 distinct errors. No SECRET_KEY (no session cost)."""
    app = Flask("bench_errors")
    app.config.update(PROPAGATE_EXCEPTIONS=False, **config)
    catalogue = {"tea": 3.5, "pot": 24.0}

    @app.get("/order")
    def order() -> str:
        data: dict[str, t.Any] = {"id": 7, "limit": 20.0, "lines": [{"sku": "tea", "quantity": 2}]}
        data["lines"].append({"sku": "pot", "quantity": 1})
        return str(_price(data, catalogue))

    @app.get("/order/<int:number>")
    def numbered(number: int) -> str:
        raise DISTINCT[number % len(DISTINCT)](f"distinct error {number}")

    @app.get("/ok")
    def ok() -> str:
        return "ok"

    return app


#: 50 exception classes: 50 fingerprints for the throttle, 50 issues in Sentry.
DISTINCT: list[type[Exception]] = [
    type(f"DistinctError{index:02d}", (RuntimeError,), {"__module__": __name__})
    for index in range(50)
]


# --- a local Sentry receiver in its own process ---------------------------------------

RECEIVER_SCRIPT = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: one connection per envelope. With keep-alive, the headers and the body
    # leave in two segments and the client's delayed ACK stalls each reply by 40 ms.
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""

_receiver: list[str] = []


def receiver_dsn() -> str:
    """The DSN of a Sentry stand-in in its own process (started once per run): its work
    is not this process's."""
    if not _receiver:
        port = harness.serving_process(RECEIVER_SCRIPT)
        _receiver.append(f"http://public@127.0.0.1:{port}/1")
    return _receiver[0]


# --- configurations --------------------------------------------------------------------


@CONFIGURATIONS.add("bare", "bare Flask's own 500")
def bare() -> WSGIApplication:
    return raising_app()


@CONFIGURATIONS.add("observe", "Flask-Observe, problem+json errors, no Sentry")
def observe() -> WSGIApplication:
    from flask_observe import Observe

    app = raising_app()
    Observe(app)
    return app


def _observe_sentry(name: str, **config: object) -> Flask:
    import sentry_sdk

    from flask_observe import Observe
    from flask_observe import sentry

    app = raising_app(OBSERVE_SENTRY_DSN=receiver_dsn(), **config)
    Observe(app)
    SETTLERS[name] = lambda: sentry.flush(timeout=30)
    harness.CLOSERS.append(lambda: sentry_sdk.get_client().close(timeout=2))
    return app


@CONFIGURATIONS.add("sentry", "Flask-Observe + Sentry armed, default throttle, one error repeated")
def observe_sentry() -> WSGIApplication:
    return _observe_sentry("sentry")


@CONFIGURATIONS.add("sentry-each", "the same, throttle off: every error queued for the worker")
def observe_sentry_each() -> WSGIApplication:
    return _observe_sentry("sentry-each", OBSERVE_SENTRY_ERROR_RATE=None)


@CONFIGURATIONS.add("sentry-inline", "the 0.1 path: every event built in the request thread")
def observe_sentry_inline() -> WSGIApplication:
    from benchmarks.sentry_baseline import build_in_request

    app = _observe_sentry("sentry-inline", OBSERVE_SENTRY_ERROR_RATE=None)
    build_in_request(app)
    return app


@CONFIGURATIONS.add("sentry_flask", "bare Flask + sentry-sdk stock FlaskIntegration")
def sentry_flask() -> WSGIApplication:
    """Bare Flask with sentry-sdk's default and auto-enabling integrations, tracing off,
    confined to its own app (see :func:`benchmarks.harness.confined_sentry_flask`)."""
    wsgi, client = harness.confined_sentry_flask(raising_app(), receiver_dsn())
    SETTLERS["sentry_flask"] = lambda: client.flush(timeout=30)
    return wsgi


# --- in-process timing ------------------------------------------------------------------


def measure(apps: dict[str, WSGIApplication], rounds: int, requests: int) -> dict[str, float]:
    """Median seconds per request of each app over interleaved rounds.

    The collector stays on: every error leaves reference cycles (exception, traceback,
    frames), and collecting them is part of an error's cost. Each round starts from a
    full collection, so that a round pays for its own garbage only, and a few untimed
    requests, so that it does not pay for the caches the configuration before it (say,
    sentry-sdk building events) left cold.
    """
    environ = CONFIGURATIONS.environ()
    samples: dict[str, list[float]] = {name: [] for name in apps}
    for name, app in apps.items():  # warm up: also past the throttle's first events
        harness.run_once(app, environ, max(requests // 5, 20))
        settle(name)
    for name in harness.interleaved(list(apps), rounds):
        harness.run_once(apps[name], environ, max(requests // 10, 5))
        samples[name].append(harness.run_once(apps[name], environ, requests))
        settle(name)
    return {name: statistics.median(values) for name, values in samples.items()}


def settle(name: str) -> None:
    """Untimed, after a round: the configuration's events built and sent, its garbage
    collected."""
    settler = SETTLERS.get(name)
    if settler is not None:
        settler()
    gc.collect()


# --- load (gunicorn + wrk) ---------------------------------------------------------------


def load_app(mode: str = "sentry-off") -> Flask:
    """The app gunicorn serves in ``--load`` (``benchmarks.errors:load_app("...")``):
    ``bare``, ``sentry-off``, ``sentry`` (the DSN from ``BENCH_SENTRY_DSN``) or
    ``sentry-inline`` (in-request capture). Flask logs each traceback to gunicorn's error log,
    as in production."""
    from flask_observe import Observe

    if mode == "bare":
        app = raising_app()
    else:
        config: dict[str, object] = {}
        if mode != "sentry-off":
            config["OBSERVE_SENTRY_DSN"] = os.environ["BENCH_SENTRY_DSN"]
        if mode == "sentry-inline":
            config["OBSERVE_SENTRY_ERROR_RATE"] = None
        app = raising_app(**config)
        Observe(app)
        if mode == "sentry-inline":
            from benchmarks.sentry_baseline import build_in_request

            build_in_request(app)
    return app


#: The ``--load`` modes, in table order.
LOAD_MODES = ("bare", "sentry-off", "sentry", "sentry-inline")


def load(seconds: int, rounds: int = 1) -> dict[str, t.Any]:
    """Requests/s of each mode, one request in ten raising the same error; then 50
    distinct errors against the Sentry-armed app, counted at the receiver.

    Modes run one after the other in each round (the order reversed every other round);
    each mode's ratio to ``sentry-off`` is taken within a round, where the machine's
    load changed least, and the median over rounds is reported.
    """
    import urllib.error
    import urllib.request

    from tests.support.sentry import EnvelopeReceiver

    results: dict[str, list[harness.WrkResult]] = {mode: [] for mode in LOAD_MODES}
    script = harness.raise_one_in_ten("/ok", "/order")
    with EnvelopeReceiver() as receiver:
        os.environ["BENCH_SENTRY_DSN"] = receiver.dsn
        try:
            for mode in harness.interleaved(LOAD_MODES, rounds):
                app = f'benchmarks.errors:load_app("{mode}")'
                with harness.gunicorn(app, workers=4, preload=True, warm_up="/ok") as url:
                    results[mode].append(harness.run_wrk(f"{url}/", seconds, script=script))
            before = len(receiver.events)
            app = 'benchmarks.errors:load_app("sentry")'
            with harness.gunicorn(app, workers=4, preload=True, warm_up="/ok") as url:
                answered: dict[str, str] = {}
                for number in range(len(DISTINCT)):
                    try:
                        urllib.request.urlopen(f"{url}/order/{number}", timeout=10).close()
                    except urllib.error.HTTPError as error:
                        answered[error.headers["X-Sentry-Event-Id"]] = f"DistinctError{number:02d}"
                        error.close()
                received = receiver.wait_for_events(before + len(answered), timeout=20)
        finally:
            del os.environ["BENCH_SENTRY_DSN"]
    distinct = {e["event_id"]: e["exception"]["values"][-1]["type"] for e in received[before:]}
    arrived = sum(1 for event_id, kind in answered.items() if distinct.get(event_id) == kind)
    median = {
        mode: sorted(values, key=lambda r: r.rps)[len(values) // 2]
        for mode, values in results.items()
    }
    ratio = {
        mode: statistics.median(
            r.rps / off.rps for r, off in zip(values, results["sentry-off"], strict=True)
        )
        for mode, values in results.items()
    }
    failed = {mode: sum(r.socket_errors for r in values) for mode, values in results.items()}
    return {
        **median,
        "ratio": ratio,
        "failed": failed,
        "distinct_sent": len(answered),
        "distinct_arrived": arrived,
    }


# --- main -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--only", nargs="*", help="configuration names (bare is always in)")
    parser.add_argument("--check", action="store_true", help="each configuration answers 500")
    parser.add_argument("--instructions", action="store_true", help="valgrind, main thread")
    parser.add_argument("--low", type=int, default=50, help="--instructions: low request count")
    parser.add_argument("--high", type=int, default=250, help="--instructions: high count")
    parser.add_argument("--load", action="store_true", help="gunicorn + wrk")
    parser.add_argument("--seconds", type=int, default=10, help="--load: per phase")
    parser.add_argument("--load-rounds", type=int, default=1, help="--load: best of rounds")
    args = parser.parse_args(argv)
    if args.load:
        return print_load(load(args.seconds, args.load_rounds))
    names = CONFIGURATIONS.select(parser, args.only, CONFIGURATIONS.names())
    if args.instructions:
        counts = harness.instructions(CONFIGURATIONS, names, args.low, args.high, layouts=1)
        request_thread = {name: c.request_thread[0] for name, c in counts.items()}
        return print_table(request_thread, "instructions", lambda v: f"{v / 1e6:>9.2f} M")
    try:
        apps = CONFIGURATIONS.build_all(names)
        if args.check:
            return CONFIGURATIONS.check(apps, 500, None)
        results = measure(apps, args.rounds, args.requests)
    finally:
        harness.close_all()
    return print_table(results, "per request", lambda v: f"{v * 1e6:>8.1f} µs")


def print_table(values: dict[str, float], label: str, show: t.Callable[[float], str]) -> int:
    base = values["bare"]
    width = max(14, *(len(name) for name in values))
    print(f"{'configuration':<{width}} {label:>12} {'vs bare 500':>11}  description")
    for name, value in values.items():
        description = CONFIGURATIONS.describe(name)
        print(f"{name:<{width}} {show(value):>12} {value / base:>10.3f}x  {description}")
    return 0


def print_load(result: dict[str, t.Any]) -> int:
    print("gunicorn, 4 sync workers, --preload, wrk -c8, one request in ten raises")
    print("(median run; ratio: median of each round's ratio to sentry-off):")
    print(f"  {'mode':<14} {'req/s':>8} {'vs Sentry off':>13} {'p99':>10} {'5xx':>6} {'failed':>6}")
    for mode in LOAD_MODES:
        r = result[mode]
        print(
            f"  {mode:<14} {r.rps:>8.0f} {result['ratio'][mode]:>12.3f}x {r.p99 * 1e3:>7.2f} ms"
            f" {r.non_2xx:>6} {result['failed'][mode]:>6}"
        )
    print(
        f"  50 distinct errors: {result['distinct_sent']} answered with an event id, "
        f"{result['distinct_arrived']} of them arrived at the receiver"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
