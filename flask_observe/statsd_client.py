"""A buffered statsd transport that never blocks, resolves or raises on the request path.

Requests hand finished metric lines to :meth:`StatsdClient.add`, which only appends
them to a buffer under a lock, or (with an :class:`~flask_observe.aggregation.Aggregator`)
their values to the aggregator. Whenever the buffer reaches ``OBSERVE_STATSD_MAX_PACKET``
bytes the packet is queued for a sender thread, which also sends whatever is buffered
or aggregated every ``OBSERVE_STATSD_FLUSH_INTERVAL`` seconds. Host resolution happens on
that thread and is retried there until it succeeds. Buffers are flushed at interpreter
exit and dropped in a forked child (the parent sends them), so each gunicorn worker
sends its own.

pystatsd's clients resolve the host in their constructor, send one datagram per call and
do not clean names; the line format here is the same as theirs (``name:1|c``,
``name:12.500000|ms``, ``|@0.5``), which a test checks against pystatsd itself.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import collections
import logging
import socket
import threading
import time
import typing as t
import weakref

from . import process
from .containment import warn_limited

if t.TYPE_CHECKING:
    from collections.abc import Sequence

    from .aggregation import Aggregator


class FlushSource(t.Protocol):
    """Lines read at each flush, on the sender thread (the process figures).

    .. versionadded:: 0.3.0
    """

    def lines(self) -> list[str]:
        """This flush's lines; must not raise."""

    def close(self) -> None:
        """The client is closing: nothing more will be asked."""


logger = logging.getLogger("flask_observe")

#: Most packets waiting for the sender thread; older ones are dropped (and counted).
MAX_QUEUED_PACKETS = 256

#: Longest time in seconds between two collections of an aggregator's pending requests
#: by the sender thread, whatever the flush interval
#: (:meth:`Aggregator.collect <flask_observe.aggregation.Aggregator.collect>`).
COLLECT_INTERVAL = 0.5

# Process-wide bookkeeping for the exit and fork hooks, not per-app state: the set only
# lets the two hooks find the live clients, and each app owns its own client.
_clients: weakref.WeakSet[StatsdClient] = weakref.WeakSet()


def _install_process_hooks() -> None:
    process.at_exit(close_all)
    process.after_fork_in_child(_after_fork_in_child)


def close_all() -> None:
    """Flush and close every open client (registered with :mod:`atexit`)."""
    for client in list(_clients):
        try:
            client.close()
        except Exception:  # a flush source's close() that raises: close the others
            logger.warning("Flask-Observe: closing a statsd client failed", exc_info=True)


def _after_fork_in_child() -> None:
    for client in list(_clients):
        client._reset_after_fork()


def describe_target(protocol: str, host: str, port: int) -> str:
    """A statsd target as messages name it: ``udp://host:port`` or ``unix:///path``."""
    if protocol == "unix":
        return f"unix://{host}"
    return f"{protocol}://{host}:{port}"


def open_socket(protocol: str, host: str, port: int, timeout: float) -> tuple[socket.socket, t.Any]:
    """A socket to a statsd target and the address to send to, resolved now.

    A TCP socket is connected (waiting *timeout* seconds at most, 1 s when *timeout* is
    0); a UDP or Unix datagram socket is not. A *timeout* of 0 leaves the datagram
    socket non-blocking.

    :param protocol: ``udp``, ``tcp`` or ``unix``.
    :param host: host name or address; for ``unix``, the socket path.
    :param port: UDP or TCP port (ignored for ``unix``).
    :raises OSError: the name does not resolve or the connection is refused.
    """
    if protocol == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.settimeout(timeout)
        return sock, host
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    family, _, _, _, address = socket.getaddrinfo(host, port, 0, kind)[0]
    sock = socket.socket(family, kind)
    try:
        if protocol == "tcp":
            sock.settimeout(timeout or 1.0)
            sock.connect(address)
        else:
            sock.settimeout(timeout)
    except OSError:
        sock.close()
        raise
    return sock, address


