"""Hostile requests through a real server (gunicorn, raw sockets), not the test client.

Each request gets the documented JSON problem answer, the server stays up, the metric
names that reach a statsd socket stay clean and bounded, and Sentry receives nothing but
the one genuine 5xx. gunicorn's own request limits are raised so that the requests reach
the app; with its defaults, gunicorn itself rejects over-long request lines and headers
before any app code runs.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import threading
import typing as t
import urllib.request

import pytest

from tests.support.sentry import EnvelopeReceiver
from tests.support.services import serve_demo
from tests.support.services import starts_services

if t.TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.services

CLEAN_LINE = re.compile(rb"^[A-Za-z0-9_.\-]+:-?[\d.]+\|(c|ms|g)(\|@[\d.]+)?$")
GUNICORN_LIMITS = (
    "--limit-request-line", "0",
    "--limit-request-field_size", "65536",
    "--permit-unconventional-http-method",
)  # fmt: skip


class Sink:
    """A UDP socket standing in for statsd, collecting every datagram."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
        self.socket.settimeout(0.2)
        self.port = int(self.socket.getsockname()[1])
        self.packets: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain)
        self._thread.start()

    def _drain(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                self.packets.append(self.socket.recv(65536))

    def lines(self) -> list[bytes]:
        return [line for packet in self.packets for line in packet.split(b"\n") if line]

    def close(self) -> None:
        """Stop reading in the background, then read every datagram still waiting (once
        the senders have exited, that is everything they sent)."""
        if self.socket.fileno() < 0:
            return
        self._stop.set()
        self._thread.join()
        self.socket.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                self.packets.append(self.socket.recv(65536))
        self.socket.close()


@contextlib.contextmanager
def serve_hostile(sink: Sink, receiver: EnvelopeReceiver) -> Iterator[str]:
    """The demo under gunicorn (2 workers, 4 threads each), sending its metrics to *sink*
    and its Sentry events to *receiver*; on exit, a graceful stop."""
    config = {
        "OBSERVE_STATSD_HOST": "127.0.0.1",
        "OBSERVE_STATSD_PORT": sink.port,
        "OBSERVE_STATSD_PREFIX": "hostile",
        "OBSERVE_STATSD_FLUSH_INTERVAL": 0.1,
        "OBSERVE_SENTRY_DSN": receiver.dsn,
    }
    with serve_demo(config, workers=2, threads=4, extra_args=GUNICORN_LIMITS) as url:
        yield url


@pytest.fixture(scope="module")
@starts_services
def server() -> Iterator[str]:
    sink = Sink()
    receiver = EnvelopeReceiver().start()
    try:
        with serve_hostile(sink, receiver) as url:
            yield url
    finally:
        sink.close()
        receiver.close()


def raw(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send *request* bytes as they are; parse the status, headers and body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def request_bytes(method: bytes, target: bytes, headers: bytes = b"", body: bytes = b"") -> bytes:
    length = f"Content-Length: {len(body)}\r\n".encode() if body else b""
    return (
        method + b" " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        + headers + length + b"\r\n" + body
    )  # fmt: skip


def assert_problem(status: int, headers: dict[str, str], body: bytes, expected: int) -> None:
    assert status == expected, body[:300]
    assert headers["content-type"].startswith("application/problem+json"), headers
    problem = json.loads(body)
    assert problem["status"] == expected
    assert {"type", "title", "status", "detail"} <= set(problem)


def assert_still_up(url: str) -> None:
    with urllib.request.urlopen(f"{url}/api/items", timeout=10) as response:
        assert response.status == 200


HOSTILE = [
    pytest.param(b"A|B", b"/api/items", b"", b"", 405, id="method-with-pipe"),
    pytest.param(b"BREW", b"/api/items", b"", b"", 405, id="unknown-method"),
    pytest.param(b"GET", b"/api/items/%0Aevil:1|c", b"", b"", 404, id="encoded-newline"),
    pytest.param(b"GET", b"/a%7Cb%7C@0.1%0A", b"", b"", 404, id="encoded-pipe"),
    pytest.param(b"GET", b"/" + b"x" * 8192, b"", b"", 404, id="8kb-path"),
    pytest.param(b"GET", b"/api/%FF%FE/items", b"", b"", 404, id="invalid-utf8-path"),
    pytest.param(b"GET", b"/nope?q=%FF%FE&%C3=%28", b"", b"", 404, id="invalid-utf8-query"),
    pytest.param(
        b"GET", b"/missing", b"X-Huge: " + b"h" * 60_000 + b"\r\n", b"", 404, id="huge-header"
    ),
    pytest.param(
        b"POST",
        b"/api/items",
        b"Content-Type: application/json\r\n",
        b"{not json",
        400,
        id="malformed-json",
    ),
    pytest.param(
        b"POST",
        b"/api/items",
        b"Content-Type: application/json\r\n",
        b'"just a string"',
        400,
        id="json-not-an-object",
    ),
]


@pytest.mark.parametrize(("method", "target", "headers", "body", "status"), HOSTILE)
def test_hostile_request_gets_a_json_problem(
    server: str,
    method: bytes,
    target: bytes,
    headers: bytes,
    body: bytes,
    status: int,
) -> None:
    url = server
    got_status, got_headers, got_body = raw(url, request_bytes(method, target, headers, body))
    assert_problem(got_status, got_headers, got_body, status)
    assert_still_up(url)


def test_raw_non_ascii_request_line_is_refused_by_gunicorn_and_it_stays_up(server: str) -> None:
    """Raw (not percent-encoded) invalid UTF-8 never reaches the app: gunicorn answers."""
    url = server
    status, _headers, _body = raw(url, request_bytes(b"GET", b"/api/\xff\xfe/items"))
    assert status == 400
    assert_still_up(url)


def test_ten_thousand_unmatched_paths_keep_names_bounded() -> None:
    """The hostile requests above and 10,000 unmatched paths, then one genuine 5xx, on a
    server of its own, stopped before the checks: a graceful stop runs each worker's exit
    hooks, which build and send the Sentry events still pending and flush the statsd
    buffers, so what the checks read is everything the workers sent (no wait for stray
    events that may still come)."""
    sink = Sink()
    receiver = EnvelopeReceiver().start()
    try:
        with serve_hostile(sink, receiver) as url:
            for param in HOSTILE:
                *parts, status = param.values
                method, target, headers, body = t.cast("list[bytes]", parts)
                assert raw(url, request_bytes(method, target, headers, body))[0] == status
            send_unmatched_and_one_error(url)
            receiver.wait_for_events(1, timeout=10)
        sink.close()  # the workers have exited: every datagram they sent is read
        lines = sink.lines()
        events = receiver.events
    finally:
        sink.close()
        receiver.close()
    assert lines, "no metric reached the statsd socket"
    broken = [line for line in lines if not CLEAN_LINE.match(line)]
    assert broken == []
    names = {line.split(b":")[0] for line in lines}
    unmatched = {name for name in names if b"_unmatched" in name}
    # request timer + response counter per method/status seen: a handful, not 10,000.
    assert 0 < len(unmatched) <= 12, sorted(unmatched)
    assert len(names) < 60, sorted(names)
    assert b"hostile.response.api.list_items._OTHER.405" in names
    assert [e["exception"]["values"][-1]["type"] for e in events] == ["RuntimeError"]


def send_unmatched_and_one_error(url: str) -> None:
    """10,000 requests for unmatched paths on four connections, then one genuine 5xx, to
    show the Sentry path works while everything else stayed out."""
    host, port = url.removeprefix("http://").split(":")
    statuses: list[int] = []

    def send(offset: int) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            for number in range(offset, 10_000, 4):
                connection.request("GET", f"/random/{number}/{number * 7919 % 10007}")
                response = connection.getresponse()
                response.read()
                statuses.append(response.status)
        finally:
            connection.close()

    workers = [threading.Thread(target=send, args=(offset,)) for offset in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(statuses) == 10_000 and set(statuses) == {404}
    try:
        urllib.request.urlopen(f"{url}/api/boom", timeout=10)
    except urllib.error.HTTPError as error:
        assert error.code == 500
        error.close()  # an unclosed HTTPError is a ResourceWarning on 3.14
    else:
        raise AssertionError("/api/boom answered without an error")
