"""benchmarks/request_path.py: the stub answers as Flask does, so each middleware takes
the branch it takes behind Flask, and the table prints each one's distance from the
floor."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from tests.support.benchmarks import run_module
from tests.support.services import ROOT

#: Run in its own interpreter: production's configuration initialises sentry-sdk.
ANSWERS = """
import json
from benchmarks import harness, request_path
from flask_observe.timing import ObserveMiddleware

answers = {}
for name in request_path.NAMES:
    app = request_path.CONFIGURATIONS.build(name)
    handed = []
    middleware = getattr(app, "__self__", None)
    if isinstance(middleware, ObserveMiddleware) and middleware.sink is not None:
        middleware._sink_add = handed.append  # what the sink would be handed
    sent = []
    environ = request_path.CONFIGURATIONS.environ()
    def start_response(status, headers, exc_info=None):
        sent.append((status, [name for name, _ in headers]))
    body = b"".join(app(environ, start_response))
    answers[name] = [sent, body.decode(), [list(request[:3]) for request in handed]]
harness.close_all()
print(json.dumps(answers))
"""


def test_the_stub_answers_as_flask_and_each_middleware_hands_over_as_behind_flask() -> None:
    result = subprocess.run(
        [sys.executable, "-c", ANSWERS], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    answers = json.loads(result.stdout)
    flask = [["200 OK", ["Content-Type", "Content-Length"]]]
    timed = [["200 OK", ["Content-Type", "Content-Length", "X-Runtime", "Server-Timing"]]]
    assert answers == {
        "bare": [flask, "Hello, World!", []],
        "stub": [flask, "Hello, World!", []],
        "floor": [timed, "Hello, World!", []],
        "timing": [timed, "Hello, World!", []],
        # Complete as it starts, with Flask's request: one tuple handed over at once,
        # the endpoint read from the request's rule (the stub's request was routed to
        # the view "keep").
        "production": [timed, "Hello, World!", [["keep", "GET", "200 OK"]]],
    }


@pytest.mark.services
def test_the_table_gives_each_middlewares_distance_from_the_floor() -> None:
    """Under valgrind (installed by make services), one layout: a row per configuration;
    production's middleware costs more than the floor's, by well under 5 % of a bare
    Flask request."""
    out = run_module("benchmarks.request_path", "--layouts", "1", "--low", "20", "--high", "120")
    rows = {}
    for line in out.splitlines():
        match = re.match(
            r"^(\w+) +(\d+\.\d\d) k(?: +([+-]\d+\.\d\d) k +(\d+\.\d\d) k +([+-]\d+\.\d\d) %)?$",
            line,
        )
        if match:
            rows[match[1]] = match.groups()[1:]
    assert list(rows) == ["bare", "stub", "floor", "timing", "production"], out
    bare, stub = float(rows["bare"][0]), float(rows["stub"][0])
    assert rows["bare"][1] is None and rows["stub"][1] is None, out
    assert 0 < stub < bare / 10, out  # the stub is a small part of a Flask request
    assert rows["floor"][1:] == ("+0.00", "0.00", "+0.00"), out
    gap, _spread, percent = (float(value) for value in rows["production"][1:])
    assert 0 < gap and 0 < percent < 5, out
    assert abs(percent - gap / bare * 100) < 0.01, out
    assert "median of 1 memory layout(s)" in out
