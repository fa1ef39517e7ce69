"""benchmarks/errors.py keeps running and prints whole tables (its figures are read by
people, not asserted), and its load run still shows what it exists for: no failed
request, and 50 distinct errors under gunicorn all reaching the receiver."""

from __future__ import annotations

import pytest

from benchmarks import errors
from tests.support.benchmarks import ratio_table
from tests.support.benchmarks import run_module

pytestmark = pytest.mark.services


def test_every_configuration_answers_the_same_500() -> None:
    out = run_module("benchmarks.errors", "--check")
    names = errors.CONFIGURATIONS.names()
    assert out.splitlines() == [f"{name:<14} ok 500 INTERNAL SERVER ERROR" for name in names]


def test_time_mode_runs_every_configuration() -> None:
    out = run_module("benchmarks.errors", "--rounds", "1", "--requests", "3")
    ratio_table(out, errors.CONFIGURATIONS.names())  # none skipped


def test_load_mode_fifty_distinct_errors_all_arrive() -> None:
    result = errors.load(seconds=1)
    for mode in errors.LOAD_MODES:
        wrk = result[mode]
        assert wrk.requests > 0 and result["failed"][mode] == 0, mode
        assert 0 < wrk.non_2xx <= wrk.requests // 10 + 8, mode  # only /order fails
    assert result["distinct_sent"] == result["distinct_arrived"] == 50
