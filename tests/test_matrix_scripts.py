"""The matrix's own logic: the summary scripts/matrix.py prints from pytest's JUnit files,
and the lowest versions scripts/min_deps.py reads from pyproject.toml.

The scripts are loaded from their files (``scripts/`` is not a package); the chroots and
venvs they drive are exercised by ``make test`` itself.
"""

from __future__ import annotations

import importlib.util
import sys
import tomllib
import types
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent


def load(name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"_matrix_{name}", ROOT / "scripts" / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


matrix = load("matrix.py")
min_deps = load("min_deps.py")

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" errors="{errors}" failures="{failures}"
 skipped="{skipped}" tests="{tests}" time="1.0"></testsuite></testsuites>"""


@pytest.mark.parametrize(
    ("counts", "services", "text", "ok"),
    [
        pytest.param(
            {"tests": 10, "failures": 0, "errors": 0, "skipped": 0},
            True,
            "3.13 10 passed",
            True,
            id="all-passed",
        ),
        pytest.param(
            {"tests": 10, "failures": 1, "errors": 1, "skipped": 0},
            False,
            "3.13 8 passed, 2 failed (not services)",
            False,
            id="failures-and-errors",
        ),
        pytest.param(
            {"tests": 10, "failures": 0, "errors": 0, "skipped": 3},
            True,
            "3.13 7 passed, 3 skipped",
            True,
            id="skipped-shown",
        ),
        pytest.param(
            {"tests": 0, "failures": 0, "errors": 0, "skipped": 0},
            True,
            "3.13 0 passed",
            False,
            id="no-test-ran",
        ),
    ],
)
def test_summary_from_junit(
    tmp_path: Path, counts: dict[str, int], services: bool, text: str, ok: bool
) -> None:
    xml = tmp_path / "leg.xml"
    xml.write_text(JUNIT.format(**counts), encoding="utf-8")
    leg = matrix.Leg("3.13", python="3.13", command=("python",), services=services)
    result = matrix.Result(leg)
    matrix.count(xml, result)
    assert result.describe() == text
    assert result.ok is ok


def test_a_leg_on_the_wrong_python_fails_without_running() -> None:
    leg = matrix.Leg("3.99", python="3.99", command=(sys.executable,), services=False)
    result = matrix.run_leg(leg, [])
    assert result.problem == f"its Python is {sys.version_info[0]}.{sys.version_info[1]}, not 3.99"
    assert not result.ok and result.passed == 0


def test_a_leg_that_cannot_start_fails() -> None:
    leg = matrix.Leg("3.99", python="3.99", command=("false",), services=False)
    result = matrix.run_leg(leg, [])
    assert result.problem.startswith("cannot start")
    assert not result.ok


def test_min_deps_pins_every_declared_lower_bound() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    lines = [*project["dependencies"], *sum(project["optional-dependencies"].values(), [])]
    expected: dict[str, Version] = {}
    for line in lines:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == "flask-observe":
            continue
        [bound] = [s.version for s in requirement.specifier if s.operator == ">="]
        expected[canonicalize_name(requirement.name)] = Version(bound)
    assert min_deps.declared_minima() == expected
    assert expected["flask"] == Version("3.0")


def test_min_deps_refuses_a_dependency_without_lower_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["flask>=3.0", "statsd"]\n', encoding="utf-8"
    )
    monkeypatch.setattr(min_deps, "ROOT", tmp_path)
    with pytest.raises(SystemExit, match="'statsd' in pyproject.toml has no lower bound"):
        min_deps.declared_minima()


def test_min_deps_constraints_replace_the_dev_pins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dev = tmp_path / "dev.txt"
    dev.write_text("# pins\nFlask==3.1.3\nMarkupSafe==3.0.4\npytest==9.2.0\n", encoding="utf-8")
    monkeypatch.setattr(min_deps, "DEV_CONSTRAINTS", dev)
    monkeypatch.setattr(min_deps, "HOME", tmp_path)
    path = min_deps.write_constraints({"flask": Version("3.0"), "markupsafe": Version("2.1.1")})
    lines = path.read_text(encoding="utf-8").splitlines()
    assert "Flask==3.1.3" not in lines and "MarkupSafe==3.0.4" not in lines
    assert "pytest==9.2.0" in lines
    assert lines[-2:] == ["flask==3.0", "markupsafe==2.1.1"]
