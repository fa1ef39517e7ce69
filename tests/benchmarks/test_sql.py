"""benchmarks/sql.py keeps running and prints its tables: a row per configuration with
its figure and its ratio to its own baseline, and the three summary lines. The figures
are read by people (docs/performance.rst); the rows are checked here."""

from __future__ import annotations

import re

import pytest

from benchmarks import sql
from tests.support.benchmarks import run_module

ROW = re.compile(r"^(?P<name>\S+) +(?P<figure>\d+\.\d\d) µs +(?P<ratio>\d+\.\d{3})x +(?P<to>\S+) ")


def rows(out: str) -> dict[str, tuple[float, float, str]]:
    found = {}
    for line in out.splitlines():
        match = ROW.match(line)
        if match:
            found[match["name"]] = (float(match["figure"]), float(match["ratio"]), match["to"])
    return found


def check_ratios(table: dict[str, tuple[float, float, str]], out: str) -> None:
    for name, (figure, ratio, baseline) in table.items():
        assert baseline == sql.BASELINE[name], out
        base = table[baseline][0]
        assert figure > 0 and ratio == pytest.approx(figure / base, rel=0.01, abs=0.002), out
        if name == baseline:
            assert ratio == 1.0, out


def test_the_statement_table() -> None:
    out = run_module("benchmarks.sql", "--statements", "--rounds", "1", "--requests", "5")
    table = rows(out)
    assert list(table) == list(sql.STATEMENT_NAMES), out
    check_ratios(table, out)
    assert re.search(r"^per statement inside a request: \d+\.\d{3}x bare SQLAlchemy", out, re.M)


@pytest.mark.services
def test_every_table() -> None:
    """The request table starts a UDP drain process for the production rows."""
    out = run_module("benchmarks.sql", "--rounds", "1", "--requests", "5")
    table = rows(out)
    assert list(table) == [*sql.STATEMENT_NAMES, *sql.REQUEST_NAMES], out
    check_ratios(table, out)
    assert re.search(r"^a request without statements: \d+\.\d{3}x the same app", out, re.M)
    assert re.search(
        r"^a request with one statement: [+-]\d+\.\d% of bare-db for the production "
        r"metrics, [+-]\d+\.\d% for Flask-Observe's SQL work$",
        out,
        re.M,
    )
