"""The minimum-versions environment of the matrix: a virtualenv under ``.cache/min-deps``
with every dependency pyproject.toml declares at the lowest version it allows.

Reads ``pyproject.toml`` at run time: each ``name>=X`` of ``dependencies`` and of the extras
becomes ``name==X``. The Pallets libraries the package imports itself (Werkzeug, Jinja2,
MarkupSafe, click) are not declared by us but come with Flask: they are pinned at the lowest
version that the installed minima require (Flask 3.0.0 asks for ``Werkzeug>=3.0.0``, so
Werkzeug 3.0.0), repeated until nothing moves. The dev tools and test-only packages keep
their pins from ``constraints/dev.txt``. The constraints used are written to
``.cache/min-deps/constraints.txt`` and printed.

Idempotent: the venv is rebuilt only when pyproject.toml or the constraints change.
Any failure (a pin that cannot be installed, a conflict) exits non-zero: the run fails.

Usage::

    .venv/bin/python scripts/min_deps.py          # prints the venv's python
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
HOME = ROOT / ".cache" / "min-deps"
VENV = HOME / "venv"
PYTHON = VENV / "bin" / "python"
DEV_CONSTRAINTS = ROOT / "constraints" / "dev.txt"
#: Not declared by us, imported by flask_observe itself: pinned at the lowest version the
#: installed minima allow.
IMPORTED_TRANSITIVELY = ("werkzeug", "jinja2", "markupsafe", "click")


def lower_bound(requirement: Requirement) -> Version | None:
    """The version a ``>=`` (or ``==``) specifier starts at, if any."""
    bounds = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==")]
    return max(bounds) if bounds else None


def declared_minima() -> dict[str, Version]:
    """``name -> lowest version`` for every dependency and extra in pyproject.toml."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    own = canonicalize_name(project["name"])
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    minima: dict[str, Version] = {}
    for line in lines:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if name == own:
            continue
        bound = lower_bound(requirement)
        if bound is None:
            sys.exit(f"min_deps: {line!r} in pyproject.toml has no lower bound to test")
        minima[name] = max(bound, minima.get(name, bound))
    return minima


def installed_requirements() -> dict[str, list[str]]:
    """Each installed distribution's Requires-Dist, read inside the venv."""
    code = (
        "import importlib.metadata as m, json\n"
        "print(json.dumps({d.metadata['Name']: d.requires or [] for d in m.distributions()}))"
    )
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True)
    data: dict[str, list[str]] = json.loads(out.stdout)
    return data


def transitive_minima(declared: dict[str, Version]) -> dict[str, Version]:
    """Lowest versions of :data:`IMPORTED_TRANSITIVELY` (unless we declare them) that the
    installed packages allow."""
    found: dict[str, Version] = {}
    for requires in installed_requirements().values():
        for line in requires:
            requirement = Requirement(line)
            name = canonicalize_name(requirement.name)
            if name not in IMPORTED_TRANSITIVELY or name in declared:
                continue
            if requirement.marker is not None and "extra" in str(requirement.marker):
                continue
            bound = lower_bound(requirement)
            if bound is not None:
                found[name] = max(bound, found.get(name, bound))
    return found


def write_constraints(pins: dict[str, Version]) -> Path:
    """constraints/dev.txt with the pinned names replaced by ``name==lowest``."""
    kept = []
    for line in DEV_CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        stripped = line.split("#", 1)[0].strip()
        if stripped and canonicalize_name(Requirement(stripped).name) in pins:
            continue
        kept.append(line)
    lowest = [f"{name}=={version}" for name, version in sorted(pins.items())]
    path = HOME / "constraints.txt"
    path.write_text("\n".join([*kept, "# lowest versions (scripts/min_deps.py)", *lowest, ""]))
    return path


def install(constraints: Path) -> None:
    subprocess.run(
        [
            PYTHON,
            "-m",
            "pip",
            "install",
            "--quiet",
            "-c",
            constraints,
            "-e",
            f"{ROOT}[all]",
            "-r",
            ROOT / "requirements-dev.txt",
        ],
        check=True,
    )
    subprocess.run([PYTHON, "-m", "pip", "check"], check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    HOME.mkdir(parents=True, exist_ok=True)
    inputs = b"".join(
        path.read_bytes()
        for path in (ROOT / "pyproject.toml", ROOT / "requirements-dev.txt", DEV_CONSTRAINTS)
    )
    key = hashlib.sha256(inputs + bytes(ROOT)).hexdigest()[:16]
    stamp = VENV / ".key"
    if stamp.is_file() and stamp.read_text() == key:
        print(f"min-deps: venv present ({HOME / 'constraints.txt'})", file=sys.stderr)
        return
    subprocess.run([sys.executable, "-m", "venv", "--clear", VENV], check=True)
    subprocess.run([PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], check=True)
    declared = declared_minima()
    pins = dict(declared)
    for _ in range(5):
        install(write_constraints(pins))
        lowest = transitive_minima(declared)
        if all(pins.get(name) == version for name, version in lowest.items()):
            break
        pins = {**declared, **lowest}
    else:
        sys.exit("min_deps: the lowest versions did not settle after 5 rounds")
    print("min-deps: lowest versions installed:", file=sys.stderr)
    for name, version in sorted(pins.items()):
        print(f"    {name}=={version}", file=sys.stderr)
    stamp.write_text(key)


if __name__ == "__main__":
    main()
