"""The benchmark scripts keep running (their figures are read by people, not asserted)."""

from __future__ import annotations

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


def test_overhead_runs_every_configuration() -> None:
    out = run_script("benchmarks/overhead.py", "--rounds", "2", "--requests", "3")
    rows = {line.split()[0] for line in out.splitlines()[1:] if line.strip()}
    assert rows == set(overhead.CONFIGURATIONS)  # none skipped: make test installs all extras
    assert "1.000x" in out


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


def test_peers_over_http_with_gunicorn_and_wrk(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import peers

    argv = ["--mode", "http", "--only", "observe_timing", "--http-rounds", "1", "--seconds", "1"]
    assert peers.main(argv) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith(("bare ", "observe_"))]
    assert [row[0] for row in rows] == ["bare", "observe_timing"]
    assert all(float(row[1]) > 0 for row in rows)  # requests/s measured
