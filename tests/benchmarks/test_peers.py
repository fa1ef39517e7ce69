"""benchmarks/peers.py keeps running and prints whole tables: in process, each
configuration in its own process, and over HTTP with gunicorn and wrk."""

from __future__ import annotations

import pytest

from benchmarks import peers
from tests.support.benchmarks import ratio_table


def test_peers_in_process_runs_each_configuration_in_its_own_process(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert peers.main(["--mode", "inprocess", "--rounds", "1", "--requests", "3"]) == 0
    ratio_table(capsys.readouterr().out, list(peers.NAMES))


@pytest.mark.services
def test_peers_over_http_with_gunicorn_and_wrk(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--mode", "http", "--only", "timing", "--http-rounds", "1", "--seconds", "1"]
    assert peers.main(argv) == 0
    out = capsys.readouterr().out
    rows = ratio_table(out, ["bare", "timing"])
    assert all(rps > 100 for rps, _ in rows.values())  # requests/s measured
    assert "non-2xx" not in out
