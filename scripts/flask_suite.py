"""Run Flask's own test suite with and without Flask-Observe and report what Observe breaks.

Downloads the sdist of the installed Flask version once into ``.cache/flask-suite/``, runs
its ``tests/`` twice with this interpreter's pytest (plain, then with ``Observe(app)`` on
every app through ``scripts/flask_suite_plugin.py``) against the *installed* Flask, and
compares the outcome of every test. Exit status: 0 when no test outside
:data:`ALLOWED_REGRESSIONS` passed plain but not with Observe, 1 when one did, 2 when the
harness itself could not run (download, pytest crash, Flask imported from the wrong place).

Usage::

    .venv/bin/python scripts/flask_suite.py
    .venv/bin/python scripts/flask_suite.py --keep -- -k errorhandler  # extra pytest args
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import typing as t
import xml.etree.ElementTree as ET
from pathlib import Path

if t.TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Sequence

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).resolve().parent
DEFAULT_CACHE = ROOT / ".cache" / "flask-suite"
PLUGIN = "flask_suite_plugin"

#: Flask tests allowed to stop passing with Observe on, keyed ``classname::name`` as in the
#: JUnit XML, each with the reason.
ALLOWED_REGRESSIONS: dict[str, str] = {
    "tests.test_basic::test_app_freed_on_zero_refcount": (
        "Observe wraps app.wsgi_app in a middleware whose inner wsgi_app is the app's bound "
        "method, so app -> middleware -> app is a reference cycle that only gc.collect() frees "
        "(the same as Flask's documented `app.wsgi_app = ProxyFix(app.wsgi_app)`); the test "
        "disables gc and expects refcounting alone to free the app."
    ),
}

#: A test that is not "passed" in a run where it passed plain is a regression.
PASSED = "passed"
MISSING = "missing"
OUTCOMES = (PASSED, "failed", "error", "skipped", "xfailed")
#: When one test has several JUnit entries (e.g. a call failure and a teardown error).
_SEVERITY = {PASSED: 0, "skipped": 1, "xfailed": 1, "failed": 2, "error": 3}
#: Run directories (JUnit XML, logs) kept under ``<cache>/runs`` after a failed or --keep run.
KEEP_RUNS = 5


class HarnessError(Exception):
    """The comparison could not be made; exit status 2."""


@dataclasses.dataclass
class Outcome:
    """The result of one test in one run."""

    outcome: str
    message: str = ""


@dataclasses.dataclass
class Run:
    """One pytest run over Flask's suite."""

    label: str
    returncode: int
    seconds: float
    results: dict[str, Outcome]
    report: dict[str, t.Any]
    log: Path

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(OUTCOMES, 0)
        for result in self.results.values():
            counts[result.outcome] += 1
        return counts


def flask_sdist(cache: Path) -> tuple[str, Path]:
    """Return the installed Flask version and its extracted sdist, downloading it once."""
    version = importlib.metadata.version("flask")
    cache.mkdir(parents=True, exist_ok=True)
    extracted = cache / f"flask-{version}"
    if (extracted / "tests" / "conftest.py").is_file() and (extracted / "pyproject.toml").is_file():
        return version, extracted
    archive = _find_archive(cache, version)
    if archive is None:
        with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"flask=={version}",
                "-d",
                tmp,
            ]
            print("$", shlex.join(cmd), flush=True)
            if subprocess.run(cmd, check=False).returncode != 0:
                raise HarnessError(f"could not download the sdist of flask=={version}")
            downloaded = _find_archive(Path(tmp), version)
            if downloaded is None:
                raise HarnessError(f"pip download left no flask-{version}.tar.gz in {tmp}")
            archive = cache / downloaded.name
            os.replace(downloaded, archive)
    print(f"extracting {archive}", flush=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".extract-") as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        tops = list(Path(tmp).iterdir())
        if len(tops) != 1 or not (tops[0] / "tests").is_dir():
            raise HarnessError(f"{archive} does not hold one directory with tests/ in it")
        if extracted.exists():  # a partial extraction left by an interrupted run
            shutil.rmtree(extracted)
        os.replace(tops[0], extracted)
    return version, extracted


