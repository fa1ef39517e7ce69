"""For the metrics tests: a real loopback UDP socket standing in for statsd (the ``udp``
fixture of ``tests/conftest.py``), the configuration that sends to it, and readers that
add up the received lines the way the statsd daemon would."""

from __future__ import annotations

import socket
import threading
import time
import typing as t

from flask_observe import metrics

if t.TYPE_CHECKING:
    from flask import Flask

    from flask_observe.aggregation import Aggregator


class UdpReceiver:
    """A plain UDP socket on 127.0.0.1 standing in for statsd on the wire."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        #: Every datagram received so far, decoded.
        self.packets: list[str] = []

    def receive(self, timeout: float = 0.2) -> list[str]:
        """Read datagrams until none arrives for *timeout* seconds; return new lines."""
        lines: list[str] = []
        self.sock.settimeout(timeout)
        while True:
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                return lines
            packet = data.decode("ascii")
            self.packets.append(packet)
            lines.extend(packet.split("\n"))

    def wait_for(self, count: int, timeout: float = 5.0) -> list[str]:
        """Read until at least *count* lines arrived or *timeout* passed."""
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while len(lines) < count and time.monotonic() < deadline:
            lines.extend(self.receive(0.05))
        return lines

    def close(self) -> None:
        self.sock.close()


def udp_config(receiver: UdpReceiver, **extra: object) -> dict[str, object]:
    """Configuration that sends to *receiver* with a short flush interval, without the
    process figures (each flush would add them to the request lines the tests count;
    tests/test_process_metrics.py turns them on)."""
    return {
        "OBSERVE_STATSD_HOST": "127.0.0.1",
        "OBSERVE_STATSD_PORT": receiver.port,
        "OBSERVE_STATSD_FLUSH_INTERVAL": 0.05,
        "OBSERVE_PROCESS_METRICS": False,
        **extra,
    }


def line_config(receiver: UdpReceiver, **extra: object) -> dict[str, object]:
    """As :func:`udp_config`, with one line per metric (no aggregation)."""
    return udp_config(receiver, OBSERVE_STATSD_AGGREGATE=False, **extra)


def _rate(fields: list[str]) -> float:
    for field in fields[2:]:
        if field.startswith("@"):
            return float(field[1:])
    return 1.0


def counter_total(lines: list[str], name: str) -> float:
    """What statsd adds up for the counter *name*: each value times ``1/rate``."""
    total = 0.0
    for line in lines:
        key, _, rest = line.partition(":")
        fields = rest.split("|")
        if key == name and fields[1:2] == ["c"]:
            total += float(fields[0]) / _rate(fields)
    return total


def timer_count(lines: list[str], name: str) -> float:
    """What statsd counts for the timer *name*: ``1/rate`` per value."""
    return sum(
        1.0 / _rate(line.partition(":")[2].split("|"))
        for line in lines
        if line.partition(":")[0] == name and line.partition(":")[2].split("|")[1:2] == ["ms"]
    )


def flush(app: Flask) -> None:
    """Send what the app's client buffered, now."""
    client = metrics.client(app)
    assert client is not None
    client.flush()


def aggregator_of(app: Flask) -> Aggregator:
    """The app's statsd aggregator (the app aggregates: the default)."""
    from flask_observe.extension import get_state
    from flask_observe.metrics import MetricsState

    part = get_state(app).part(MetricsState)
    assert part is not None and part.aggregator is not None
    return part.aggregator


def requests_from_threads(
    app: Flask, udp: UdpReceiver, *, threads: int = 8, requests: int = 250
) -> list[str]:
    """GET ``/`` *requests* times from each of *threads* threads while a reader thread
    collects what arrives; flush the app's client, read until the socket is quiet and
    return every line received."""
    received: list[str] = []
    done = threading.Event()

    def reader() -> None:
        while True:
            got = udp.receive(0.2)
            received.extend(got)
            if done.is_set() and not got:
                return

    reading = threading.Thread(target=reader)
    reading.start()

    def worker() -> None:
        client = app.test_client()
        for _ in range(requests):
            client.get("/", buffered=True)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    flush(app)
    done.set()
    reading.join()
    return received
