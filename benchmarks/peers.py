"""Flask-Observe against its peers, in-process and over HTTP, in one run.

Every configuration of :mod:`benchmarks.apps` runs in its own process (sentry-sdk and
OpenTelemetry instrument process-wide). In-process, the parent drives the children in
interleaved rounds, each child calling its app's WSGI callable; the figure is the median
per-request time, printed as a ratio to bare Flask. Over HTTP, each configuration is
served by gunicorn (one sync worker) and loaded by ``wrk`` for a few seconds per round,
rounds interleaved; the figures are the medians of requests/s, p50 and p99.

    python benchmarks/peers.py                       # both modes, all configurations
    python benchmarks/peers.py --mode inprocess --rounds 30
    python benchmarks/peers.py --mode http --seconds 3 --only bare observe_production
    python benchmarks/peers.py --mode instructions   # valgrind, deterministic

``floor`` is the least a timing middleware can do (``overhead.FloorMiddleware``); the
instruction counts show each configuration's gap to it.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import typing as t
from pathlib import Path

if t.TYPE_CHECKING:
    from multiprocessing.connection import Connection

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import layout  # noqa: E402

layout.shift()  # before Flask is imported (see benchmarks/layout.py)

from benchmarks import apps  # noqa: E402
from benchmarks.overhead import instructions  # noqa: E402
from benchmarks.overhead import run_once  # noqa: E402


def _child(name: str, connection: Connection) -> None:
    """Build one configuration's app and time batches of requests on command."""
    from werkzeug.test import EnvironBuilder

    app = apps.build(name)
    environ = EnvironBuilder(path="/hello").get_environ()
    connection.send("ready")
    while True:
        command = connection.recv()
        if command is None:
            break
        connection.send(run_once(app, environ, int(command)))
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
        for _name, (_process, connection) in workers.items():
            assert connection.recv() == "ready"
        for _name, (_process, connection) in workers.items():  # warm up
            connection.send(max(requests // 5, 10))
            connection.recv()
        samples: dict[str, list[float]] = {name: [] for name in names}
        for round_index in range(rounds):
            order = names if round_index % 2 == 0 else names[::-1]
            for name in order:
                connection = workers[name][1]
                connection.send(requests)
                samples[name].append(connection.recv())
        return {name: statistics.median(values) for name, values in samples.items()}
    finally:
        for process, connection in workers.values():
            try:
                connection.send(None)
            except OSError:
                pass
            process.join(timeout=5)
            connection.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"gunicorn did not listen on port {port}")


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s, p50 and p99 (seconds) from ``wrk --latency`` output."""
    result: dict[str, float] = {}
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not match:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    result["rps"] = float(match.group(1))
    for label, key in (("50%", "p50"), ("99%", "p99")):
        found = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        if not found:
            raise RuntimeError(f"no {label} latency in wrk output:\n{output}")
        result[key] = float(found.group(1)) * _UNITS[found.group(2)]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    result["errors"] = float(errors.group(1)) if errors else 0.0
    return result


def over_http(
    names: list[str], rounds: int, seconds: int, connections: int
) -> dict[str, dict[str, float]]:
    """Median requests/s, p50 and p99 of each configuration under gunicorn + wrk."""
    wrk = shutil.which("wrk")
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if wrk is None or not gunicorn.exists():
        raise RuntimeError("over HTTP needs wrk and gunicorn: run `make services`")
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        for name in names:
            port = _free_port()
            process = subprocess.Popen(
                [str(gunicorn), "--workers", "1", "--bind", f"127.0.0.1:{port}",
                 "--log-level", "warning", f'benchmarks.apps:build("{name}")'],
                cwd=ROOT, start_new_session=True,
            )  # fmt: skip
            servers[name] = (process, port)
        for _name, (_process, port) in servers.items():
            _wait_for(port, time.monotonic() + 30)
        samples: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        for round_index in range(rounds):
            order = names if round_index % 2 == 0 else names[::-1]
            for name in order:
                port = servers[name][1]
                output = subprocess.run(
                    [wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency",
                     f"http://127.0.0.1:{port}/hello"],
                    capture_output=True, text=True, check=True, timeout=seconds + 30,
                ).stdout  # fmt: skip
                samples[name].append(parse_wrk(output))
        return {
            name: {key: statistics.median(s[key] for s in values) for key in values[0]}
            for name, values in samples.items()
        }
    finally:
        for process, _port in servers.values():
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            process.wait(timeout=10)


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
    parser.add_argument("--run-only", nargs=2, metavar=("NAME", "REQUESTS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_only:
        from werkzeug.test import EnvironBuilder

        app = apps.build(args.run_only[0])
        run_once(app, EnvironBuilder(path="/hello").get_environ(), int(args.run_only[1]))
        return 0
    names = apps.names()
    if args.only:
        unknown = set(args.only) - set(names)
        if unknown:
            parser.error(f"unknown configuration(s): {', '.join(sorted(unknown))}")
        names = [n for n in names if n == "bare" or n in args.only]
    if args.mode == "instructions":
        print("In-process (WSGI callable), instructions per request (valgrind):")
        return instructions(names, script=__file__, describe=apps.describe, layouts=args.layouts)
    if args.mode in ("inprocess", "both"):
        results = in_process(names, args.rounds, args.requests)
        base = results["bare"]
        print("In-process (WSGI callable), median per request:")
        print(f"{'configuration':<20} {'per request':>12} {'vs bare':>9} {'overhead':>10}")
        for name, seconds in results.items():
            print(
                f"{name:<20} {seconds * 1e6:>9.1f} µs {seconds / base:>8.3f}x "
                f"{(seconds - base) * 1e6:>+7.1f} µs  {apps.describe(name)}"
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
                + (f"  ({figures['errors']:.0f} non-2xx)" if figures["errors"] else "")
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
