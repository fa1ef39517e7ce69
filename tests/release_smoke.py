"""What a user gets from ``pip install Flask-Observe[all]``, checked from outside the checkout.

Run by ``tests/test_release.py`` with the Python of a fresh virtualenv that has only the
built wheel (and its dependencies) installed, in isolated mode (``-I``) from a directory
that is not the checkout. Prints one ``ok: ...`` line per check and exits non-zero (an
``AssertionError``) at the first that fails.

Usage::

    VENV/bin/python -I release_smoke.py EXPECTED_VERSION
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import socket
import sys
import time
from pathlib import Path

from flask import abort
from flask import Flask
from flask_debugtoolbar import DebugToolbarExtension

import flask_observe
from flask_observe import Observe

PAGE = "<!doctype html><html><head><title>t</title></head><body><p>hello</p></body></html>"


def ok(what: str) -> None:
    print(f"ok: {what}", flush=True)


def check_installed(expected: str) -> None:
    """The wheel, not a checkout: the package lives in this venv's site-packages."""
    where = Path(flask_observe.__file__).resolve()
    assert Path(sys.prefix).resolve() in where.parents, f"imported from {where}"
    assert "site-packages" in where.parts, where
    assert flask_observe.__version__ == expected, (flask_observe.__version__, expected)
    assert importlib.metadata.version("Flask-Observe") == expected
    ok(f"Flask-Observe {expected} from {where.parent}")


def check_package_data() -> None:
    """The panels' templates and static files and the typing marker are in the wheel."""
    package = importlib.resources.files("flask_observe")
    assert package.joinpath("py.typed").is_file()
    templates = package.joinpath("panels", "templates")
    names = sorted(item.name for item in templates.iterdir() if item.name.endswith(".html"))
    for name in ("memory.html", "observe.html", "profiler.html", "report.html"):
        assert name in names, names
    css = package.joinpath("panels", "static", "observe.css").read_text(encoding="utf-8")
    assert "{" in css
    ok(f"templates {', '.join(names)} and static observe.css present")


def check_headers_metrics_errors() -> None:
    """Timing headers, a statsd line on a local UDP socket, problem+json."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(10)
    try:
        app = Flask("smoke")
        app.config.update(
            TESTING=True,
            OBSERVE_STATSD_HOST="127.0.0.1",
            OBSERVE_STATSD_PORT=receiver.getsockname()[1],
            OBSERVE_STATSD_PREFIX="smoke",
            OBSERVE_STATSD_AGGREGATE=False,
        )

        @app.get("/hello")
        def hello() -> str:
            return "hello"

        @app.get("/gone")
        def gone() -> str:
            abort(410)

        Observe(app)
        client = app.test_client()

        response = client.get("/hello")
        assert response.status_code == 200
        runtime = float(response.headers["X-Runtime"])
        assert 0 <= runtime < 10, runtime
        assert "dur=" in response.headers["Server-Timing"], response.headers
        ok(f"X-Runtime {response.headers['X-Runtime']}, Server-Timing present")

        deadline = time.monotonic() + 10
        lines: list[str] = []
        while time.monotonic() < deadline and not any("hello" in x for x in lines):
            lines += receiver.recv(65536).decode("ascii").splitlines()
        assert any(line.startswith("smoke.") and "hello" in line for line in lines), lines
        ok(f"statsd lines on a local socket: {', '.join(lines)}")

        response = client.get("/gone")
        assert response.status_code == 410
        assert response.mimetype == "application/problem+json", response.mimetype
        problem = response.get_json()
        assert problem["status"] == 410 and problem["title"], problem
        ok(f"problem+json {problem}")

        from flask_observe import metrics

        statsd_client = metrics.client(app)
        if statsd_client is not None:
            statsd_client.close()
    finally:
        receiver.close()


def check_panels() -> None:
    """The toolbar shows our panels rendered from the installed templates, and our
    blueprint serves the static files and the report pages."""
    app = Flask("smoke_panels")
    app.config.update(DEBUG=True, SECRET_KEY="smoke-test-key")

    @app.get("/")
    def page() -> str:
        return PAGE

    @app.get("/json")
    def json_view() -> dict[str, int]:
        return {"answer": 42}

    Observe(app)
    DebugToolbarExtension(app)
    client = app.test_client()

    html = client.get("/").get_data(as_text=True)
    assert "flDebug" in html, "no toolbar on the page"
    for panel in ("ObservePanel", "MemoryPanel"):
        assert panel in html, f"{panel} missing from the toolbar"
    assert 'id="observe-panel"' in html and 'id="observe-clock"' in html, "panel not rendered"
    ok("toolbar page lists the Observe and Memory panels, observe.html rendered")

    css = client.get("/_observe/static/observe.css")
    assert css.status_code == 200 and css.mimetype == "text/css", css.status
    css.close()
    ok("static /_observe/static/observe.css served")

    response = client.get("/json")
    report_url = response.headers["X-Observe-Report"]
    response.close()
    report = client.get(report_url)
    assert report.status_code == 200, report.status
    text = report.get_data(as_text=True)
    assert "GET /json" in text and "observe.css" in text, text[:500]
    ok(f"report page {report_url} rendered from the installed templates")


def main() -> None:
    [expected] = sys.argv[1:]
    check_installed(expected)
    check_package_data()
    check_headers_metrics_errors()
    check_panels()
    print("smoke test passed", flush=True)


if __name__ == "__main__":
    main()
