"""The memory-panel benchmark keeps running (its figures are read by people)."""

from __future__ import annotations

import pytest

from benchmarks import memory_panel


def test_memory_panel_benchmark_measures_every_tier(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--rounds", "1", "--requests", "2", "--tier2-requests", "1", "--extra", "20000"]
    assert memory_panel.main(argv) in (0, 1)  # 1: a target missed on a loaded machine
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines()[1:-1]]
    assert [(row[0], " ".join(row[1:3]) if row[1] == "tier3" else row[1]) for row in rows] == [
        (heap, config)
        for heap in ("small", "+20,000")
        for config in ("toolbar", "tier1", "tier2", "tier3 heap", "tier3 sizes")
    ]
    assert "panel's own cost" in out and "the 1 s budget" in out
