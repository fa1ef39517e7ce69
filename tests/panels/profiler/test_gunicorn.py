"""The Profiler panel under gunicorn's ``gthread`` workers: two overlapping requests in
one worker process, each with its own flame graph."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import typing as t
import urllib.request
from html import unescape
from pathlib import Path

import pytest

if t.TYPE_CHECKING:
    from flask import Flask

ROOT = Path(__file__).resolve().parents[3]
#: Both views wait here for each other: the requests overlap in the worker.
BARRIER = threading.Barrier(2, timeout=20)


def spin(seconds: float) -> int:
    end = time.perf_counter() + seconds
    count = 0
    while time.perf_counter() < end:
        count += 1
    return count


def create_app() -> Flask:
    """The app gunicorn serves (a debug app with the toolbar and our panels)."""
    from tests.support.toolbar import make_toolbar_app
    from tests.support.toolbar import PAGE

    app = make_toolbar_app()

    @app.get("/north")
    def north_view() -> str:
        BARRIER.wait()
        spin(0.1)
        return PAGE.format("north")

    @app.get("/south")
    def south_view() -> str:
        BARRIER.wait()
        spin(0.1)
        return PAGE.format("south")

    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fetch(url: str) -> str:
    request = urllib.request.Request(
        url, headers={"Cookie": "fldt_active=flDebugSamplingProfilerPanel"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return t.cast(bytes, response.read()).decode("utf-8")


@pytest.mark.services
def test_overlapping_requests_in_one_gthread_worker() -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--worker-class",
        "gthread",
        "--workers",
        "1",
        "--threads",
        "4",
        "--bind",
        f"127.0.0.1:{port}",
        "tests.panels.profiler.test_gunicorn:create_app()",
    ]
    server = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                fetch(f"{base}/json")
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        pages: dict[str, str] = {}

        def get(path: str) -> None:
            html = fetch(f"{base}{path}")
            start = html.index('id="observe-profiler"')  # the panel (not the route list)
            pages[path] = unescape(html[start : html.index("</div>\n</div>", start)])

        threads = [threading.Thread(target=get, args=(path,)) for path in ("/north", "/south")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    north, south = pages["/north"], pages["/south"]
    assert "<title>create_app.<locals>.north_view\n" in north, errors
    assert "<title>create_app.<locals>.south_view\n" in south, errors
    assert "south_view" not in north and "north_view" not in south
    for page in (north, south):
        assert f"<title>spin\n{__file__}:{spin.__code__.co_firstlineno}\n" in page