def _find_archive(directory: Path, version: str) -> Path | None:
    for path in directory.iterdir():
        if path.name.lower() == f"flask-{version}.tar.gz":
            return path
    return None


def installed_flask_dir() -> Path:
    spec = importlib.util.find_spec("flask")
    if spec is None or spec.origin is None:
        raise HarnessError("flask is not installed in this interpreter")
    return Path(spec.origin).resolve().parent


def run_suite(
    label: str,
    observe: bool,
    sdist: Path,
    out: Path,
    extra: Sequence[str],
    observe_path: Path | None = None,
) -> tuple[Run, str]:
    """Run Flask's ``tests/`` once; return the parsed run and the command line used.

    :param observe_path: a checkout to import ``flask_observe`` from instead of the one
        this interpreter finds (put before site-packages on ``PYTHONPATH``).
    """
    junit = out / f"{label}.xml"
    report = out / f"{label}-report.json"
    log = out / f"{label}.log"
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        PLUGIN,
        "-p",
        "no:cacheprovider",
        "-q",
        f"--junitxml={junit}",
        "tests",
        *extra,
    ]
    env_changes = {
        "PYTHONPATH": os.pathsep.join(
            [str(SCRIPTS), *([str(observe_path.resolve())] if observe_path else [])]
        ),
        "PYTHONDONTWRITEBYTECODE": "1",
        "FLASK_SUITE_OBSERVE": "1" if observe else "0",
        "FLASK_SUITE_FLASK_DIR": str(installed_flask_dir()),
        "FLASK_SUITE_REPORT": str(report),
    }
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    env.update(env_changes)
    shown = f"cd {shlex.quote(str(sdist))} && env " + shlex.join(
        [*(f"{k}={v}" for k, v in env_changes.items()), *cmd]
    )
    print(f"\n[{label}] $ {shown}", flush=True)
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as log_file:
        proc = subprocess.run(
            cmd, cwd=sdist, env=env, stdout=log_file, stderr=subprocess.STDOUT, check=False
        )
    seconds = time.perf_counter() - start
    tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-1:]
    print(f"[{label}] pytest exit {proc.returncode} in {seconds:.1f}s: {' '.join(tail)}")
    if proc.returncode not in (0, 1) or not junit.is_file() or not report.is_file():
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        print("\n".join(lines[-40:]), file=sys.stderr)
        raise HarnessError(f"the {label} run did not complete (pytest exit {proc.returncode})")
    data = json.loads(report.read_text(encoding="utf-8"))
    return Run(label, proc.returncode, seconds, parse_junit(junit), data, log), shown


def parse_junit(path: Path) -> dict[str, Outcome]:
    """Map ``classname::name`` to its outcome, keeping the worst of repeated entries."""
    results: dict[str, Outcome] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        key = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = Outcome(PASSED)
        for child in case:
            if child.tag in ("failure", "error"):
                kind = "failed" if child.tag == "failure" else "error"
                outcome = Outcome(kind, _message(child))
            elif child.tag == "skipped":
                kind = "xfailed" if child.get("type") == "pytest.xfail" else "skipped"
                outcome = Outcome(kind, child.get("message", ""))
        previous = results.get(key)
        if previous is None or _SEVERITY[outcome.outcome] > _SEVERITY[previous.outcome]:
            results[key] = outcome
    return results


def _message(element: ET.Element) -> str:
    """The first lines that say what went wrong: the ``E`` lines of the traceback."""
    text = element.text or ""
    e_lines = [line[1:].strip() for line in text.splitlines() if line.startswith("E ")]
    lines = e_lines or (element.get("message") or "").splitlines() or text.splitlines()[-3:]
    return "\n".join(line for line in lines[:4] if line)


@dataclasses.dataclass
class Comparison:
    regressions: list[str]
    allowed: list[str]
    other_changes: list[str]


def compare(plain: Run, observed: Run) -> Comparison:
    regressions: list[str] = []
    allowed: list[str] = []
    other: list[str] = []
    for key in sorted(plain.results.keys() | observed.results.keys()):
        before = plain.results.get(key, Outcome(MISSING)).outcome
        after = observed.results.get(key, Outcome(MISSING)).outcome
        if before == after:
            continue
        if before == PASSED:
            (allowed if key in ALLOWED_REGRESSIONS else regressions).append(key)
        else:
            other.append(key)
    return Comparison(regressions, allowed, other)


