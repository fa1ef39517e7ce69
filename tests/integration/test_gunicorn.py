"""gunicorn with a preloaded app and forked workers: each worker sends its own metrics."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest

from tests.support.metrics import counter_total
from tests.support.metrics import timer_count
from tests.support.metrics import UdpReceiver
from tests.support.services import free_port


def start_gunicorn(app: str, statsd_port: int) -> tuple[subprocess.Popen[bytes], int]:
    """gunicorn serving *app* (a ``module:factory()`` spec) preloaded in two forked
    workers on a free loopback port, its metrics sent to *statsd_port*."""
    port = free_port()
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = subprocess.Popen(
        [str(gunicorn), "--preload", "--workers=2", f"--bind=127.0.0.1:{port}", app],
        env=dict(os.environ, OBSERVE_TEST_STATSD_PORT=str(statsd_port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return server, port


@pytest.mark.services
def test_gunicorn_workers_each_send_their_own(udp: UdpReceiver) -> None:
    """Preloaded app, two forked workers: every request is counted once, by the worker
    that served it, and the buffers are flushed when gunicorn stops the workers."""
    import signal
    import urllib.request

    server, port = start_gunicorn("tests.support.apps:gunicorn_metrics_app()", udp.port)
    served: list[str] = []
    try:
        deadline = time.monotonic() + 20
        while len(served) < 60 and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as reply:
                    served.append(reply.read().decode())
            except OSError:
                time.sleep(0.05)
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
    assert len(served) == 60, stderr
    lines = udp.wait_for(40)
    for pid in set(served):
        assert counter_total(lines, f"served.{pid}") == served.count(pid)
    assert counter_total(lines, "response.index.GET.200") == 60
    assert timer_count(lines, "request.index.GET") == 60


@pytest.mark.services
def test_gunicorn_workers_report_process_figures_in_bounded_slots(udp: UdpReceiver) -> None:
    """Two workers, one of them killed and replaced: three worker processes served, and
    their process figures arrive under two worker slots, ``w0`` and ``w1``."""
    import re
    import signal
    import urllib.request

    server, port = start_gunicorn("tests.support.apps:gunicorn_process_app()", udp.port)
    lines: list[str] = []
    after_replacement = 0

    def serve_until(done: t.Callable[[set[str]], bool], served: set[str]) -> None:
        deadline = time.monotonic() + 30
        while not done(served) and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as reply:
                    served.add(reply.read().decode())
            except OSError:
                time.sleep(0.05)
            lines.extend(udp.receive(0.01))

    served: set[str] = set()
    try:
        serve_until(lambda pids: len(pids) == 2, served)
        assert len(served) == 2, "both workers served"
        killed = min(served)
        os.kill(int(killed), signal.SIGKILL)  # gunicorn forks a replacement
        serve_until(lambda pids: len(pids) == 3, served)
        assert len(served) == 3, "the replacement served"
        drained = time.monotonic() + 0.3  # the killed worker's last datagrams
        while time.monotonic() < drained:
            lines.extend(udp.receive(0.01))
        after_replacement = len(lines)
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=30)
    lines.extend(udp.receive(0.5))

    def slots(seen: list[str]) -> set[str]:
        return {
            match.group(1)
            for line in seen
            if (match := re.fullmatch(r"gw\.process\.(w\d+)\.rss_bytes:\d+\|g", line))
        }

    assert slots(lines) == {"w0", "w1"}, stderr
    # After the kill, the survivor and the replacement: the dead worker's slot reused.
    assert slots(lines[after_replacement:]) == {"w0", "w1"}, stderr
