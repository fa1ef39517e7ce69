"""The statsd transport: TCP and Unix sockets, a host that does not resolve yet, a
daemon that is down, and the packet size limit with the lines it drops."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import struct
import threading
import time
import typing as t
import weakref
from pathlib import Path

import pytest

from flask_observe import metrics
from tests.support.apps import AppFactory
from tests.support.metrics import flush
from tests.support.metrics import udp_config
from tests.support.metrics import UdpReceiver

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from flask_observe.statsd_client import StatsdClient

#: The statsd client's TCP connect timeout (flask_observe/statsd_client.py), seconds.
CONNECT_TIMEOUT = 1.0


def test_oversize_line_is_dropped_and_counted(make_app: AppFactory, udp: UdpReceiver) -> None:
    app = make_app(**udp_config(udp, OBSERVE_STATSD_MAX_PACKET=64))
    with app.app_context():
        metrics.incr("short")
        metrics.incr("x" * 90)
        metrics.incr("short.again")
    client = metrics.client(app)
    assert client is not None
    flush(app)
    assert udp.wait_for(2) == ["short:1|c", "short.again:1|c"]
    assert client.dropped_lines == 1
    assert all(len(packet) <= 64 for packet in udp.packets)


def test_packets_respect_the_size_limit(make_app: AppFactory, udp: UdpReceiver) -> None:
    app = make_app(**udp_config(udp, OBSERVE_STATSD_MAX_PACKET=200))
    with app.app_context():
        for number in range(100):
            metrics.incr(f"counter.{number}")
    flush(app)
    lines = udp.wait_for(100)
    assert lines == [f"counter.{number}:1|c" for number in range(100)]
    assert all(len(packet.encode()) <= 200 for packet in udp.packets)
    assert len(udp.packets) > 5


def test_unresolvable_host_at_start_then_resolves(
    make_app: AppFactory,
    udp: UdpReceiver,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The app starts, requests stay fast, one warning, and metrics resume once the
    name resolves, all resolution happening off the request thread."""
    real_getaddrinfo = socket.getaddrinfo
    resolvable = threading.Event()
    callers: list[str] = []
    in_lookup = threading.Event()  # the sender thread is inside a lookup
    may_fail = threading.Event()  # the test lets the hanging lookup fail
    lookup_ended = threading.Event()

    def getaddrinfo(host: t.Any, port: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
        if host == "statsd.flask-observe.test":
            callers.append(threading.current_thread().name)
            if not resolvable.is_set():
                in_lookup.set()
                may_fail.wait(10)  # a failing resolver that hangs must not delay requests
                lookup_ended.set()
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            host = "127.0.0.1"
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    caplog.set_level(logging.WARNING, logger="flask_observe")
    app = make_app(**udp_config(udp, OBSERVE_STATSD_HOST="statsd.flask-observe.test"))
    client_ = metrics.client(app)
    assert client_ is not None
    client_.resolve_interval = 0.1
    app.add_url_rule("/", "index", lambda: "ok")
    client = app.test_client()
    # Requests are answered while the sender thread is stuck in its first lookup: a
    # request that resolved, or waited for the lookup, would not end before it does.
    assert client.get("/", buffered=True).status_code == 200  # the first line to send
    assert in_lookup.wait(10)
    for _ in range(5):
        assert client.get("/", buffered=True).status_code == 200
    assert not lookup_ended.is_set()
    may_fail.set()
    deadline = time.monotonic() + 10
    while len(callers) < 2 and time.monotonic() < deadline:
        assert client.get("/", buffered=True).status_code == 200
        time.sleep(0.01)
    assert len(callers) >= 2  # retried
    warnings_ = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(warnings_) == 1
    resolvable.set()
    # The next attempt is due resolve_interval after the last failure; lines sent
    # before then are dropped: request until one arrives.
    lines: list[str] = []
    deadline = time.monotonic() + 10
    while not any(line.startswith("response.index.GET.200:") for line in lines):
        assert time.monotonic() < deadline, lines
        assert client.get("/", buffered=True).status_code == 200
        lines += udp.wait_for(1, timeout=0.2)
    assert threading.current_thread().name not in callers
    assert any("reachable again" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("aggregate", [True, False], ids=["aggregated", "lines"])
@pytest.mark.parametrize("protocol", ["udp", "tcp"])
def test_daemon_down_raises_nothing(protocol: str, aggregate: bool, make_app: AppFactory) -> None:
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = make_app(
        OBSERVE_STATSD_HOST="127.0.0.1",
        OBSERVE_STATSD_PORT=port,
        OBSERVE_STATSD_PROTOCOL=protocol,
        OBSERVE_STATSD_AGGREGATE=aggregate,
        OBSERVE_PROCESS_METRICS=False,  # the line counts are the requests'
    )
    app.add_url_rule("/", "index", lambda: "ok")
    client = app.test_client()
    for _ in range(50):
        assert client.get("/", buffered=True).status_code == 200
    flush(app)
    durations: list[float] = []
    for _ in range(50):
        started = time.perf_counter()
        assert client.get("/", buffered=True).status_code == 200
        durations.append(time.perf_counter() - started)
    # No request waits for a connection attempt: each stays far below the sender's TCP
    # connect timeout (a figure that holds on a slow machine, unlike a total for all).
    assert max(durations) < CONNECT_TIMEOUT / 2, max(durations)
    flush(app)
    if protocol == "tcp":
        statsd_client = metrics.client(app)
        assert statsd_client is not None
        # Without aggregation every line is lost; with it, a counter and the timer
        # samples per flush.
        assert (
            statsd_client.dropped_lines == 200
            if not aggregate
            else 0 < statsd_client.dropped_lines < 200
        )


@contextlib.contextmanager
def _tcp_listener(backlog: int) -> Iterator[tuple[socket.socket, int]]:
    """A TCP socket listening on a free loopback port (accepts wait 5 s at most), and
    its port."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(backlog)
        server.settimeout(5)
        yield server, server.getsockname()[1]


def _connected(client: StatsdClient, server: socket.socket) -> socket.socket:
    """The connection *client* opens to *server* when it flushes its first line (waits
    5 s at most), that line already read from it."""
    client.add(["first:1|c"])
    client.flush()  # connects
    conn, _ = server.accept()
    conn.settimeout(5)
    assert conn.recv(4096) == b"first:1|c\n"
    return conn


def test_tcp_transport(make_app: AppFactory) -> None:
    with _tcp_listener(1) as (server, port):
        app = make_app(
            OBSERVE_STATSD_HOST="127.0.0.1",
            OBSERVE_STATSD_PORT=port,
            OBSERVE_STATSD_PROTOCOL="tcp",
            OBSERVE_PROCESS_METRICS=False,
        )
        with app.app_context():
            metrics.incr("over.tcp")
            metrics.incr("again")
        flush(app)
        conn, _ = server.accept()
        with conn:
            conn.settimeout(5)
            data = b""
            while data.count(b"\n") < 2:
                data += conn.recv(4096)
    assert data == b"over.tcp:1|c\nagain:1|c\n"


def test_unix_transport(make_app: AppFactory, tmp_path: Path) -> None:
    path = str(tmp_path / "statsd.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)
        server.settimeout(5)
        app = make_app(
            OBSERVE_STATSD_HOST=path, OBSERVE_STATSD_PROTOCOL="unix", OBSERVE_PROCESS_METRICS=False
        )
        with app.app_context():
            metrics.timing("over.unix", 1.5)
        flush(app)
        assert server.recv(4096) == b"over.unix:1.500000|ms"


def test_full_packets_go_out_at_once_and_oversize_lines_are_dropped(
    udp: UdpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Once connected, a packet that fills up is sent by the caller without waiting for
    the flush; a line of exactly the limit is sent, a longer one dropped and counted."""
    from flask_observe.statsd_client import StatsdClient

    caplog.set_level(logging.WARNING, logger="flask_observe")
    client = StatsdClient("127.0.0.1", udp.port, max_packet=40, flush_interval=60.0)
    try:
        client.add(["first:1|c"])
        client.flush()  # connects
        assert udp.wait_for(1) == ["first:1|c"]
        client.add(["a" * 15 + ":1|c", "b" * 15 + ":1|c"])  # 39 bytes: fits
        client.add(["c" * 30 + ":1|c"])  # does not fit: the first packet is full
        assert udp.wait_for(2) == ["a" * 15 + ":1|c", "b" * 15 + ":1|c"]
        assert client.sent_packets == 2
        exact = "d" * 36 + ":1|c"  # 40 bytes: exactly the limit
        client.add([exact, "e" * 37 + ":1|c"])  # too long together, and the second alone
        client.flush()
        assert udp.wait_for(2) == ["c" * 30 + ":1|c", exact]
        assert client.dropped_lines == 1
        assert client.sent_packets == 4
        client.add(["f" * 37 + ":1|c"])
        assert client.dropped_lines == 2
    finally:
        client.close()
    warned = [r for r in caplog.records if "longer than OBSERVE_STATSD_MAX_PACKET" in r.message]
    assert [r.getMessage() for r in warned] == [
        "Flask-Observe: dropped a metric line longer than OBSERVE_STATSD_MAX_PACKET (40)"
    ]


def test_packets_are_filled_to_the_byte_and_sent_as_they_fill(udp: UdpReceiver) -> None:
    """Lines joined by newlines fill a packet up to max_packet exactly; each full packet
    leaves at once, the rest at the flush."""
    from flask_observe.statsd_client import StatsdClient

    client = StatsdClient("127.0.0.1", udp.port, max_packet=39, flush_interval=60.0)
    try:
        client.add(["m:1|c"])
        client.flush()  # connects
        assert udp.wait_for(1) == ["m:1|c"]
        lines = [f"m{number}:1234|c" for number in range(9)]  # 9 bytes each
        for line in lines:
            client.add([line])
        assert udp.wait_for(8) == lines[:8]  # two full packets, before any flush
        client.flush()
        assert udp.wait_for(1) == lines[8:]
    finally:
        client.close()
    assert udp.packets[1:] == ["\n".join(lines[:4]), "\n".join(lines[4:8]), lines[8]]
    assert [len(packet) for packet in udp.packets[1:3]] == [39, 39]


class _HeldSource:
    """A flush source whose lines() waits, once armed, until released: it holds the
    sender thread inside a flush while the request path keeps adding lines."""

    def __init__(self) -> None:
        self.armed = False
        self.release = threading.Event()

    def lines(self) -> list[str]:
        if self.armed:
            assert self.release.wait(10)
        return []

    def close(self) -> None:
        self.release.set()


def test_a_full_queue_drops_its_oldest_packets_and_counts_their_lines() -> None:
    """While the sender thread is busy, full packets wait in a queue of 256; beyond that
    the oldest are dropped (each line counted) and the newest sent. Over TCP the caller
    never sends itself: every packet goes through the thread."""
    from flask_observe.statsd_client import StatsdClient

    with _tcp_listener(1) as (server, port):
        client = StatsdClient("127.0.0.1", port, protocol="tcp", max_packet=20, flush_interval=60.0)
        source = _HeldSource()
        client.add_source(source)
        try:
            client.add(["first:1|c"])
            client.flush()  # connects
            conn, _ = server.accept()
            source.armed = True
            # Two lines of 9 bytes each: 19 bytes, one chunk a packet of at most 20.
            chunks = [[f"a{number:03}:1|c", f"b{number:03}:1|c"] for number in range(260)]
            for chunk in chunks:
                client.add(chunk)
            # 259 packets are full and queued (the last chunk is still buffered):
            # the 3 oldest are dropped, 6 lines.
            assert client.dropped_lines == 6
            source.release.set()
            client.flush()
            expected = "first:1|c\n" + "".join(f"{a}\n{b}\n" for a, b in chunks[3:])
            with conn:
                conn.settimeout(5)
                data = b""
                while len(data) < len(expected):
                    received = conn.recv(65536)
                    assert received
                    data += received
        finally:
            client.close()
    assert data.decode("ascii") == expected
    assert client.dropped_lines == 6
    assert client.sent_packets == 1 + 257


def test_a_datagram_the_socket_refuses_is_dropped_and_counted(
    udp: UdpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """A packet larger than a UDP datagram can be (65,507 bytes) is refused by the
    socket: dropped and counted, whether the caller or the sender thread sends it, and
    the caller sees no error; the next packets still go out."""
    from flask_observe.statsd_client import StatsdClient

    caplog.set_level(logging.WARNING, logger="flask_observe")
    client = StatsdClient("127.0.0.1", udp.port, max_packet=70000, flush_interval=60.0)
    big = "b" * 65996 + ":1|c"  # 66,000 bytes
    after = "n" * 3996 + ":1|c"  # 4,000 bytes: does not fit with the big one
    try:
        client.add(["first:1|c"])
        client.flush()  # connects
        assert udp.wait_for(1) == ["first:1|c"]
        client.add([big])
        client.add([after])  # the big packet is full: the caller sends it, refused
        assert client.dropped_lines == 1
        assert client.sent_packets == 1
        client.flush()
        assert udp.wait_for(1) == [after]
        assert client.sent_packets == 2
        client.add([big])
        client.flush()  # the flush sends it, refused
        assert client.dropped_lines == 2
        client.add(["last:1|c"])
        client.flush()
        assert udp.wait_for(1) == ["last:1|c"]
    finally:
        client.close()
    assert client.sent_packets == 3
    warned = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    refused = f"[Errno {errno.EMSGSIZE}] {os.strerror(errno.EMSGSIZE)}"  # Message too long
    assert warned == [
        f"Flask-Observe: sending metrics to udp://127.0.0.1:{udp.port} failed: {refused}"
    ]


def test_lines_too_long_together_are_sent_apart_without_a_warning(
    udp: UdpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Lines added together that only fit a packet each are sent in packets of their
    own: nothing is dropped, so nothing is counted or warned about."""
    from flask_observe.statsd_client import StatsdClient

    caplog.set_level(logging.WARNING, logger="flask_observe")
    client = StatsdClient("127.0.0.1", udp.port, max_packet=20, flush_interval=60.0)
    try:
        client.add(["first:1|c"])
        client.flush()  # connects
        assert udp.wait_for(1) == ["first:1|c"]
        client.add(["a" * 12 + ":1|c", "b" * 12 + ":1|c"])  # 16 bytes each, 33 together
        client.flush()
        assert udp.wait_for(2) == ["aaaaaaaaaaaa:1|c", "bbbbbbbbbbbb:1|c"]
    finally:
        client.close()
    assert udp.packets == ["first:1|c", "aaaaaaaaaaaa:1|c", "bbbbbbbbbbbb:1|c"]
    assert client.dropped_lines == 0
    assert [r.getMessage() for r in caplog.records] == []


def test_a_packet_counts_the_newlines_between_its_lines(udp: UdpReceiver) -> None:
    """Nine-byte lines in packets of at most 44 bytes: four lines and three newlines make
    39 bytes, a fifth would make 49."""
    from flask_observe.statsd_client import StatsdClient

    client = StatsdClient("127.0.0.1", udp.port, max_packet=44, flush_interval=60.0)
    try:
        client.add(["m:1|c"])
        client.flush()  # connects
        assert udp.wait_for(1) == ["m:1|c"]
        lines = [f"m{number}:1234|c" for number in range(10)]
        for line in lines:
            client.add([line])
        client.flush()
        assert udp.wait_for(10) == lines
    finally:
        client.close()
    assert udp.packets[1:] == ["\n".join(lines[:4]), "\n".join(lines[4:8]), "\n".join(lines[8:])]


def test_lines_go_out_at_the_flush_interval_without_a_flush(udp: UdpReceiver) -> None:
    """The first line starts the sender thread, which sends every flush_interval."""
    from flask_observe.statsd_client import StatsdClient

    client = StatsdClient("127.0.0.1", udp.port, flush_interval=0.05)
    try:
        client.add(["tick:1|c"])
        assert udp.wait_for(1) == ["tick:1|c"]
        client.add(["tock:1|c"])
        assert udp.wait_for(1) == ["tock:1|c"]
    finally:
        client.close()


class _CountedSource:
    def __init__(self) -> None:
        self.closed = 0

    def lines(self) -> list[str]:
        return []

    def close(self) -> None:
        self.closed += 1


def test_close_is_idempotent(udp: UdpReceiver) -> None:
    """A second close sends nothing more and closes the sources once."""
    from flask_observe.statsd_client import StatsdClient

    client = StatsdClient("127.0.0.1", udp.port, flush_interval=60.0)
    source = _CountedSource()
    client.add_source(source)
    client.add(["last:1|c"])
    client.close()
    assert udp.wait_for(1) == ["last:1|c"]
    assert client.sent_packets == 1
    client.close()
    assert client.sent_packets == 1
    assert source.closed == 1


def test_the_target_as_messages_name_it(tmp_path: Path) -> None:
    from flask_observe.statsd_client import StatsdClient

    path = str(tmp_path / "statsd.sock")
    clients = [
        StatsdClient("127.0.0.1", 8125),
        StatsdClient("statsd.internal", 8126, protocol="tcp"),
        StatsdClient(path, protocol="unix"),
    ]
    try:
        assert [client.target for client in clients] == [
            "udp://127.0.0.1:8125",
            "tcp://statsd.internal:8126",
            f"unix://{path}",
        ]
    finally:
        for client in clients:
            client.close()


def test_one_daemon_sender_thread_named_for_its_target_until_close(udp: UdpReceiver) -> None:
    """Named for py-spy and debuggers, a daemon so that it never holds up exit; close
    stops it, and lines added after close start no new one."""
    from flask_observe.statsd_client import StatsdClient

    name = f"flask-observe-statsd udp://127.0.0.1:{udp.port}"

    def senders() -> list[threading.Thread]:
        return [th for th in threading.enumerate() if th.name == name and th.is_alive()]

    client = StatsdClient("127.0.0.1", udp.port, flush_interval=60.0)
    assert senders() == []
    client.add(["a:1|c"])
    client.add(["b:1|c"])
    client.start()
    (thread,) = senders()
    assert thread.daemon
    client.close()
    assert senders() == []
    assert udp.wait_for(2) == ["a:1|c", "b:1|c"]
    client.add(["late:1|c"])
    client.start()
    assert senders() == []
    unused = StatsdClient("127.0.0.1", udp.port, flush_interval=60.0)
    unused.close()  # before any line: no thread yet
    unused.add(["late:1|c"])
    assert senders() == []


def _sender_threads(name: str) -> list[threading.Thread]:
    return [th for th in threading.enumerate() if th.name == name and th.is_alive()]


def test_a_forked_child_sends_none_of_the_parents_lines_on_a_connection_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fork hook, called here in-process as a forked child calls it: the parent's
    buffered line is dropped, its connection closed (a child writing on it would mix its
    lines into the parent's stream), locks held at the fork are replaced, and the next
    line starts a sender thread of the child's own. The child's packets fill to the byte
    from an empty buffer."""
    from flask_observe import statsd_client
    from flask_observe.statsd_client import StatsdClient

    monkeypatch.setattr(statsd_client, "_clients", weakref.WeakSet())
    with _tcp_listener(2) as (server, port):
        name = f"flask-observe-statsd tcp://127.0.0.1:{port}"
        client = StatsdClient("127.0.0.1", port, protocol="tcp", max_packet=19, flush_interval=60.0)
        client.add(["parent:1|c"])  # starts the parent's sender thread
        client.flush()  # connects
        parent_conn, _ = server.accept()
        (parent_thread,) = _sender_threads(name)
        parent_wake = client._wake
        try:
            with parent_conn:
                parent_conn.settimeout(5)
                assert parent_conn.recv(4096) == b"parent:1|c\n"
                client.add(["unsent:1|c"])  # buffered in the parent when it forks
                # Another thread of the parent held the locks at the fork; in the
                # child that thread does not exist and would never release them.
                client._lock.acquire()
                client._send_lock.acquire()
                statsd_client._after_fork_in_child()
                assert parent_conn.recv(4096) == b""  # the child closed its copy
                client.add(["ab:1234|c"])  # 9 bytes
                client.add(["cd:1234|c"])  # 9 more and a newline: 19, the limit
                (child_thread,) = [th for th in _sender_threads(name) if th is not parent_thread]
                client.flush()
                child_conn, _ = server.accept()
                with child_conn:
                    child_conn.settimeout(5)
                    data = b""
                    while data.count(b"\n") < 2:
                        received = child_conn.recv(4096)
                        assert received
                        data += received
                assert data == b"ab:1234|c\ncd:1234|c\n"
                assert client.sent_packets == 2  # the parent's one, then the child's one
                client.close()
                assert not child_thread.is_alive()
        finally:
            client.close()
            parent_wake.release()  # the parent's thread, asleep on its own lock, ends
            parent_thread.join(5)
    assert not parent_thread.is_alive()


def test_a_forked_child_retries_a_failing_statsd_at_once(
    monkeypatch: pytest.MonkeyPatch, udp: UdpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """The parent waits resolve_interval between two attempts; its child tries at its
    first flush."""
    from flask_observe import statsd_client
    from flask_observe.statsd_client import StatsdClient

    real_getaddrinfo = socket.getaddrinfo
    resolvable = False

    def getaddrinfo(host: t.Any, port: t.Any, *args: t.Any, **kwargs: t.Any) -> t.Any:
        if host == "statsd.flask-observe.test":
            if not resolvable:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
            host = "127.0.0.1"
        return real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(statsd_client, "_clients", weakref.WeakSet())
    caplog.set_level(logging.WARNING, logger="flask_observe")
    client = StatsdClient(
        "statsd.flask-observe.test", udp.port, flush_interval=60.0, resolve_interval=3600.0
    )
    try:
        client.add(["lost:1|c"])
        client.flush()  # fails: the next attempt in an hour
        assert client.dropped_lines == 1
        resolvable = True
        client.add(["waits:1|c"])
        client.flush()
        assert client.dropped_lines == 2  # not retried yet
        statsd_client._after_fork_in_child()
        client.add(["child:1|c"])
        client.flush()
        assert udp.wait_for(1) == ["child:1|c"]
    finally:
        client.close()
    assert client.dropped_lines == 2
    assert [r.getMessage() for r in caplog.records] == [
        "Flask-Observe: statsd at udp://statsd.flask-observe.test:"
        f"{udp.port} is unavailable ([Errno -2] Name or service not known); metrics are "
        "dropped and the connection is retried every 3600 s in the background.",
        f"Flask-Observe: statsd at udp://statsd.flask-observe.test:{udp.port} is reachable again.",
    ]


class _FailingClose:
    def lines(self) -> list[str]:
        return []

    def close(self) -> None:
        raise RuntimeError("the source failed to close")


def test_at_exit_every_client_is_flushed_even_after_one_fails_to_close(
    monkeypatch: pytest.MonkeyPatch, udp: UdpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """The exit hook, called here directly as atexit calls it: every open client sends
    what it buffered, a client that fails to close is logged with its traceback and
    the others are still closed."""
    from flask_observe import statsd_client
    from flask_observe.statsd_client import StatsdClient

    monkeypatch.setattr(statsd_client, "_clients", weakref.WeakSet())
    caplog.set_level(logging.WARNING, logger="flask_observe")
    failing = StatsdClient("127.0.0.1", udp.port, flush_interval=60.0)
    failing.add_source(_FailingClose())
    other = StatsdClient("127.0.0.1", udp.port, flush_interval=60.0)
    failing.add(["failing:1|c"])  # each starts its sender thread
    other.add(["other:1|c"])
    assert len(_sender_threads(f"flask-observe-statsd udp://127.0.0.1:{udp.port}")) == 2
    statsd_client.close_all()
    assert sorted(udp.wait_for(2)) == ["failing:1|c", "other:1|c"]
    assert [r.getMessage() for r in caplog.records] == [
        "Flask-Observe: closing a statsd client failed"
    ]
    exc_info = caplog.records[0].exc_info
    assert exc_info is not None
    assert str(exc_info[1]) == "the source failed to close"
    assert _sender_threads(f"flask-observe-statsd udp://127.0.0.1:{udp.port}") == []
    assert failing.sent_packets == other.sent_packets == 1


class _FailingOnce:
    """A flush source that breaks its contract once: its first lines() raises."""

    def __init__(self) -> None:
        self.calls = 0

    def lines(self) -> list[str]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("the source failed")
        return []

    def close(self) -> None:
        pass


def test_the_sender_thread_outlives_a_flush_that_raises(
    udp: UdpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """A source that raises, against its contract, costs the thread one flush and a
    warning with the traceback; the buffered line goes out at the next flush."""
    from flask_observe.statsd_client import StatsdClient

    caplog.set_level(logging.WARNING, logger="flask_observe")
    client = StatsdClient("127.0.0.1", udp.port, flush_interval=0.05)
    client.add_source(_FailingOnce())
    try:
        client.add(["tick:1|c"])  # starts the thread; its first flush raises
        assert udp.wait_for(1) == ["tick:1|c"]
    finally:
        client.close()
    assert [r.getMessage() for r in caplog.records] == ["Flask-Observe: statsd send failed"]
    exc_info = caplog.records[0].exc_info
    assert exc_info is not None
    assert str(exc_info[1]) == "the source failed"


def test_a_line_that_is_not_ascii_is_sent_with_question_marks(udp: UdpReceiver) -> None:
    """Names that go through metrics are cleaned to ASCII; a line added directly (or by a
    flush source) that is not is sent with "?" for each other character, by the caller
    that fills a packet as by the flush, and never raises on either path."""
    from flask_observe.statsd_client import StatsdClient

    client = StatsdClient("127.0.0.1", udp.port, max_packet=20, flush_interval=60.0)
    try:
        client.add(["first:1|c"])
        client.flush()  # connects
        assert udp.wait_for(1) == ["first:1|c"]
        client.add(["café:1|c"])
        client.add(["naïve.one:1|c"])  # does not fit: the caller sends the full packet
        assert udp.wait_for(1) == ["caf?:1|c"]
        client.flush()
        assert udp.wait_for(1) == ["na?ve.one:1|c"]
    finally:
        client.close()
    assert client.dropped_lines == 0


def test_a_request_never_waits_for_the_sender_thread_mid_send(udp: UdpReceiver) -> None:
    """A full packet is sent by the caller only when the socket is free; while the sender
    thread holds it (held here by the test), the caller leaves the packet to the thread
    and returns at once."""
    from flask_observe.statsd_client import StatsdClient

    client = StatsdClient("127.0.0.1", udp.port, max_packet=20, flush_interval=60.0)
    returned = threading.Event()

    def request() -> None:
        client.add(["a" * 12 + ":1|c"])
        client.add(["b" * 12 + ":1|c"])  # does not fit: the first packet is full
        returned.set()

    try:
        client.add(["first:1|c"])
        client.flush()  # connects
        assert udp.wait_for(1) == ["first:1|c"]
        with client._send_lock:  # the sender thread, mid-send
            caller = threading.Thread(target=request)
            caller.start()
            assert returned.wait(5)
            assert client.sent_packets == 1
        caller.join(5)
        client.flush()
        assert sorted(udp.wait_for(2)) == ["aaaaaaaaaaaa:1|c", "bbbbbbbbbbbb:1|c"]
    finally:
        client.close()


def test_a_unix_receiver_that_stops_reading_never_blocks_the_caller(tmp_path: Path) -> None:
    """A Unix datagram receiver whose queue is full makes a blocking send wait until it
    reads again; the client's socket does not block: the packets it cannot take are
    dropped and counted, and the caller goes on."""
    from flask_observe.statsd_client import StatsdClient

    path = str(tmp_path / "statsd.sock")
    returned = threading.Event()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(path)  # and never read
        client = StatsdClient(path, protocol="unix", max_packet=20, flush_interval=60.0)

        def requests() -> None:
            for number in range(5000):
                client.add([f"m{number:04}:1|c"])  # 9 bytes: two lines a packet
            returned.set()

        caller = threading.Thread(target=requests)
        try:
            client.add(["first:1|c"])
            client.flush()  # connects
            caller.start()
            assert returned.wait(10)
            assert client.dropped_lines > 0
        finally:
            server.close()  # wakes a send blocked on it
            if caller.ident is not None:
                caller.join(5)
            client.close()


def test_a_tcp_send_that_fails_reconnects_for_the_next_packet(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The daemon resets the connection: the packet being sent is dropped and counted,
    with a warning, and the next packet of the same flush goes out on a new connection."""
    from flask_observe.statsd_client import StatsdClient

    caplog.set_level(logging.WARNING, logger="flask_observe")
    with _tcp_listener(2) as (server, port):
        client = StatsdClient("127.0.0.1", port, protocol="tcp", max_packet=20, flush_interval=60.0)
        try:
            with _connected(client, server) as first:
                # Close with a reset rather than a FIN: the client's next send fails.
                first.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.add(["a" * 12 + ":1|c", "b" * 12 + ":1|c"])  # two packets of one line
            client.flush()
            second, _ = server.accept()
            with second:
                second.settimeout(5)
                assert second.recv(4096) == b"bbbbbbbbbbbb:1|c\n"
        finally:
            client.close()
    assert client.dropped_lines == 1
    assert client.sent_packets == 2
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1
    target = f"tcp://127.0.0.1:{port}"
    assert warned[0].startswith(f"Flask-Observe: sending metrics to {target} failed: ")


def test_each_outage_is_warned_about_once_and_each_recovery_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Down, up, down again: two "unavailable" warnings and one "reachable again"."""
    from flask_observe.statsd_client import StatsdClient

    caplog.set_level(logging.WARNING, logger="flask_observe")
    server = socket.socket()
    try:
        server.bind(("127.0.0.1", 0))  # not listening yet: connections are refused
        server.settimeout(5)
        port = server.getsockname()[1]
        client = StatsdClient(
            "127.0.0.1", port, protocol="tcp", flush_interval=60.0, resolve_interval=0.0
        )
        try:
            client.add(["down:1|c"])
            client.flush()
            client.add(["still.down:1|c"])
            client.flush()
            server.listen(1)
            client.add(["up:1|c"])
            client.flush()
            conn, _ = server.accept()
            with conn:
                conn.settimeout(5)
                assert conn.recv(4096) == b"up:1|c\n"
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            server.close()  # down again: the send fails, and so does the reconnection
            client.add(["down.again:1|c"])
            client.flush()
        finally:
            client.close()
    finally:
        server.close()
    target = f"tcp://127.0.0.1:{port}"
    reset = f"[Errno {errno.ECONNRESET}] {os.strerror(errno.ECONNRESET)}"
    warned = [r.getMessage().split(" (")[0] for r in caplog.records]
    assert warned == [
        f"Flask-Observe: statsd at {target} is unavailable",
        f"Flask-Observe: statsd at {target} is reachable again.",
        f"Flask-Observe: sending metrics to {target} failed: {reset}",
        f"Flask-Observe: statsd at {target} is unavailable",
    ]


def test_the_defaults_are_statsds_port_a_packet_that_fits_ethernet_and_half_a_second(
    udp: UdpReceiver,
) -> None:
    """Port 8125; packets of at most 1,432 bytes (a 1,500-byte Ethernet frame less the IP
    and UDP headers, with room to spare); a flush every 0.5 s; a new attempt to resolve or
    connect every 10 s."""
    from flask_observe.statsd_client import StatsdClient

    default = StatsdClient("127.0.0.1")
    default.close()
    assert default.target == "udp://127.0.0.1:8125"
    assert default.flush_interval == 0.5
    assert default.resolve_interval == 10.0
    client = StatsdClient("127.0.0.1", udp.port)
    longest = "x" * 1428 + ":1|c"
    try:
        client.add([longest])
        client.add([longest + "x"])
        client.flush()
        assert udp.wait_for(1) == [longest]
    finally:
        client.close()
    assert client.dropped_lines == 1


def test_an_unknown_protocol_is_refused() -> None:
    from flask_observe.statsd_client import StatsdClient

    with pytest.raises(ValueError) as refused:
        StatsdClient("127.0.0.1", protocol="sctp")
    assert str(refused.value) == "unknown statsd protocol 'sctp'"


def test_the_first_packet_is_filled_to_the_byte(udp: UdpReceiver) -> None:
    """From a new client's empty buffer, as after each flush: two 9-byte lines and their
    newline fill a packet of 19 bytes."""
    from flask_observe.statsd_client import StatsdClient

    client = StatsdClient("127.0.0.1", udp.port, max_packet=19, flush_interval=60.0)
    try:
        client.add(["ab:1234|c"])
        client.add(["cd:1234|c"])
        client.flush()
        assert udp.wait_for(2) == ["ab:1234|c", "cd:1234|c"]
    finally:
        client.close()
    assert udp.packets == ["ab:1234|c\ncd:1234|c"]


class _Lines:
    """A flush source handing over the lines set for the next flush (the aggregator's
    and the process figures' path into the packets)."""

    def __init__(self) -> None:
        self.next: list[str] = []

    def lines(self) -> list[str]:
        lines, self.next = self.next, []
        return lines

    def close(self) -> None:
        pass


def _greedy(lines: list[str], limit: int) -> list[str]:
    """Packets as a reader of the docs expects them: lines in order, joined by newlines,
    each packet as full as the limit allows; a line longer than the limit dropped."""
    packets: list[str] = []
    current: list[str] = []
    for line in lines:
        if len(line) > limit:
            continue
        if current and len("\n".join([*current, line])) > limit:
            packets.append("\n".join(current))
            current = []
        current.append(line)
    if current:
        packets.append("\n".join(current))
    return packets


@pytest.mark.parametrize("limit", [6, 7, 9])
def test_flushed_lines_fill_each_packet_to_the_byte(udp: UdpReceiver, limit: int) -> None:
    """Every way of putting up to three lines of 1 to 8 bytes around a limit: each packet
    is as full as it can be without passing the limit, in order, and only a line
    longer than the limit is left out. Flushed through a real client to a UDP socket."""
    import itertools

    from flask_observe.statsd_client import StatsdClient

    udp.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)  # 1,000 datagrams
    source = _Lines()
    client = StatsdClient("127.0.0.1", udp.port, max_packet=limit, flush_interval=60.0)
    client.add_source(source)
    expected: list[str] = []
    try:
        for count in (1, 2, 3):
            for lengths in itertools.product(range(1, 9), repeat=count):
                source.next = [chr(ord("a") + index) * n for index, n in enumerate(lengths)]
                expected += _greedy(source.next, limit)
                client.flush()
        udp.wait_for(sum(packet.count("\n") + 1 for packet in expected))
    finally:
        client.close()
    assert udp.packets == expected


class _FlushTimes:
    """A flush source that notes when each flush asked for its lines."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def lines(self) -> list[str]:
        self.times.append(time.monotonic())
        return []

    def close(self) -> None:
        pass


def _request_names(key: tuple[str | None, str, str | None]) -> t.Any:
    from flask_observe.aggregation import RequestNames
    from flask_observe.aggregation import TimerSeries

    endpoint, method, status = key
    return RequestNames(
        TimerSeries(f"request.{endpoint}.{method}", ""), f"response.{endpoint}:%s|c"
    )


def test_with_an_aggregator_the_sender_flushes_once_per_interval() -> None:
    """With an aggregator the sender thread also wakes to collect pending requests, but
    it flushes once per flush interval (0.3 s here), no more often."""
    from flask_observe.aggregation import Aggregator
    from flask_observe.statsd_client import StatsdClient

    client = StatsdClient(
        "127.0.0.1", 9, flush_interval=0.3, aggregator=Aggregator(4, _request_names)
    )
    source = _FlushTimes()
    client.add_source(source)
    try:
        client.start()
        time.sleep(1.0)
        flushes = list(source.times)  # at 0.3, 0.6 and 0.9 s
    finally:
        client.close()
    assert len(flushes) <= 3
    assert all(
        later - earlier >= 0.25 for earlier, later in zip(flushes, flushes[1:], strict=False)
    )


def test_without_an_aggregator_the_sender_sleeps_the_whole_interval() -> None:
    """Without an aggregator there is nothing to collect: the sender thread's first flush
    comes after the flush interval (1.5 s here), not at the collection interval."""
    from flask_observe.statsd_client import StatsdClient

    client = StatsdClient("127.0.0.1", 9, flush_interval=1.5)
    source = _FlushTimes()
    client.add_source(source)
    try:
        client.start()
        time.sleep(0.8)
        assert source.times == []
    finally:
        client.close()


def test_a_full_tcp_packet_wakes_the_sender_to_flush_with_an_aggregator() -> None:
    """Over TCP the caller never sends: a full packet wakes the sender thread, which
    flushes at once even though the interval is a minute and it has an aggregator (whose
    collections between flushes send nothing)."""
    from flask_observe.aggregation import Aggregator
    from flask_observe.statsd_client import StatsdClient

    with _tcp_listener(1) as (server, port):
        client = StatsdClient(
            "127.0.0.1",
            port,
            protocol="tcp",
            max_packet=20,
            flush_interval=60.0,
            aggregator=Aggregator(4, _request_names),
        )
        try:
            with _connected(client, server) as conn:
                client.add(["a" * 12 + ":1|c"])
                client.add(["b" * 12 + ":1|c"])  # the first packet is full
                assert conn.recv(4096).startswith(b"aaaaaaaaaaaa:1|c\n")
        finally:
            client.close()
