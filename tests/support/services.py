"""The real services some tests start, and the rule that keeps them out of the fast loop.

* The metrics pipeline: the statsd daemon, carbon-cache and graphite-web, installed under
  .cache/ by ``make services`` (scripts/setup/10-statsd-graphite.sh), started by
  :func:`run_graphite_pipeline` on free loopback ports in a temporary directory and
  stopped afterwards. A missing piece fails loudly.
* The browser: Debian's chromium (scripts/setup/20-chromium.sh) with the flags that let it
  run offline and headless (:data:`CHROMIUM`, :data:`CHROMIUM_ARGS`), and
  :func:`serve_in_thread` to serve an app over real HTTP for it.
* gunicorn: :func:`serve_demo` serves the demo app under gunicorn with
  :func:`benchmarks.harness.gunicorn`, the launcher the benchmarks use. This module is
  the one place where the tests' helpers import from ``benchmarks/``; a test that needs
  gunicorn asks here.
* The marker: a test that starts a daemon, a server, a subprocess server (gunicorn,
  ``flask run``, Flask's own suite), a browser or a tool that ``make services`` installs
  (wrk, valgrind) is marked ``@pytest.mark.services``, so that ``pytest -m "not
  services"`` is the fast loop. A fixture that starts one is decorated with
  :func:`starts_services`; ``tests/conftest.py`` refuses a run in which a test uses such a
  fixture without the marker (:func:`unmarked_service_users`). Tests that start a process
  themselves carry the marker by hand. In-process loopback stand-ins (a UDP socket, the
  Sentry :class:`~tests.support.sentry.EnvelopeReceiver`) are not services.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import threading
import time
import typing as t
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from werkzeug.serving import make_server

if t.TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Iterator

    from flask import Flask
    from playwright.sync_api import Page

F = t.TypeVar("F", bound=t.Callable[..., object])

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache"
STATSD_JS = CACHE / "statsd" / "node_modules" / "statsd" / "stats.js"
GRAPHITE_VENV = CACHE / "graphite-venv"
CARBON_CACHE = GRAPHITE_VENV / "bin" / "carbon-cache.py"
DJANGO_ADMIN = GRAPHITE_VENV / "bin" / "django-admin"

STORAGE_SCHEMAS = """\
[flask_observe_tests]
pattern = .*
retentions = 1s:1h,10s:1d,60s:30d
"""

STORAGE_AGGREGATION = """\
[counts]
pattern = \\.count$
xFilesFactor = 0
aggregationMethod = sum

[default]
pattern = .*
xFilesFactor = 0
aggregationMethod = average
"""


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Pipeline:
    """Where the running services listen, and a reader for graphite-web's API."""

    def __init__(self, statsd_ports: list[int], graphite_url: str) -> None:
        #: The UDP ports of the statsd daemons, all flushing to the one carbon-cache
        #: (two hosts' daemons, in the several-hosts test).
        self.statsd_ports = statsd_ports
        #: The first daemon's port: where a test sends unless it plays several hosts.
        self.statsd_port = statsd_ports[0]
        self.graphite_url = graphite_url

    def send(self, lines: list[str], daemon: int = 0) -> None:
        """Send *lines* in one datagram to statsd daemon number *daemon*."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto("\n".join(lines).encode(), ("127.0.0.1", self.statsd_ports[daemon]))

    def render(self, target: str, since: str = "-10min") -> list[dict[str, t.Any]]:
        """``/render?format=json`` for one target: a list of series."""
        query = urllib.parse.urlencode({"target": target, "from": since, "format": "json"})
        # Long enough for a query that waits on the tag database while carbon writes to it.
        with urllib.request.urlopen(f"{self.graphite_url}/render?{query}", timeout=60) as reply:
            data: list[dict[str, t.Any]] = json.load(reply)
        return data

    def total(self, target: str) -> float:
        """Sum of every non-null datapoint of every series of *target*."""
        return sum(self.values(target))

    def values(self, target: str) -> list[float]:
        """Every non-null datapoint of every series of *target*."""
        return [
            value
            for series in self.render(target)
            for value, _ in series["datapoints"]
            if value is not None
        ]

    def wait_for_total(self, target: str, expected: float, timeout: float = 15.0) -> float:
        """Poll until the sum of *target* reaches *expected* (or the time is up)."""
        deadline = time.monotonic() + timeout
        total = self.total(target)
        while total < expected and time.monotonic() < deadline:
            time.sleep(0.25)
            total = self.total(target)
        return total

    def wait_for_stable_total(self, target: str, at_least: float, timeout: float = 15.0) -> float:
        """Poll until the sum of *target* is at least *at_least* and unchanged over a
        statsd flush (all lines arrived)."""
        total = self.wait_for_total(target, at_least, timeout)
        while True:
            time.sleep(1.2)
            again = self.total(target)
            if again == total:
                return total
            total = again


def _require(path: Path, what: str) -> None:
    if not path.exists():
        pytest.fail(
            f"{what} is not installed ({path} is missing). Run `make services` "
            "(scripts/setup/10-statsd-graphite.sh) first.",
            pytrace=False,
        )


def _wait_tcp(port: int, process: subprocess.Popen[bytes], name: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{name} exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"{name} did not listen on 127.0.0.1:{port}: {log.read_text()[-3000:]}")


def _start(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log.parent)


@contextlib.contextmanager
def run_graphite_pipeline(base: Path, daemons: int = 1) -> Iterator[Pipeline]:
    """*daemons* statsd daemons (1 s flush, graphite backend, as on that many hosts) ->
    carbon-cache (1 s retention, tagged series registered with graphite-web) ->
    graphite-web, all on 127.0.0.1, started in parallel and stopped at the end; their
    configuration, data and logs under the empty directory *base*."""
    _require(STATSD_JS, "The statsd daemon (npm statsd@0.9)")
    _require(CARBON_CACHE, "carbon")
    _require(DJANGO_ADMIN, "graphite-web")
    storage = base / "storage"
    conf = base / "conf"
    for directory in (storage / "whisper", storage / "log" / "webapp", conf, base / "run"):
        directory.mkdir(parents=True)
    (conf / "storage-schemas.conf").write_text(STORAGE_SCHEMAS)
    (conf / "storage-aggregation.conf").write_text(STORAGE_AGGREGATION)
    line_port, pickle_port, query_port = free_port(), free_port(), free_port()
    web_port = free_port()
    (conf / "carbon.conf").write_text(
        f"""[cache]
