"""Load and faults on a real server: gunicorn serving the demo, wrk loading it, a real
statsd daemon and a real Sentry envelope receiver, all on loopback.

Each scenario runs for a fixed time and stops by itself; the whole run is bounded.

    python -m benchmarks.load               # the long run (10 s per phase)
    python -m benchmarks.load --seconds 2   # the short run of tests/integration/test_load.py

Scenarios (each prints bare Flask vs Flask-Observe where a comparison means something):

``statsd-up``
    4 sync workers, with and without ``--preload``: the daemon's request counter must
    equal wrk's count (wrk stops counting at its deadline, so up to one in-flight
    request per connection may be counted by the server only).
``statsd-restart``
    the daemon is stopped a third into the run and started again on the same port
    two thirds in: no failed request, and the new daemon receives metrics.
``sentry``
    one request in ten raises; the receiver is up, then a closed port, then a server
    that accepts and never answers: no request fails, p50/p99 are compared with the
    receiver up, and with it up each worker sends the first events of the repeated
    error (``OBSERVE_SENTRY_ERROR_RATE``: 10 a minute) and counts the rest, with no
    duplicate. ``python -m benchmarks.errors --load`` measures the error path itself.
``threads``
    ``--threads 8`` (gthread) and 50 connections, metrics to a plain UDP socket: every
    datagram parses into whole lines and the request count matches.

The statsd daemon is the npm ``statsd`` package installed by ``make services``
(``.cache/statsd``), configured with a long flush interval so that its management
``counters`` command returns the totals of the run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import typing as t
from pathlib import Path

from benchmarks import harness

if t.TYPE_CHECKING:
    from collections.abc import Iterator

STATSD_JS = harness.ROOT / ".cache" / "statsd" / "node_modules" / "statsd" / "stats.js"
PREFIX = "load"
#: The demo's list endpoint, as the statsd daemon names its response counter.
ITEMS_COUNTER = f"{PREFIX}.response.api.list_items.GET.200"
#: One request in ten to the demo's raising route.
RAISE_SHARE_LUA = harness.raise_one_in_ten("/api/items", "/api/boom")


# --- the statsd daemon ---------------------------------------------------------------


class StatsdDaemon:
    """The real statsd daemon on loopback, with its management port for the totals."""

    def __init__(self, port: int | None = None) -> None:
        if not STATSD_JS.exists() or shutil.which("node") is None:
            raise RuntimeError(f"statsd daemon missing ({STATSD_JS}): run `make services`")
        self.port = port or harness.free_port(socket.SOCK_DGRAM)
        self.mgmt_port = harness.free_port()
        self._dir = tempfile.TemporaryDirectory()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> StatsdDaemon:
        config = Path(self._dir.name) / "config.js"
        settings = {
            "port": self.port,
            "address": "127.0.0.1",
            "mgmt_address": "127.0.0.1",
            "mgmt_port": self.mgmt_port,
            "flushInterval": 3_600_000,  # never during a run: counters hold the totals
            "backends": [],
        }
        config.write_text(f"({json.dumps(settings)})\n")
        self.process = subprocess.Popen(
            ["node", str(STATSD_JS), str(config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=STATSD_JS.parent,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while True:
            try:
                self.command("health")
                return self
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the statsd daemon did not start") from None
                time.sleep(0.05)

    def command(self, name: str) -> str:
        with socket.create_connection(("127.0.0.1", self.mgmt_port), timeout=5) as sock:
            sock.sendall(name.encode() + b"\n")
            data = b""
            while b"END" not in data and not data.startswith(b"health"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
                if name == "health" and b"\n" in data:
                    break
            sock.sendall(b"quit\n")
        return data.decode()

    def counters(self) -> dict[str, float]:
        text = self.command("counters")
        pairs = re.findall(r"^\s*'?([^':\s]+)'?: ([\d.e+-]+),?$", text, re.M)
        return {key: float(value) for key, value in pairs}

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None

    def close(self) -> None:
        self.stop()
        self._dir.cleanup()


# --- gunicorn --------------------------------------------------------------------------


@contextlib.contextmanager
def gunicorn(
    config: dict[str, object],
    *,
    workers: int = 4,
    preload: bool = False,
    threads: int = 1,
    factory: str = "create_app()",
    extra_args: tuple[str, ...] = (),
) -> Iterator[str]:
    """Serve the demo under gunicorn (:func:`benchmarks.harness.gunicorn`); yields its
    base URL. Config goes through ``FLASK_*`` environment variables (the demo reads them
    with ``from_prefixed_env``)."""
    env = {f"FLASK_{key}": json.dumps(value) for key, value in config.items()}
    with harness.gunicorn(
        f"demo_app:{factory}", workers=workers, threads=threads, preload=preload, env=env,
        extra_args=extra_args, warm_up="/health",
    ) as url:  # fmt: skip
        yield url


def wait_for(predicate: t.Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


# --- scenarios -----------------------------------------------------------------------


def statsd_base(port: int) -> dict[str, object]:
    """The demo's statsd settings: to *port*, flushed every 0.2 s."""
    return harness.statsd_config(
        port, OBSERVE_STATSD_PREFIX=PREFIX, OBSERVE_STATSD_FLUSH_INTERVAL=0.2
    )