def _indented(text: str, prefix: str = "      ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def print_report(plain: Run, observed: Run, result: Comparison) -> None:
    print("\n== Flask's suite: plain vs Observe(app) on every app")
    for run in (plain, observed):
        counts = ", ".join(f"{n} {name}" for name, n in run.counts().items())
        print(f"{run.label:>8}: {counts} ({len(run.results)} tests, {run.seconds:.1f}s)")
    print(f"flask from {plain.report['flask_dir']}")
    print(
        f"flask_observe from {observed.report['flask_observe_dir']}; Observe initialised on "
        f"{observed.report['observed_apps']} apps ({observed.report['observe_errors']} raised)"
    )

    def describe(keys: Iterable[str]) -> None:
        for key in keys:
            before = plain.results.get(key, Outcome(MISSING))
            after = observed.results.get(key, Outcome(MISSING))
            print(f"  {key}: {before.outcome} -> {after.outcome}")
            if after.message and after.outcome != PASSED:
                print(_indented(after.message))

    print(f"\nRegressions (passed plain, not with Observe): {len(result.regressions)}")
    describe(result.regressions)
    print(f"\nAllowed regressions: {len(result.allowed)}")
    for key in result.allowed:
        print(f"  {key}: {ALLOWED_REGRESSIONS[key]}")
    describe(result.allowed)
    for key in sorted(ALLOWED_REGRESSIONS.keys() - set(result.allowed)):
        outcome = observed.results.get(key, Outcome(MISSING)).outcome
        print(f"  note: allow-listed {key} is {outcome} with Observe")
    print(f"\nOther outcome changes: {len(result.other_changes)}")
    describe(result.other_changes)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="%(default)s")
    parser.add_argument("--keep", action="store_true", help="keep the JUnit XML and logs")
    parser.add_argument(
        "--observe-path",
        type=Path,
        help="import flask_observe from this checkout (default: the installed one)",
    )
    parser.add_argument("--summary-json", type=Path, help="also write the result as JSON here")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        version, sdist = flask_sdist(args.cache_dir)
        print(f"Flask {version}: suite in {sdist}")
        runs_dir = args.cache_dir / "runs"
        runs_dir.mkdir(exist_ok=True)
        for old in sorted(runs_dir.iterdir())[: -KEEP_RUNS + 1]:
            shutil.rmtree(old, ignore_errors=True)
        out = Path(tempfile.mkdtemp(prefix=time.strftime("%Y%m%d-%H%M%S-"), dir=runs_dir))
        plain, plain_cmd = run_suite(
            "plain", False, sdist, out, args.pytest_args, args.observe_path
        )
        observed, observed_cmd = run_suite(
            "observe", True, sdist, out, args.pytest_args, args.observe_path
        )
        if observed.report["observed_apps"] == 0:
            raise HarnessError("the observe run initialised Observe on no app: the plugin failed")
    except HarnessError as exc:
        print(f"flask_suite: {exc}", file=sys.stderr)
        return 2
    result = compare(plain, observed)
    print_report(plain, observed, result)
    status = 1 if result.regressions else 0
    if args.summary_json is not None:
        summary = {
            "flask_version": version,
            "commands": {"plain": plain_cmd, "observe": observed_cmd},
            "counts": {"plain": plain.counts(), "observe": observed.counts()},
            "regressions": result.regressions,
            "allowed_regressions": result.allowed,
            "other_changes": result.other_changes,
            "status": status,
        }
        args.summary_json.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if args.keep or status:
        print(f"\nJUnit XML and logs kept in {out}")
    else:
        shutil.rmtree(out, ignore_errors=True)
    verdict = "FAIL: Observe breaks Flask tests" if status else "OK: no unexpected regression"
    print(f"\n{verdict} (total {time.perf_counter() - started:.1f}s)")
    return status


if __name__ == "__main__":
    sys.exit(main())
