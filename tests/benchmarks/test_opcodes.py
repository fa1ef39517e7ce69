"""benchmarks/opcodes.py gives exact counts that name the request path's functions."""

from __future__ import annotations

from tests.support.benchmarks import run_module


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