def statsd_up(seconds: int, preload: bool) -> dict[str, t.Any]:
    daemon = StatsdDaemon().start()
    try:
        with gunicorn(statsd_base(daemon.port), preload=preload) as url:
            result = harness.run_wrk(f"{url}/api/items", seconds)
        wait_for(lambda: daemon.counters().get(ITEMS_COUNTER, 0) >= result.requests)
        counted = daemon.counters().get(ITEMS_COUNTER, 0.0)
        return {"wrk": result, "daemon_count": counted}
    finally:
        daemon.close()


def statsd_restart(seconds: int) -> dict[str, t.Any]:
    first = StatsdDaemon().start()
    second: StatsdDaemon | None = None
    before = 0.0
    try:
        with gunicorn(statsd_base(first.port)) as url:
            outcome: dict[str, harness.WrkResult] = {}
            load = threading.Thread(
                target=lambda: outcome.setdefault(
                    "wrk", harness.run_wrk(f"{url}/api/items", seconds)
                )
            )
            load.start()
            time.sleep(seconds / 3)
            before = first.counters().get(ITEMS_COUNTER, 0.0)
            first.stop()
            time.sleep(seconds / 3)
            second = StatsdDaemon(port=first.port)
            second.start()
            load.join()
        resumed = second.counters().get(ITEMS_COUNTER, 0.0)
        return {"wrk": outcome["wrk"], "before_stop": before, "after_restart": resumed}
    finally:
        first.close()
        if second is not None:
            second.close()


#: Events per worker the default ``OBSERVE_SENTRY_ERROR_RATE`` lets through in a run
#: shorter than its window.
SENTRY_EVENTS_PER_WORKER = 10


def sentry(seconds: int, rounds: int = 1) -> dict[str, t.Any]:
    """The ``sentry`` scenario, with the tests' Sentry receivers (imported only here)."""
    from tests.support.sentry import EnvelopeReceiver
    from tests.support.sentry import SilentServer

    results: dict[str, list[harness.WrkResult]] = {"up": [], "closed": [], "hanging": []}
    events = 0
    raised = 0
    duplicate_ids = 0
    with EnvelopeReceiver() as receiver, SilentServer() as silent:
        dsns = {"up": receiver.dsn, "closed": harness.closed_port_dsn(), "hanging": silent.dsn}
        for _ in range(rounds):
            for mode, dsn in dsns.items():
                with gunicorn({"OBSERVE_SENTRY_DSN": dsn}, workers=4, preload=True) as url:
                    result = harness.run_wrk(f"{url}/", seconds, script=RAISE_SHARE_LUA)
                results[mode].append(result)
                if mode == "up":
                    raised += result.non_2xx
        # The workers stopped gracefully (their exit sends what they noted): all is in.
        most = rounds * 4 * SENTRY_EVENTS_PER_WORKER
        received = receiver.wait_for_events(min(raised, most), timeout=10)
        events = len(received)
        ids = [event.get("event_id") for event in received]
        duplicate_ids = len(ids) - len(set(ids))
    summary = {mode: _median_result(values) for mode, values in results.items()}
    return {**summary, "raised": raised, "events": events, "duplicate_ids": duplicate_ids}


