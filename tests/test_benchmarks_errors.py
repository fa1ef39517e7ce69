"""benchmarks/errors.py keeps running (its figures are read by people, not asserted),
and its load run still shows what it exists for: no failed request, and 50 distinct
errors under gunicorn all reaching the receiver."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import errors

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parent.parent


def run_script(*args: str) -> str:
    """In its own interpreter: sentry-sdk's integrations patch the whole process."""
    result = subprocess.run(
        [sys.executable, "benchmarks/errors.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_every_configuration_answers_the_same_500() -> None:
    out = run_script("--check")
    assert out.count(" ok ") == len(errors.CONFIGURATIONS)


def test_time_mode_runs_every_configuration() -> None:
    out = run_script("--rounds", "1", "--requests", "3")
    rows = {line.split()[0] for line in out.splitlines()[1:] if line.strip()}
    assert rows == set(errors.CONFIGURATIONS)  # none skipped
    assert "1.000x" in out


def test_load_mode_fifty_distinct_errors_all_arrive() -> None:
    result = errors.load(seconds=1)
    for mode in errors.LOAD_MODES:
        wrk = result[mode]
        assert wrk.requests > 0 and result["failed"][mode] == 0, mode
        assert 0 < wrk.non_2xx <= wrk.requests // 10 + 8, mode  # only /order fails
    assert result["distinct_sent"] == result["distinct_arrived"] == 50
