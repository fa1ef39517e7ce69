"""An embedded stand-in for Sentry, so that ``make demo`` shows error capture with no
outside service: a loopback HTTP server that takes the envelopes the real sentry-sdk
sends, keeps the last events in memory and logs one line per event.

The demo serves what it received at ``/demo/sentry-events``.
"""

from __future__ import annotations

import collections
import gzip
import json
import logging
import threading
import typing as t
import zlib
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer

logger = logging.getLogger("demo_app.sentry_sink")


class SentrySink:
    """The last *size* events received, newest last."""

    def __init__(self, size: int = 50) -> None:
        self.events: collections.deque[dict[str, t.Any]] = collections.deque(maxlen=size)
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the stdlib's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                try:
                    if encoding == "gzip":
                        body = gzip.decompress(body)
                    elif encoding == "deflate":
                        body = zlib.decompress(body)
                    sink.add(body)
                finally:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b"{}")

            def log_message(self, format: str, *args: t.Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="demo-sentry-sink", daemon=True
        )
        self.thread.start()

    @property
    def dsn(self) -> str:
        return f"http://demo@127.0.0.1:{self.server.server_address[1]}/1"

    def add(self, envelope: bytes) -> None:
        """Keep the event items of one envelope (header line, then item header + payload)."""
        lines = envelope.split(b"\n")
        index = 1
        while index + 1 < len(lines):
            try:
                item = json.loads(lines[index])
            except ValueError:
                break
            payload = lines[index + 1]
            index += 2
            if item.get("type") != "event":
                continue
            event = json.loads(payload)
            values = (event.get("exception") or {}).get("values") or [{}]
            summary = {
                "event_id": event.get("event_id"),
                "type": values[-1].get("type"),
                "value": values[-1].get("value"),
                "transaction": event.get("transaction"),
                "url": (event.get("request") or {}).get("url"),
            }
            self.events.append(summary)
            logger.warning("demo Sentry sink: event %(event_id)s %(type)s", summary)