class StatsdClient:
    """Buffered, thread-safe statsd sender for one app.

    :param host: host name or address; for ``unix``, the datagram socket path.
    :param port: UDP or TCP port.
    :param protocol: ``udp``, ``tcp`` or ``unix``.
    :param max_packet: the largest packet in bytes; a longer single line is dropped.
    :param flush_interval: longest wait in seconds before a buffered line is sent.
    :param resolve_interval: seconds between two attempts to resolve or connect.
    :param aggregator: counters and timers summed between flushes; each flush sends
        its lines.

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
        The *aggregator* parameter.
    """

    def __init__(
        self,
        host: str,
        port: int = 8125,
        protocol: str = "udp",
        max_packet: int = 1432,
        flush_interval: float = 0.5,
        resolve_interval: float = 10.0,
        aggregator: Aggregator | None = None,
    ) -> None:
        if protocol not in ("udp", "tcp", "unix"):
            raise ValueError(f"unknown statsd protocol {protocol!r}")
        self.host = host
        self.port = port
        self.protocol = protocol
        self.max_packet = max_packet
        self.flush_interval = flush_interval
        self.resolve_interval = resolve_interval
        #: Sums counters and samples timers between flushes, if set.
        self.aggregator = aggregator
        #: Lines dropped: longer than a packet, queue overflow, or unsendable.
        self.dropped_lines = 0
        #: Packets handed to the socket.
        self.sent_packets = 0
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._wake = self._new_wake()
        self._buffer: list[str] = []
        self._size = 0
        self._packets: collections.deque[str] = collections.deque()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._closed = False
        self._sock: socket.socket | None = None
        self._address: t.Any = None
        self._next_attempt = 0.0
        self._failing = False
        self._sources: tuple[FlushSource, ...] = ()
        _install_process_hooks()
        _clients.add(self)

    @property
    def target(self) -> str:
        """Where lines go, for messages: ``udp://host:port`` or ``unix:///path``."""
        return describe_target(self.protocol, self.host, self.port)

    # -- request path -------------------------------------------------------------------

    def add(self, lines: Sequence[str]) -> None:
        """Buffer *lines* to be sent together in one packet. Never blocks on I/O.

        A line longer than the packet limit is dropped and counted, never sent broken.
        """
        self.add_chunk("\n".join(lines))

    def add_chunk(self, chunk: str) -> None:
        """Buffer newline-separated lines that must travel in the same packet.

        The request path's entry point: one lock, one append; when the buffer is full,
        one non-blocking datagram.
        """
        size = len(chunk)
        limit = self.max_packet
        if size > limit:
            self._add_oversize(chunk.split("\n"))
            return
        full = False
        lock = self._lock
        lock.acquire()  # cheaper than "with" on this path
        try:
            if self._size + size > limit and self._buffer:
                self._queue(self._buffer)
                self._buffer = []
                self._size = 0
                full = True
            self._buffer.append(chunk)
            self._size += size + 1
        finally:
            lock.release()
        if self._thread is None:
            self._start()
        elif full:
            self._send_full()

    def _send_full(self) -> None:
        """Send the queued full packets now, one non-blocking datagram each, when the
        socket is ready and free; otherwise leave them to the sender thread (which also
        does every resolution, connection and TCP send)."""
        sock = self._sock
        if sock is None or self.protocol == "tcp" or not self._send_lock.acquire(False):
            self._wake_up()
            return
        try:
            packets = self._packets
            while packets:
                try:
                    packet = packets.popleft()
                except IndexError:  # taken by a flush meanwhile
                    break
                try:
                    sock.sendto(packet.encode("ascii", "replace"), self._address)
                    self.sent_packets += 1
                except OSError:
                    self._count_dropped([packet])
        finally:
            self._send_lock.release()

    def _add_oversize(self, lines: Sequence[str]) -> None:
        fitting = [line for line in lines if len(line) <= self.max_packet]
        if len(fitting) < len(lines):
            with self._lock:
                self.dropped_lines += len(lines) - len(fitting)
            warn_limited(
                "statsd-oversize",
                "Flask-Observe: dropped a metric line longer than OBSERVE_STATSD_MAX_PACKET (%d)",
                self.max_packet,
            )
        for line in fitting:
            self.add_chunk(line)

    def _queue(self, lines: list[str]) -> None:
        """Queue one packet (lock held)."""
        if len(self._packets) >= MAX_QUEUED_PACKETS:
            dropped = self._packets.popleft()
            self.dropped_lines += dropped.count("\n") + 1
        self._packets.append("\n".join(lines))

    def add_source(self, source: FlushSource) -> None:
        """Also send *source*'s lines at each flush.

        .. versionadded:: 0.3.0
        """
        self._sources = (*self._sources, source)

    def start(self) -> None:
        """Start the sender thread of this process, if it is not running yet. Cheap when
        it is: callers that add to the aggregator call it on their rare paths.

        .. versionadded:: 0.2.0
        """
        if self._thread is None:
            self._start()

    @staticmethod
    def _new_wake() -> threading.Lock:
        """The sender thread sleeps on this held lock between flushes; releasing it
        wakes the thread (cheaper per flush than a :class:`threading.Event`)."""
        wake = threading.Lock()
        wake.acquire()
        return wake

    def _wake_up(self) -> None:
        try:
            self._wake.release()
        except RuntimeError:  # already released: the thread will not sleep
            pass

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._closed:
                return
            thread = threading.Thread(
                target=self._run, name=f"flask-observe-statsd {self.target}", daemon=True
            )
            self._thread = thread
        thread.start()

    # -- sender thread ------------------------------------------------------------------

    def _run(self) -> None:
        interval = self.flush_interval
        aggregator = self.aggregator
        # The requests pending in the aggregator are collected between flushes too, so
        # that they stay few whatever the flush interval.
        step = min(interval, COLLECT_INTERVAL) if aggregator is not None else interval
        next_flush = time.monotonic() + interval
        while True:
            woken = self._wake.acquire(timeout=max(0.0, min(step, next_flush - time.monotonic())))
            stopping = self._stopping
            try:
                if woken or stopping or time.monotonic() >= next_flush or aggregator is None:
                    next_flush = time.monotonic() + interval
                    self.flush()
                else:
                    aggregator.collect()
            except Exception:  # a flush source or aggregator that raises, against its contract
                warn_limited("statsd-thread", "Flask-Observe: statsd send failed", exc_info=True)
            if stopping:
                return

    def flush(self) -> None:
        """Send everything buffered or aggregated now, from the calling thread (tests,
        exit, CLI)."""
        lines = self.aggregator.drain() if self.aggregator is not None else []
        for source in self._sources:
            lines += source.lines()
        with self._lock:
            packets = list(self._packets)
            self._packets.clear()
            if self._buffer:
                lines += self._buffer
                self._buffer = []
                self._size = 0
        packets += self._pack(lines)
        if packets:
            self._send(packets)

    def _pack(self, lines: list[str]) -> list[str]:
        """Join *lines* into packets of at most ``max_packet`` bytes (a chunk of lines
        buffered together stays whole); drop and count a longer line."""
        limit = self.max_packet
        if sum(map(len, lines)) + len(lines) - 1 <= limit:  # all in one packet
            return ["\n".join(lines)] if lines else []
        packets: list[str] = []
        current: list[str] = []
        size = -1
        for line in lines:
            length = len(line)
            if length > limit:  # only an aggregated line: buffered chunks fit
                self._add_oversize([line])
                continue
            if size + 1 + length > limit and current:
                packets.append("\n".join(current))
                current = []
                size = -1
            current.append(line)
            size += 1 + length
        if current:
            packets.append("\n".join(current))
        return packets

    def _send(self, packets: list[str]) -> None:
        with self._send_lock:
            sock = self._connect()
            for number, packet in enumerate(packets):
                if sock is None:
                    self._count_dropped(packets[number:])
                    return
                data = packet.encode("ascii", "replace")
                try:
                    if self.protocol == "tcp":
                        sock.sendall(data + b"\n")
                    else:
                        sock.sendto(data, self._address)
                    self.sent_packets += 1
                except OSError as exc:
                    self._count_dropped([packet])
                    warn_limited(
                        "statsd-send",
                        "Flask-Observe: sending metrics to %s failed: %s",
                        self.target,
                        exc,
                    )
                    if self.protocol == "tcp":  # reconnect on the next packet
                        self._disconnect()
                        self._next_attempt = 0.0
                        sock = self._connect()

    def _count_dropped(self, packets: list[str]) -> None:
        count = sum(packet.count("\n") + 1 for packet in packets)
        with self._lock:
            self.dropped_lines += count

    def _connect(self) -> socket.socket | None:
        """The socket, resolving and connecting first if needed (send lock held)."""
        if self._sock is not None:
            return self._sock
        now = time.monotonic()
        if now < self._next_attempt:
            return None
        try:
            sock, address = open_socket(self.protocol, self.host, self.port, 0.0)
        except OSError as exc:
            self._next_attempt = now + self.resolve_interval
            if not self._failing:
                self._failing = True
                logger.warning(
                    "Flask-Observe: statsd at %s is unavailable (%s); metrics are dropped "
                    "and the connection is retried every %g s in the background.",
                    self.target,
                    exc,
                    self.resolve_interval,
                )
            return None
        if self._failing:
            self._failing = False
            logger.warning("Flask-Observe: statsd at %s is reachable again.", self.target)
        self._sock = sock
        self._address = address
        return sock

    def _disconnect(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    # -- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Send what is buffered, stop the sender thread and close the socket.

        Idempotent; called for every open client at interpreter exit.
        """
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        self._wake_up()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        try:
            self.flush()
        finally:
            with self._send_lock:
                self._disconnect()
            _clients.discard(self)
            for source in self._sources:
                source.close()

    def _reset_after_fork(self) -> None:
        """In a forked child: fresh locks, no thread, and none of the parent's lines."""
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._wake = self._new_wake()
        self._buffer = []
        self._size = 0
        self._packets = collections.deque()
        self._thread = None
        self._disconnect()
        self._next_attempt = 0.0
        if self.aggregator is not None:
            self.aggregator.reset()