STORAGE_DIR = {storage}/
LOCAL_DATA_DIR = {storage}/whisper/
WHITELISTS_DIR = {storage}/lists/
CONF_DIR = {conf}/
LOG_DIR = {storage}/log/
PID_DIR = {base}/run/
USER =
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {line_port}
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = {pickle_port}
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = {query_port}
LOG_LISTENER_CONN_SUCCESS = False
LOG_UPDATES = False
LOG_CREATES = False
GRAPHITE_URL = http://127.0.0.1:{web_port}
TAG_UPDATE_INTERVAL = 1
"""
    )
    statsd_ports = [free_port(socket.SOCK_DGRAM) for _ in range(daemons)]
    mgmt_ports = [free_port() for _ in range(daemons)]
    for number, (statsd_port, mgmt_port) in enumerate(zip(statsd_ports, mgmt_ports, strict=True)):
        (base / f"statsd-{number}.js").write_text(
            json.dumps(
                {
                    "port": statsd_port,
                    "address": "127.0.0.1",
                    "mgmt_port": mgmt_port,
                    "mgmt_address": "127.0.0.1",
                    "flushInterval": 1000,
                    "backends": ["./backends/graphite"],
                    "graphiteHost": "127.0.0.1",
                    "graphitePort": line_port,
                    "graphite": {"legacyNamespace": False},
                    "deleteIdleStats": True,
                }
            )
        )
    settings_dir = base / "settings"
    settings_dir.mkdir()
    (settings_dir / "observe_graphite_settings.py").write_text(
        f"""SECRET_KEY = "flask-observe-tests-only"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
STORAGE_DIR = {str(storage)!r}
WHISPER_DIR = {str(storage / "whisper")!r}
LOG_DIR = {str(storage / "log" / "webapp")!r}
INDEX_FILE = {str(storage / "index")!r}
CONF_DIR = {str(conf)!r}
CARBONLINK_HOSTS = ["127.0.0.1:{query_port}:a"]
DATABASES = {{"default": {{"ENGINE": "django.db.backends.sqlite3",
    "NAME": {str(storage / "graphite.db")!r}, "OPTIONS": {{"timeout": 30}}}}}}