def threads(seconds: int) -> dict[str, t.Any]:
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
    sink.settimeout(0.2)
    packets: list[bytes] = []
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                packets.append(sink.recv(65536))

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        config = statsd_base(sink.getsockname()[1])
        with gunicorn(config, workers=2, threads=8) as url:
            result = harness.run_wrk(f"{url}/api/items", seconds, connections=50)
        time.sleep(1.0)
    finally:
        stop.set()
        reader.join()
        sink.close()
    line = re.compile(rb"^[A-Za-z0-9_.\-]+:-?[\d.]+\|(c|ms|g)(\|@[\d.]+)?$")
    lines = [entry for packet in packets for entry in packet.split(b"\n") if entry]
    broken = [entry for entry in lines if not line.match(entry)]
    counted = sum(
        int(entry.split(b":")[1].split(b"|")[0])
        for entry in lines
        if entry.startswith(ITEMS_COUNTER.encode() + b":")
    )
    return {"wrk": result, "lines": len(lines), "broken": broken, "counted": counted}


def _median_result(values: list[harness.WrkResult]) -> harness.WrkResult:
    values = sorted(values, key=lambda r: r.p99)
    return values[len(values) // 2]


def baseline(
    seconds: int,
    *,
    preload: bool = False,
    workers: int = 4,
    threads: int = 1,
    connections: int = 8,
    script: str | None = None,
    path: str = "/api/items",
) -> harness.WrkResult:
    """The same load on the demo without Flask-Observe (``create_app(instrument=False)``)."""
    with gunicorn(
        {},
        workers=workers,
        threads=threads,
        preload=preload,
        factory="create_app(instrument=False)",
    ) as url:
        return harness.run_wrk(f"{url}{path}", seconds, connections=connections, script=script)


def _row(name: str, result: harness.WrkResult, base: harness.WrkResult | None = None) -> str:
    text = (
        f"  {name:<26} {result.rps:>8.0f} req/s  p50 {result.p50 * 1e3:7.2f} ms"
        f"  p99 {result.p99 * 1e3:7.2f} ms  failed {result.socket_errors:>3}"
        f"  5xx {result.non_2xx:>4}"
    )
    if base is not None:
        text += (
            f"   vs bare: req/s {result.rps / base.rps:.3f}x  p50 {result.p50 / base.p50:.3f}x"
            f"  p99 {result.p99 / base.p99:.3f}x"
        )
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="per phase")
    parser.add_argument("--sentry-rounds", type=int, default=2)
    args = parser.parse_args(argv)
    seconds = args.seconds

    for preload in (False, True):
        label = "--preload" if preload else "no preload"
        print(f"statsd daemon up, 4 sync workers, {label}:")
        bare = baseline(seconds, preload=preload)
        up = statsd_up(seconds, preload)
        print(_row("bare Flask", bare))
        print(_row("Flask-Observe", up["wrk"], bare))
        print(f"  requests: wrk {up['wrk'].requests}, statsd daemon {up['daemon_count']:.0f}")

    print("statsd daemon stopped a third in, restarted two thirds in:")
    bare = baseline(max(seconds, 3))
    restart = statsd_restart(max(seconds, 3))
    print(_row("bare Flask", bare))
    print(_row("Flask-Observe", restart["wrk"], bare))
    print(
        f"  counted before the stop {restart['before_stop']:.0f}, "
        f"by the restarted daemon {restart['after_restart']:.0f}"
    )

    print("Sentry, one request in ten raises (4 sync workers, --preload):")
    bare = baseline(seconds, preload=True, script=RAISE_SHARE_LUA, path="/")
    result = sentry(seconds, args.sentry_rounds)
    print(_row("bare Flask", bare))
    for mode in ("up", "closed", "hanging"):
        ratio = result[mode].p99 / result["up"].p99
        print(_row(f"Flask-Observe, Sentry {mode}", result[mode], bare))
        print(f"  {'':<26} p99 vs Sentry up: {ratio:.3f}x")
    print(
        f"  raised with the receiver up {result['raised']}, events {result['events']}, "
        f"duplicate event ids {result['duplicate_ids']}"
    )

    print("gthread, 2 workers x 8 threads, 50 connections:")
    bare = baseline(seconds, workers=2, threads=8, connections=50)
    threaded = threads(seconds)
    print(_row("bare Flask", bare))
    print(_row("Flask-Observe", threaded["wrk"], bare))
    print(
        f"  requests: wrk {threaded['wrk'].requests}, counted {threaded['counted']}, "
        f"lines {threaded['lines']}, broken lines {len(threaded['broken'])}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
