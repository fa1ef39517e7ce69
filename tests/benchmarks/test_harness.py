"""benchmarks/harness.py: instructions counted under valgrind, memory layouts applied
before Flask is imported, the statsd flush interval under the time scale, and serving
processes that end with their parent."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from benchmarks import harness
from tests.support.benchmarks import ratio_table
from tests.support.services import ROOT


@pytest.mark.services
def test_instruction_mode_counts_each_configuration_under_valgrind() -> None:
    """Instructions (valgrind, installed by make services): a row per configuration with
    its count and ratio; timing costs more than bare Flask, not much more."""
    code = (
        "from benchmarks import harness; r = harness.CONFIGURATIONS; "
        "counts = harness.instructions(r, ['bare', 'timing'], 20, 120, layouts=2); "
        "harness.print_instructions(r, counts, 20, 120)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    out = result.stdout
    rows = ratio_table(out, ["bare", "timing"])
    assert 1.0 < rows["timing"][1] < 1.2, out  # the headers cost something, not much
    assert "median of 2 memory layout(s); 120 minus 20 requests each" in out


@pytest.mark.parametrize("layout", ["1", "2"])
def test_a_layout_is_applied_when_the_package_is_imported_before_flask(layout: str) -> None:
    """Each layout keeps its own seeded set of objects alive, allocated before Flask is
    imported: the harness imports only the standard library."""
    code = (
        "import sys; from benchmarks import harness; "
        "print(harness.shift_layout(), len(harness.layout_ballast), 'flask' in sys.modules)"
    )
    env = {**os.environ, harness.LAYOUT_KEY: layout}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    number, kept, flask_imported = result.stdout.split()
    assert (number, flask_imported) == (layout, "False"), result.stderr
    # Seeded: a layout always keeps the same objects, another layout others.
    assert kept == {"1": "522", "2": "1972"}[layout]


def test_statsd_flush_interval_is_stretched_under_the_time_scale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert harness.statsd_config(1)["OBSERVE_STATSD_FLUSH_INTERVAL"] == 0.5
    monkeypatch.setenv(harness.TIME_SCALE_KEY, str(harness.VALGRIND_SLOWDOWN))
    assert harness.statsd_config(1)["OBSERVE_STATSD_FLUSH_INTERVAL"] == 50.0


def test_a_serving_process_ends_with_the_process_that_started_it() -> None:
    """The helper processes (statsd drain, Sentry receiver) exit when their parent ends,
    even when it never closes them: a gunicorn worker stopped, a run interrupted."""
    code = (
        "from benchmarks import harness; "
        "print(harness.serving_process(harness.UDP_DRAIN_SCRIPT), flush=True)"
    )
    parent = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    port = int(parent.stdout)
    deadline = time.monotonic() + 10
    while True:  # the port is free again once the drain has gone
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
                break
            except OSError:
                assert time.monotonic() < deadline, "the drain outlived its parent"
                time.sleep(0.05)
