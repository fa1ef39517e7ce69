"""The test matrix of ``make test``: the suite on every Python we declare, and once against
the lowest declared version of every dependency, with one summary at the end.

Legs, one after the other (the machine has two cores):

``3.11``
    The host's Python, the project's ``.venv``: the whole suite, services included.
``3.13``, ``3.14``
    Debian trixie's and forky's CPython in chroots under ``.cache/`` (``scripts/chroot.sh``),
    the checkout bind-mounted at the same path: every test not marked ``services``.
    The statsd daemon, Graphite and Chromium are host programs (node, a venv of the
    host's Python, Debian's Chromium with its libraries) that the chroots do not have;
    the code they exercise is the same on every Python and runs on 3.11.
``min-deps 3.11``
    The lowest Python we declare with the lowest version of every declared dependency
    (``scripts/min_deps.py``): every test not marked ``services``.

Each leg writes ``test-output/matrix/<leg>.xml`` (JUnit) and ``.log``. A leg whose Python is
not the version it stands for, that cannot start, or whose pytest fails, fails the run.

Usage::

    .venv/bin/python scripts/matrix.py                 # every leg
    .venv/bin/python scripts/matrix.py 3.13 min-deps   # some legs
    .venv/bin/python scripts/matrix.py 3.14 -- -k timing  # extra pytest arguments
"""

from __future__ import annotations

import dataclasses
import shlex
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "test-output" / "matrix"
#: The legs without the host's services (Python in a chroot, the lowest dependencies)
#: run every test not marked ``services``.
NOT_SERVICES = ("-m", "not services")


@dataclasses.dataclass(frozen=True)
class Leg:
    """One interpreter and environment of the matrix."""

    #: Name on the command line and in the summary.
    name: str
    #: The ``major.minor`` the leg's interpreter must report.
    python: str
    #: How to start that interpreter, relative to the checkout.
    command: tuple[str, ...]
    #: What runs: ``all`` tests or those ``not services``.
    services: bool

    @property
    def label(self) -> str:
        return self.name if self.name == self.python else f"{self.name} {self.python}"

    @property
    def slug(self) -> str:
        return self.name.replace(".", "")


def chroot(name: str) -> tuple[str, ...]:
    return ("bash", "scripts/chroot.sh", "run", name, "python")


LEGS = (
    Leg("3.11", python="3.11", command=(".venv/bin/python",), services=True),
    Leg("3.13", python="3.13", command=chroot("py313"), services=False),
    Leg("3.14", python="3.14", command=chroot("py314"), services=False),
    Leg("min-deps", python="3.11", command=(".cache/min-deps/venv/bin/python",), services=False),
)


@dataclasses.dataclass
class Result:
    leg: Leg
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem and not self.failed and self.passed > 0

    def describe(self) -> str:
        parts = [f"{self.leg.label} {self.passed} passed"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        text = ", ".join(parts)
        if not self.leg.services:
            text += " (not services)"
        if self.problem:
            text += f" [{self.problem}]"
        return text


def interpreter_version(leg: Leg) -> str:
    code = "import sys; print('%d.%d' % sys.version_info[:2])"
    proc = subprocess.run(
        [*leg.command, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"cannot start: {proc.stderr.strip()[-300:]}")
    return proc.stdout.strip().splitlines()[-1]


def count(xml_path: Path, result: Result) -> None:
    """Fill *result* from pytest's JUnit XML (one ``testsuite`` element)."""
    suite = ET.parse(xml_path).getroot()
    if suite.tag == "testsuites":
        suite = suite[0]
    tests, skipped = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
    result.failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    result.skipped = skipped
    result.passed = tests - result.failed - skipped


def run_leg(leg: Leg, extra: list[str]) -> Result:
    result = Result(leg)
    print(f"\n===== matrix leg {leg.label} =====", flush=True)
    start = time.monotonic()
    try:
        version = interpreter_version(leg)
    except RuntimeError as error:
        result.problem = str(error)
        return result
    if version != leg.python:
        result.problem = f"its Python is {version}, not {leg.python}"
        return result
    xml_path = OUT / f"{leg.slug}.xml"
    xml_path.unlink(missing_ok=True)
    args = [*leg.command, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={xml_path}"]
    if not leg.services:
        args += NOT_SERVICES
    args += extra
    print("$", shlex.join(args), flush=True)
    with open(OUT / f"{leg.slug}.log", "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
        status = proc.wait()
    result.seconds = time.monotonic() - start
    if xml_path.is_file():
        count(xml_path, result)
    if status != 0 and not result.failed:
        result.problem = f"pytest exited {status}"
    return result


def main() -> int:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    chosen, extra = argv[:split], argv[split + 1 :]
    names = {leg.name: leg for leg in LEGS}
    unknown = [name for name in chosen if name not in names]
    if unknown:
        print(f"unknown leg {unknown}; legs: {', '.join(names)}", file=sys.stderr)
        return 2
    legs = [names[name] for name in chosen] or list(LEGS)
    OUT.mkdir(parents=True, exist_ok=True)
    results = [run_leg(leg, extra) for leg in legs]

    print("\n===== matrix summary =====")
    for result in results:
        mark = "ok  " if result.ok else "FAIL"
        print(f"{mark} {result.describe()} in {result.seconds:.0f} s")
    print("matrix: " + "; ".join(result.describe() for result in results))
    passed = sum(result.passed for result in results)
    failed = sum(result.failed for result in results)
    broken = sum(1 for result in results if not result.ok)
    if broken and not failed:
        failed = broken  # a leg that could not run counts as failed
    print(f"matrix: {passed} passed, {failed} failed", flush=True)
    return 0 if broken == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
