"""The release: the sdist and the wheel as ``make dist`` builds them, and what a user
gets from installing the wheel.

The wheel is installed into a fresh virtualenv (dependencies from the package index,
pinned by ``constraints/dev.txt``) and ``tests/release_smoke.py`` runs there in isolated
mode from a directory outside the checkout, so nothing can be imported from the checkout.
Needs the package index the first time (pip's cache after that); never skips.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import typing as t
import zipfile
from pathlib import Path

import pytest

if t.TYPE_CHECKING:
    from collections.abc import Sequence

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints" / "dev.txt"


def run(args: Sequence[str | Path], cwd: Path, timeout: float = 600) -> str:
    proc = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = f"$ {' '.join(map(str, args))}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 0, output
    return proc.stdout


def source_version() -> str:
    """The one version: the ``__version__`` line of ``flask_observe/__init__.py``."""
    text = (ROOT / "flask_observe" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    assert match, "no __version__ line"
    return match.group(1)


class Dist(t.NamedTuple):
    sdist: Path
    wheel: Path


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """``python -m build`` as ``make dist`` runs it: the sdist, then the wheel built
    from that sdist (not from the checkout)."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", out, ROOT], cwd=ROOT)
    [sdist] = out.glob("*.tar.gz")
    [wheel] = out.glob("*.whl")
    return Dist(sdist, wheel)


def test_version_from_one_place(dist: Dist) -> None:
    version = source_version()
    assert dist.sdist.name == f"flask_observe-{version}.tar.gz"
    assert dist.wheel.name == f"flask_observe-{version}-py3-none-any.whl"
    changes = (ROOT / "CHANGES.rst").read_text(encoding="utf-8")
    released = version.split(".dev")[0]
    assert f"Version {released}\n" in changes, "CHANGES.rst has no section for this version"


def test_sdist_has_the_tests_and_docs(dist: Dist) -> None:
    with tarfile.open(dist.sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for name in (
        "pyproject.toml",
        "CHANGES.rst",
        "README.md",
        "constraints/dev.txt",
        "requirements-dev.txt",
        "docs/conf.py",
        "docs/index.rst",
        "tests/conftest.py",
        "tests/test_release.py",
        "tests/release_smoke.py",
        "flask_observe/panels/templates/observe.html",
        "flask_observe/panels/static/observe.css",
    ):
        assert name in names, f"{name} missing from {dist.sdist.name}"
    assert not [name for name in names if "__pycache__" in name or "_build/" in name]


def wheel_files(wheel: Path) -> dict[str, str]:
    """Path -> hash of every file of a wheel, from its RECORD."""
    with zipfile.ZipFile(wheel) as archive:
        [record] = [name for name in archive.namelist() if name.endswith(".dist-info/RECORD")]
        rows = archive.read(record).decode("utf-8").splitlines()
    return {row.split(",")[0]: row.split(",")[1] for row in rows if row.split(",")[1]}


def test_sdist_builds_the_same_wheel(dist: Dist, tmp_path: Path) -> None:
    """The wheel built from the sdist has the same files, byte for byte, as one built
    straight from the checkout."""
    run([sys.executable, "-m", "build", "--wheel", "--outdir", tmp_path, ROOT], cwd=ROOT)
    [direct] = tmp_path.glob("*.whl")
    from_sdist, from_checkout = wheel_files(dist.wheel), wheel_files(direct)
    assert sorted(from_sdist) == sorted(from_checkout)
    assert from_sdist == from_checkout
    assert "flask_observe/panels/templates/report.html" in from_sdist
    assert "flask_observe/py.typed" in from_sdist


def test_twine_check(dist: Dist) -> None:
    output = run([sys.executable, "-m", "twine", "check", "--strict", *dist], cwd=ROOT)
    assert output.count("PASSED") == 2, output


def test_metadata_declares_the_tested_pythons(dist: Dist) -> None:
    """``Requires-Python`` starts at the lowest Python of the matrix, and the classifiers
    name exactly the versions ``make test`` runs (scripts/matrix.py)."""
    with zipfile.ZipFile(dist.wheel) as archive:
        [name] = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        metadata = archive.read(name).decode("utf-8")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    classified = sorted(
        tuple(int(part) for part in line.rsplit(" :: ", 1)[1].split("."))
        for line in project["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", line)
    )
    matrix = (ROOT / "scripts" / "matrix.py").read_text(encoding="utf-8")
    tested = sorted(
        {tuple(map(int, v.split("."))) for v in re.findall(r'python="(3\.\d+)"', matrix)}
    )
    assert classified == tested
    lowest = ".".join(map(str, classified[0]))
    assert f"Requires-Python: >={lowest}\n" in metadata
    assert project["requires-python"] == f">={lowest}"


def test_the_installed_wheel_works_outside_the_checkout(dist: Dist, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    run(
        [python, "-m", "pip", "install", "--quiet", "-c", CONSTRAINTS, f"{dist.wheel}[all]"],
        cwd=tmp_path,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(ROOT / "tests" / "release_smoke.py", elsewhere)
    output = run([python, "-I", "-W", "error", "release_smoke.py", source_version()], cwd=elsewhere)
    assert output.rstrip().endswith("smoke test passed"), output
    assert str(ROOT) not in output.split("from ", 1)[1].splitlines()[0]
