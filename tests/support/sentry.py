"""Test servers for the real sentry-sdk: an envelope receiver, a server that never
answers, and a closed port, all on 127.0.0.1.

:class:`EnvelopeReceiver` is a stdlib ``ThreadingHTTPServer`` that accepts what the SDK
POSTs to ``/api/<project>/envelope/``, undoes the ``Content-Encoding`` (gzip, or brotli
when the module is importable), and splits the envelope: a header line, then per item a
header line (with ``length`` when given) and its payload.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import typing as t
import zlib
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

if t.TYPE_CHECKING:
    from collections.abc import Iterator


class Envelope(t.NamedTuple):
    """One received envelope."""

    #: The envelope header (``event_id``, ``dsn``, ``sdk``...).
    header: dict[str, t.Any]
    #: ``(item header, payload bytes)`` per item.
    items: list[tuple[dict[str, t.Any], bytes]]
    #: The whole decoded body, to search for leaks.
    raw: bytes


def decode_body(body: bytes, encoding: str) -> bytes:
    """Undo the HTTP ``Content-Encoding`` sentry-sdk used."""
    encoding = encoding.strip().lower()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        import brotli  # type: ignore[import-not-found]

        return t.cast(bytes, brotli.decompress(body))
    return body


def parse_envelope(data: bytes) -> Envelope:
    """Split an envelope into its header and items (length-prefixed or line-ended)."""
    header_line, _, rest = data.partition(b"\n")
    header = json.loads(header_line)
    items: list[tuple[dict[str, t.Any], bytes]] = []
    while rest.strip():
        item_line, _, rest = rest.partition(b"\n")
        if not item_line.strip():
            continue
        item_header = json.loads(item_line)
        length = item_header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length:]
            if rest.startswith(b"\n"):
                rest = rest[1:]
        items.append((item_header, payload))
    return Envelope(header, items, data)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's naming)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        data = decode_body(body, self.headers.get("Content-Encoding", ""))
        self.server.owner.add(self.path, parse_envelope(data))
        reply = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: t.Any) -> None:
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: EnvelopeReceiver


class EnvelopeReceiver:
    """Receives sentry-sdk envelopes on ``127.0.0.1`` (an ephemeral port).

    Use as a context manager; :attr:`dsn` is what to give the SDK.
    """

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._lock = threading.Condition()
        #: Every envelope received, in order.
        self.envelopes: list[Envelope] = []
        #: The request paths the envelopes were posted to.
        self.paths: list[str] = []
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self.port}/1"

    def add(self, path: str, envelope: Envelope) -> None:
        with self._lock:
            self.paths.append(path)
            self.envelopes.append(envelope)
            self._lock.notify_all()

    @property
    def events(self) -> list[dict[str, t.Any]]:
        """The payloads of all ``event`` items received so far, decoded."""
        with self._lock:
            return [
                json.loads(payload)
                for envelope in self.envelopes
                for header, payload in envelope.items
                if header.get("type") == "event"
            ]

    @property
    def raw(self) -> bytes:
        """Every decoded byte received so far."""
        with self._lock:
            return b"\n".join(envelope.raw for envelope in self.envelopes)

    def wait_for_events(self, count: int, timeout: float = 5.0) -> list[dict[str, t.Any]]:
        """Wait until at least *count* events arrived (or *timeout*); return them all."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                events = self.events
                remaining = deadline - time.monotonic()
                if len(events) >= count or remaining <= 0:
                    return events
                self._lock.wait(remaining)

    def start(self) -> EnvelopeReceiver:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> EnvelopeReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class SilentServer:
    """Accepts TCP connections on ``127.0.0.1`` and never reads or answers."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        #: How many connections were accepted.
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self._sock.getsockname()[1]}/1"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self._conns.append(conn)
            self.accepted += 1

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._conns:
            conn.close()
        self._sock.close()


def closed_port_dsn() -> str:
    """A DSN on a loopback port where nothing listens (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://public@127.0.0.1:{port}/1"


def flush(timeout: float = 2.0) -> None:
    """Build the errors Flask-Observe noted (its capture worker), then let sentry-sdk
    send them: what ``sentry_sdk.flush()`` alone did before events were built off the
    request thread."""
    from flask_observe import sentry

    assert sentry.flush(timeout), "Flask-Observe's capture worker did not drain in time"


def reset_sentry(timeout: float = 0.5) -> None:
    """Let Flask-Observe's capture worker finish what earlier requests noted, then close
    whatever sentry-sdk client is bound and unbind it (test teardown), so that no event
    of one test reaches the next test's receiver."""
    import sentry_sdk

    from flask_observe.sentry import drain

    drain(5.0)
    client = sentry_sdk.get_client()
    if client.is_active():
        client.close(timeout=timeout)
    sentry_sdk.get_global_scope().set_client(None)


def sentry_isolated() -> Iterator[None]:
    """Generator body for a fixture: a fresh isolation scope, then a reset SDK."""
    import sentry_sdk

    reset_sentry()
    try:
        with sentry_sdk.isolation_scope():
            yield
    finally:
        reset_sentry()
