"""Flask-Observe against its peers, in-process and over HTTP, in one run.

Every configuration runs in its own process (sentry-sdk and OpenTelemetry instrument
process-wide). In-process, the parent drives the children in interleaved rounds, each
child calling its app's WSGI callable; the figure is the median per-request time,
printed as a ratio to bare Flask. Over HTTP, each configuration is served by gunicorn
(one sync worker) and loaded by ``wrk`` for a few seconds per round, rounds
interleaved; the figures are the medians of requests/s, p50 and p99.

    python -m benchmarks.peers                       # both modes, all configurations
    python -m benchmarks.peers --mode inprocess --rounds 30
    python -m benchmarks.peers --mode http --seconds 3 --only bare production
    python -m benchmarks.peers --mode instructions   # valgrind, deterministic

``floor`` is the least a timing middleware can do (``harness.FloorMiddleware``); the
instruction counts show each configuration's gap to it.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import statistics
import typing as t

from benchmarks import harness

if t.TYPE_CHECKING:
    from multiprocessing.connection import Connection

#: The configurations compared, in table order, each in a process of its own.
NAMES = (
    "bare", "floor", "timing", "production", "production-floor", "prometheus", "sentry_flask",
    "otel", "debugtoolbar",
)  # fmt: skip


def _child(name: str, connection: Connection) -> None:
    """Build one configuration's app and time batches of requests on command."""
    app = harness.build(name)
    environ = harness.CONFIGURATIONS.environ()
    connection.send("ready")
    try:
        while (command := connection.recv()) is not None:
            connection.send(harness.run_once(app, environ, int(command)))
    finally:
        harness.close_all()
        connection.close()


def in_process(names: list[str], rounds: int, requests: int) -> dict[str, float]:
    """Median seconds per request of each configuration, each in its own process."""
    context = multiprocessing.get_context("spawn")
    workers: dict[str, tuple[t.Any, Connection]] = {}
    try:
        for name in names:
            parent, child = context.Pipe()
            process = context.Process(target=_child, args=(name, child), daemon=True)
            process.start()
            workers[name] = (process, parent)
        for _process, connection in workers.values():
            assert connection.recv() == "ready"
        for _process, connection in workers.values():  # warm up
            connection.send(max(requests // 5, 10))
            connection.recv()
        samples: dict[str, list[float]] = {name: [] for name in names}
        for name in harness.interleaved(names, rounds):
            connection = workers[name][1]
            connection.send(requests)
            samples[name].append(connection.recv())
        return {name: statistics.median(values) for name, values in samples.items()}
    finally:
        for process, connection in workers.values():
            with contextlib.suppress(OSError):
                connection.send(None)
            process.join(timeout=5)
            connection.close()


def over_http(
    names: list[str], rounds: int, seconds: int, connections: int
) -> dict[str, dict[str, float]]:
    """Median requests/s, p50 and p99 of each configuration under gunicorn + wrk."""
    with contextlib.ExitStack() as servers:
        urls = {
            name: servers.enter_context(harness.gunicorn(f'benchmarks.harness:build("{name}")'))
            for name in names
        }
        samples: dict[str, list[harness.WrkResult]] = {name: [] for name in names}
        for name in harness.interleaved(names, rounds):
            result = harness.run_wrk(
                f"{urls[name]}/hello", seconds, connections=connections, threads=1
            )
            samples[name].append(result)
    return {
        name: {
            key: statistics.median(getattr(result, key) for result in results)
            for key in ("rps", "p50", "p99", "non_2xx")
        }
        for name, results in samples.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--mode", choices=("inprocess", "http", "both", "instructions"), default="both"
    )
    parser.add_argument("--only", nargs="*", help="configurations (bare is always in)")
    parser.add_argument("--rounds", type=int, default=20, help="in-process rounds")
    parser.add_argument("--requests", type=int, default=1000, help="requests per round")
    parser.add_argument("--http-rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=3, help="wrk seconds per round")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--layouts", type=int, default=3, help="instructions: memory layouts")
    args = parser.parse_args(argv)
    registry = harness.CONFIGURATIONS
    names = registry.select(parser, args.only, NAMES)
    if args.mode == "instructions":
        print("In-process (WSGI callable), instructions per request (valgrind):")
        counts = harness.instructions(registry, names, 300, 1800, args.layouts)
        return harness.print_instructions(registry, counts, 300, 1800)
    if args.mode in ("inprocess", "both"):
        results = in_process(names, args.rounds, args.requests)
        base = results["bare"]
        print("In-process (WSGI callable), median per request:")
        print(f"{'configuration':<20} {'per request':>12} {'vs bare':>9} {'overhead':>10}")
        for name, seconds in results.items():
            print(
                f"{name:<20} {seconds * 1e6:>9.1f} µs {seconds / base:>8.3f}x "
                f"{(seconds - base) * 1e6:>+7.1f} µs  {registry.describe(name)}"
            )
        print()
    if args.mode in ("http", "both"):
        http = over_http(names, args.http_rounds, args.seconds, args.connections)
        base_rps = http["bare"]["rps"]
        print(f"Over HTTP (gunicorn 1 sync worker, wrk -c{args.connections}), medians:")
        print(f"{'configuration':<20} {'req/s':>9} {'vs bare':>8} {'p50':>9} {'p99':>9}")
        for name, figures in http.items():
            print(
                f"{name:<20} {figures['rps']:>9.0f} {figures['rps'] / base_rps:>7.3f}x "
                f"{figures['p50'] * 1e3:>6.2f} ms {figures['p99'] * 1e3:>6.2f} ms"
                + (f"  ({figures['non_2xx']:.0f} non-2xx)" if figures["non_2xx"] else "")
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
