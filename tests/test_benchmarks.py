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
