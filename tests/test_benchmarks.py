"""The benchmark scripts keep running (their figures are read by people, not asserted)."""

from __future__ import annotations

import pytest

from benchmarks import overhead


def test_overhead_runs_every_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert overhead.main(["--rounds", "2", "--requests", "3"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0] for line in out.splitlines()[1:] if line.strip()}
    assert rows == set(overhead.CONFIGURATIONS)  # none skipped: make test installs all extras
    assert "1.000x" in out


def test_configurations_answer_like_bare_flask() -> None:
    """Every configuration serves the same trivial view, so the ratios compare alike."""
    from werkzeug.test import Client

    for name, (_description, factory) in overhead.CONFIGURATIONS.items():
        response = Client(factory()).get("/hello")
        assert response.status_code == 200, name
        assert response.get_data() == b"Hello, World!", name


def test_peers_in_process_runs_each_configuration_in_its_own_process(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from benchmarks import apps
    from benchmarks import peers

    assert peers.main(["--mode", "inprocess", "--rounds", "1", "--requests", "3"]) == 0
    out = capsys.readouterr().out
    for name in apps.names():
        assert f"\n{name} " in out, name


def test_peers_over_http_with_gunicorn_and_wrk(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import peers

    argv = ["--mode", "http", "--only", "observe_timing", "--http-rounds", "1", "--seconds", "1"]
    assert peers.main(argv) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith(("bare ", "observe_"))]
    assert [row[0] for row in rows] == ["bare", "observe_timing"]
    assert all(float(row[1]) > 0 for row in rows)  # requests/s measured