"""
    )
    web_env = dict(
        os.environ,
        PYTHONPATH=str(settings_dir),
        DJANGO_SETTINGS_MODULE="graphite.settings",
        GRAPHITE_SETTINGS_MODULE="observe_graphite_settings",
    )
    # migrate (graphite-web) runs while carbon and statsd start.
    migrate = _start([str(DJANGO_ADMIN), "migrate", "--noinput"], base / "migrate.log", web_env)
    carbon = _start(
        [
            str(GRAPHITE_VENV / "bin" / "python"),
            str(CARBON_CACHE),
            f"--config={conf / 'carbon.conf'}",
            f"--logdir={storage / 'log'}",
            f"--pidfile={base / 'run' / 'carbon.pid'}",
            "--nodaemon",
            "start",
        ],
        base / "carbon.log",
    )
    statsds = [
        _start(["node", str(STATSD_JS), str(base / f"statsd-{n}.js")], base / f"statsd-{n}.log")
        for n in range(daemons)
    ]
    processes = [migrate, carbon, *statsds]
    try:
        if migrate.wait(timeout=120) != 0:
            pytest.fail(f"graphite-web migrate failed: {(base / 'migrate.log').read_text()}")
        web = _start(
            [str(DJANGO_ADMIN), "runserver", f"127.0.0.1:{web_port}", "--noreload"],
            base / "web.log",
            web_env,
        )
        processes.append(web)
        _wait_tcp(line_port, carbon, "carbon-cache", base / "carbon.log")
        for number, (statsd, mgmt_port) in enumerate(zip(statsds, mgmt_ports, strict=True)):
            _wait_tcp(mgmt_port, statsd, "statsd", base / f"statsd-{number}.log")
        _wait_tcp(web_port, web, "graphite-web", base / "web.log")
        pipeline = Pipeline(statsd_ports, f"http://127.0.0.1:{web_port}")
        pipeline.render("stats.none")  # fails here if graphite-web cannot answer
        yield pipeline
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


#: Debian's chromium, installed by ``make services`` (never ``playwright install``).
CHROMIUM = "/usr/bin/chromium"
#: Headless, offline, in a container: no sandbox, GPU, QUIC or background traffic.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


@contextlib.contextmanager
def chromium_page(profile: Path, **options: t.Any) -> Iterator[Page]:
    """A page of Debian's headless Chromium driven by playwright, with a fresh profile
    under *profile* (:data:`CHROMIUM_ARGS`); the browser is closed on exit. A missing
    Chromium fails the test (``make services`` installs it). ``page.context`` opens
    more pages.

    :param profile: a directory for the user-data dir, e.g. ``tmp_path / "profile"``.
    :param options: more options for ``launch_persistent_context`` (``viewport``...).
    """
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `make services` (as root) to install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, **options
        )
        try:
            yield browser.new_page()
        finally:
            browser.close()


@contextlib.contextmanager
def serve_in_thread(app: Flask) -> Iterator[str]:
    """Serve *app* over HTTP on a free loopback port from a background thread (Werkzeug's
    threaded server); yield its base URL, shut it down afterwards."""
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        httpd.server_close()


#: The names of the fixtures that start a service (see :func:`starts_services`).
SERVICE_FIXTURES: set[str] = set()


@contextlib.contextmanager
def serve_demo(
    config: dict[str, object],
    *,
    workers: int = 4,
    threads: int = 1,
    extra_args: tuple[str, ...] = (),
) -> Iterator[str]:
    """Serve ``demo_app:create_app()`` under gunicorn (:func:`benchmarks.harness.gunicorn`,
    warmed up on ``/health``); yields its base URL. *config* reaches the app through
    ``FLASK_*`` environment variables (the demo reads them with ``from_prefixed_env``)."""
    # The one place tests/support imports from benchmarks/ (here, not at the top:
    # importing the benchmarks package applies a benchmark memory layout when asked to).
    from benchmarks.harness import gunicorn

    env = {f"FLASK_{key}": json.dumps(value) for key, value in config.items()}
    with gunicorn(
        "demo_app:create_app()", workers=workers, threads=threads, env=env,
        extra_args=extra_args, warm_up="/health",
    ) as url:  # fmt: skip
        yield url


def starts_services(fixture_function: F) -> F:
    """Declare that a fixture starts a service, so that every test using it, directly or
    through another fixture, must be marked ``@pytest.mark.services``. Goes under
    ``@pytest.fixture``; the fixture's name is its function's name::

        @pytest.fixture(scope="module")
        @starts_services
        def server() -> Iterator[str]: ...
    """
    SERVICE_FIXTURES.add(fixture_function.__name__)
    return fixture_function


def unmarked_service_users(items: Iterable[pytest.Item]) -> list[str]:
    """The tests among *items* that use a service fixture without the ``services``
    marker, as ``node id (uses fixture, ...)``."""
    unmarked = []
    for item in items:
        used = SERVICE_FIXTURES.intersection(getattr(item, "fixturenames", ()))
        if used and item.get_closest_marker("services") is None:
            unmarked.append(f"{item.nodeid} (uses {', '.join(sorted(used))})")
    return unmarked
