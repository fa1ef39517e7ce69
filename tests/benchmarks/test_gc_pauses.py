"""``benchmarks/gc_pauses.py``: the collector's pauses while a process serves."""

from __future__ import annotations

from benchmarks import gc_pauses
from tests.support.benchmarks import run_module


def test_every_collection_while_serving_is_timed() -> None:
    """One time per collection the interpreter made while the requests were served
    (the two counts are kept apart: the callbacks and ``gc.get_stats``)."""
    run = gc_pauses.pauses("bare", 5000, collect=True)
    assert run["requests"] == 5000
    assert run["collections"] > 0  # enough requests for the young generation to fill
    assert len(run["times"]) == run["collections"]
    assert all(seconds > 0 for seconds in run["times"])
    assert all(request % 100 == 0 and request <= 5000 for request, _g, _s in run["long"])


def test_each_configuration_is_run_with_start_up_garbage_left_and_collected() -> None:
    """A row per configuration and start, each run in a child process."""
    out = run_module("benchmarks.gc_pauses", "--requests", "2000", "--only", "bare")
    rows = [line.split()[:3] for line in out.splitlines()[1:3]]
    assert [row[:2] for row in rows] == [["bare", "left"], ["bare", "collected"]]
    assert all(int(row[2]) > 0 for row in rows), out
    assert out.splitlines()[-1].startswith("2000 requests per run")
