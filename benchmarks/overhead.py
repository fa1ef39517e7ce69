"""Per-request cost of Flask-Observe configurations against bare Flask, in one run.

Each configuration is a small app with one trivial view, called through its WSGI
callable in-process (no HTTP). Rounds are interleaved so that machine noise hits every
configuration alike; the figure per configuration is the median per-request time over
the rounds, printed with its ratio to bare Flask.

    python benchmarks/overhead.py                 # all configurations
    python benchmarks/overhead.py --only bare timing
    python benchmarks/overhead.py --rounds 30 --requests 2000

Configurations that need an optional package that is missing are reported and skipped.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import typing as t

from flask import Flask
from werkzeug.test import EnvironBuilder

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
    """A Flask app with one trivial view and no SECRET_KEY (no session cost)."""
    app = Flask("bench")
    app.config.update(config)

    @app.get("/hello")
    def hello() -> str:
        return "Hello, World!"

    return app


@configuration("bare", "bare Flask")
def bare() -> WSGIApplication:
    return trivial_app()


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


# --- errors configurations (Errors issue): add below this line ---


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--only", nargs="*", help="configuration names (bare is always in)")
    args = parser.parse_args(argv)
    names = ["bare", *(n for n in CONFIGURATIONS if n != "bare")]
    if args.only:
        unknown = set(args.only) - set(CONFIGURATIONS)
        if unknown:
            parser.error(f"unknown configuration(s): {', '.join(sorted(unknown))}")
        names = ["bare", *(n for n in names if n in args.only and n != "bare")]
    apps: dict[str, WSGIApplication] = {}
    for name in names:
        description, factory = CONFIGURATIONS[name]
        try:
            apps[name] = factory()
        except ImportError as exc:
            print(f"skipped {name}: {exc}", file=sys.stderr)
    results = measure(apps, args.rounds, args.requests)
    base = results["bare"]
    print(f"{'configuration':<14} {'per request':>12} {'vs bare':>8}  description")
    for name, seconds in results.items():
        description = CONFIGURATIONS[name][0]
        print(f"{name:<14} {seconds * 1e6:>9.1f} µs {seconds / base:>7.3f}x  {description}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
