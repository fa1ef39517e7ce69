"""The benchmark scripts keep running and print whole tables: a row per configuration,
each figure compared with bare Flask's. The figures themselves are read by people; only
the deterministic ones (instructions, opcodes) are asserted against bare Flask."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks import harness
from benchmarks import overhead
from benchmarks import peers

ROOT = Path(__file__).resolve().parents[2]

#: A table row: the configuration, its figure, then (first on the line) its ratio to bare.
ROW = re.compile(
    r"^(?P<name>\S+) +(?P<figure>\d+(?:\.(?P<decimals>\d+))?)\b.*? (?P<ratio>\d+\.\d{3})x"
)


def run_module(module: str, *args: str) -> str:
    """Run a benchmark script in its own interpreter, as documented: some configurations
    (sentry-sdk) set process-global state that must not leak into the test process."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def ratio_table(out: str, names: list[str]) -> dict[str, tuple[float, float]]:
    """The rows of a benchmark table, name -> (figure, ratio to bare), checked: one row
    per configuration in *names*' order, bare's ratio exactly 1.000, every other ratio
    its own figure divided by bare's (to the printed precision), and not all of them
    1.000 (a table comparing nothing)."""
    rows = {}
    precision = {}
    for line in out.splitlines():
        match = ROW.match(line)
        if match and match["name"] in names:
            rows[match["name"]] = (float(match["figure"]), float(match["ratio"]))
            precision[match["name"]] = 0.5 * 10.0 ** -len(match["decimals"] or "")
    assert list(rows) == names, out
    base = rows["bare"][0]
    assert rows["bare"][1] == 1.0 and base > 0, out
    for name, (figure, ratio) in rows.items():
        rounding = 0.0005 + figure / base * (precision[name] / figure + precision["bare"] / base)
        assert abs(ratio - figure / base) <= rounding, (name, out)
    assert any(ratio != 1.0 for name, (_, ratio) in rows.items() if name != "bare"), out
    return rows


@pytest.mark.services
def test_overhead_runs_every_configuration() -> None:
    out = run_module("benchmarks.overhead", "--rounds", "2", "--requests", "3")
    ratio_table(out, list(overhead.NAMES))  # none skipped: make test installs all extras


@pytest.mark.services
def test_overhead_only_keeps_bare_first() -> None:
    out = run_module("benchmarks.overhead", "--only", "timing", "--rounds", "1", "--requests", "3")
    ratio_table(out, ["bare", "timing"])


@pytest.mark.services
def test_configurations_answer_like_bare_flask() -> None:
    """Every configuration serves the same trivial view, so the ratios compare alike."""
    out = run_module("benchmarks.overhead", "--check")
    assert out.splitlines() == [f"{name:<14} ok 200 OK" for name in overhead.NAMES]


def test_peers_in_process_runs_each_configuration_in_its_own_process(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert peers.main(["--mode", "inprocess", "--rounds", "1", "--requests", "3"]) == 0
    ratio_table(capsys.readouterr().out, list(peers.NAMES))


@pytest.mark.services
def test_peers_over_http_with_gunicorn_and_wrk(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--mode", "http", "--only", "timing", "--http-rounds", "1", "--seconds", "1"]
    assert peers.main(argv) == 0
    out = capsys.readouterr().out
    rows = ratio_table(out, ["bare", "timing"])
    assert all(rps > 100 for rps, _ in rows.values())  # requests/s measured
    assert "non-2xx" not in out


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


def test_opcode_counts_are_exact_and_name_the_request_path() -> None:
    """Two runs give the same counts (no layout moves them), and the difference from
    bare Flask is the middleware's own functions."""
    first = run_module("benchmarks.opcodes", "timing", "--requests", "3")
    second = run_module("benchmarks.opcodes", "timing", "--requests", "3")
    assert first == second
    totals = {line.split()[0]: float(line.split()[1]) for line in first.splitlines()[1:3]}
    assert list(totals) == ["bare", "timing"]
    assert 0 < totals["bare"] < totals["timing"]
    assert "timing.py:ObserveMiddleware._timed.<locals>.timed_start_response" in first
