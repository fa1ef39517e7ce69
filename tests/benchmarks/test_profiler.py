"""The profiler benchmark keeps running (its figures are read by people)."""

from __future__ import annotations

import pytest

from benchmarks import profiler


def test_profiler_benchmark_runs_every_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert profiler.main(["--rounds", "1", "--requests", "2"]) in (0, 1)  # 1: a loaded machine
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = ["configuration", "calls", "wall", "calls", "cpu", "loop", "wall", "loop", "cpu"]
    assert lines[0].split() == header
    rows = [line.split()[0] for line in lines[1:-1]]
    assert rows == ["unlisted", "off", "sampler", "cprofile", "pyinstrument"]
    off = lines[2].split()
    assert off[3] == off[6] == off[9] == off[12] == "1.00x"
    assert "sampler target <= 1.3x per request, wall and CPU" in lines[-1]
