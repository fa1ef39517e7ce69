"""benchmarks/overhead.py keeps running and prints whole tables: a row per configuration,
each figure compared with bare Flask's. The figures themselves are read by people; only
the deterministic ones (instructions, opcodes: see ``test_harness.py`` and
``test_opcodes.py``) are asserted against bare Flask."""

from __future__ import annotations

import pytest

from benchmarks import overhead
from tests.support.benchmarks import ratio_table
from tests.support.benchmarks import run_module


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
