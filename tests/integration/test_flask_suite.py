"""Flask's own test suite passes with Flask-Observe on every app (``scripts/flask_suite.py``).

Needs network access the first time (the Flask sdist is downloaded into ``.cache/``); when
anything is missing the test fails, it never skips.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "flask_suite.py"
#: Flask 3.1's suite has about 490 tests; far fewer passing means the run did not really run.
MIN_PLAIN_PASSED = 300


@pytest.mark.services
def test_flask_suite_passes_with_observe(tmp_path: Path) -> None:
    summary_path = tmp_path / "summary.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--summary-json", str(summary_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    output = f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 0, f"flask_suite.py exited {proc.returncode}\n{output}"
    assert summary_path.is_file(), f"no summary written\n{output}"
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    plain_passed = summary["counts"]["plain"]["passed"]
    assert plain_passed > MIN_PLAIN_PASSED, f"only {plain_passed} passed plain\n{output}"
    assert summary["regressions"] == [], output
