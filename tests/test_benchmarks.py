"""The benchmark scripts keep running (their figures are read by people, not asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import overhead

ROOT = Path(__file__).resolve().parent.parent


def run_script(*args: str) -> str:
    """Run a benchmark script in its own interpreter: some configurations (sentry-sdk)
    set process-global state that must not leak into the test process."""
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.services
def test_overhead_runs_every_configuration() -> None:
    out = run_script("benchmarks/overhead.py", "--rounds", "2", "--requests", "3")
    rows = {line.split()[0] for line in out.splitlines()[1:] if line.strip()}
    assert rows == set(overhead.CONFIGURATIONS)  # none skipped: make test installs all extras
    assert "1.000x" in out


@pytest.mark.services
def test_configurations_answer_like_bare_flask() -> None:
    """Every configuration serves the same trivial view, so the ratios compare alike."""
    out = run_script("benchmarks/overhead.py", "--check")
    assert out.count(" ok ") == len(overhead.CONFIGURATIONS)


def test_peers_in_process_runs_each_configuration_in_its_own_process(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from benchmarks import apps
    from benchmarks import peers

    assert peers.main(["--mode", "inprocess", "--rounds", "1", "--requests", "3"]) == 0
    out = capsys.readouterr().out
    for name in apps.names():
        assert f"\n{name} " in out, name


@pytest.mark.services
def test_peers_over_http_with_gunicorn_and_wrk(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import peers

    argv = ["--mode", "http", "--only", "observe_timing", "--http-rounds", "1", "--seconds", "1"]
    assert peers.main(argv) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith(("bare ", "observe_"))]
    assert [row[0] for row in rows] == ["bare", "observe_timing"]
    assert all(float(row[1]) > 0 for row in rows)  # requests/s measured


@pytest.mark.services
def test_instruction_mode_counts_each_configuration_under_valgrind() -> None:
    """The --instructions mode (valgrind, installed by make services) prints a row per
    configuration with its count and ratio; timing costs more than bare Flask."""
    code = (
        "import sys; from benchmarks.overhead import instructions; "
        "sys.exit(instructions(['bare', 'timing'], low=20, high=120, layouts=2))"
    )
    out = run_script("-c", code)
    ratios = {
        line.split()[0]: float(match.group(1))
        for line in out.splitlines()[1:3]
        if (match := re.search(r" (\d+\.\d{3})x ", line))
    }
    assert ratios.keys() == {"bare", "timing"}, out
    assert ratios["bare"] == 1.0
    assert 1.0 < ratios["timing"] < 1.2, out  # the headers cost something, not much
    assert "median of 2 memory layout(s)" in out


def test_layouts_move_later_objects() -> None:
    """Each layout keeps a different set of objects alive before Flask is imported."""
    sizes = []
    for layout in ("1", "2"):
        code = "from benchmarks import layout; n = layout.shift(); print(n, len(layout._ballast))"
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**os.environ, "OBSERVE_BENCH_LAYOUT": layout},
            capture_output=True,
            text=True,
            check=True,
        )
        sizes.append(result.stdout.split())
    assert sizes[0][0] == "1" and sizes[1][0] == "2"
    assert sizes[0][1] != sizes[1][1] and int(sizes[0][1]) > 0


def test_statsd_flush_interval_is_stretched_under_the_time_scale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert overhead.statsd_config(1)["OBSERVE_STATSD_FLUSH_INTERVAL"] == 0.5
    monkeypatch.setenv(overhead.TIME_SCALE_KEY, str(overhead.VALGRIND_SLOWDOWN))
    assert overhead.statsd_config(1)["OBSERVE_STATSD_FLUSH_INTERVAL"] == 50.0


def test_opcode_counts_are_exact_and_name_the_request_path() -> None:
    """Two runs give the same counts (no layout moves them), and the difference from
    bare Flask is the middleware's own functions."""
    first = run_script("benchmarks/opcodes.py", "observe_timing", "--requests", "3")
    second = run_script("benchmarks/opcodes.py", "observe_timing", "--requests", "3")
    assert first == second
    totals = {line.split()[0]: float(line.split()[1]) for line in first.splitlines()[1:3]}
    assert set(totals) == {"bare", "observe_timing"}
    assert 0 < totals["bare"] < totals["observe_timing"]
    assert "timing.py:ObserveMiddleware._timed.<locals>.timed_start_response" in first
