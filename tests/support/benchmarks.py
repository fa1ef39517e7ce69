"""What the benchmark smoke tests (``tests/benchmarks/``) share: running a benchmark
script in its own interpreter, and reading its table back, checked row by row."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.support.services import ROOT

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
