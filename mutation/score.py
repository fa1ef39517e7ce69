"""Print the mutation score per module from the results ``mutmut run`` left in ``mutants/``.

Run by ``make mutate`` after ``mutmut run``; by hand: ``.venv/bin/python mutation/score.py``.
A mutant is killed when a test failed (or timed out) with it in place. Survivors kept on
purpose are listed in ``mutation/survivors.txt``, each with its kind and reason:

- ``equivalent``: the mutant behaves as the original for every input the code can get,
  so no test can kill it; it is left out of the score's denominator (as PIT and Stryker
  do);
- ``untested``: a test could notice it, but none in the selection does (code that runs
  only after a fork or at exit, unreachable code, code tested by files outside the
  selection); it counts as not killed.

Every other survivor is "open". Per module: the mutants, how many were checked (a run cut
short checks only some), killed, the score ``%`` = killed / (checked - equivalent), the
strict share ``strict %`` = killed / checked, the survivors (survived or with no tests),
the kept ones by kind, and the open ones. Exits 1 when a module's score is under
:data:`TARGET` or none of its mutants was checked, or a survivor is open; 2 when there
are no results or survivors.txt has a line it cannot read.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import typing as t
from pathlib import Path

HERE = Path(__file__).resolve().parent
MUTANTS = HERE.parent / "mutants"
SURVIVORS = HERE / "survivors.txt"
#: The least score of every module, in percent.
TARGET = 90.0
#: The kinds of kept survivors (the second word of a survivors.txt line).
KINDS = ("equivalent", "untested")

#: mutmut's exit codes: a failed test, pytest's internal error, timeouts.
KILLED = {1, 3, 36, -24, 24, 152, 255}
STATUS = {0: "survived", 5: "no tests", 33: "no tests", None: "not checked"}


class Kept(t.NamedTuple):
    """One line of survivors.txt."""

    #: A mutant name or an ``fnmatch`` pattern.
    pattern: str
    #: One of :data:`KINDS`.
    kind: str


class SurvivorsError(ValueError):
    """A line of survivors.txt without a pattern, a known kind and a reason."""


def kept_survivors(path: Path = SURVIVORS) -> list[Kept]:
    """The lines of survivors.txt: ``PATTERN KIND  # reason``, where PATTERN is a mutmut
    name or an ``fnmatch`` pattern and KIND one of :data:`KINDS`; blank lines and lines
    starting with ``#`` are comments.

    :raises SurvivorsError: a line without a kind, with an unknown one, or no reason.
    """
    kept = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        entry, hash_sign, reason = line.partition("#")
        words = entry.split()
        if not words:
            continue
        if len(words) != 2 or words[1] not in KINDS or not hash_sign or not reason.strip():
            raise SurvivorsError(
                f"{path.name}:{number}: expected 'PATTERN KIND  # reason' with KIND one of "
                f"{', '.join(KINDS)}, got {line.strip()!r}"
            )
        kept.append(Kept(words[0], words[1]))
    return kept


def kind_of(name: str, kept: list[Kept]) -> str | None:
    """The kind of the first survivors.txt line matching mutant *name*, or ``None``."""
    for entry in kept:
        if fnmatch.fnmatchcase(name, entry.pattern):
            return entry.kind
    return None


def share(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}" if whole else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=MUTANTS, help="mutmut's directory")
    parser.add_argument("--survivors", type=Path, default=SURVIVORS, help="the kept list")
    parser.add_argument("--open", action="store_true", help="list the open survivors")
    args = parser.parse_args(argv)
    metas = sorted(args.mutants.glob("flask_observe/**/*.py.meta"))
    if not metas:
        print(f"no results under {args.mutants}: run `make mutate` first", file=sys.stderr)
        return 2
    try:
        kept = kept_survivors(args.survivors)
    except SurvivorsError as error:
        print(error, file=sys.stderr)
        return 2
    header = (
        "mutants", "checked", "killed", "%", "strict %", "survived", "no tests",
        "equiv.", "untested", "open",
    )  # fmt: skip
    print(f"{'module':<32}" + "".join(f"{name:>9}" for name in header))
    failing = []
    unchecked = []
    open_names = []
    sums = [0, 0, 0, 0]  # mutants, checked, killed, equivalent
    for meta in metas:
        module = meta.relative_to(args.mutants).as_posix().removesuffix(".meta")
        codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        checked = {name: code for name, code in codes.items() if code is not None}
        killed = sum(1 for code in checked.values() if code in KILLED)
        survivors = sorted(name for name, code in checked.items() if code not in KILLED)
        survived = sum(1 for name in survivors if checked[name] == 0)
        kinds = {name: kind_of(name, kept) for name in survivors}
        equivalent = sum(1 for kind in kinds.values() if kind == "equivalent")
        untested = sum(1 for kind in kinds.values() if kind == "untested")
        unlisted = [name for name in survivors if kinds[name] is None]
        open_names += [(name, checked[name]) for name in unlisted]
        scored = len(checked) - equivalent
        for index, value in enumerate((len(codes), len(checked), killed, equivalent)):
            sums[index] += value
        figures: tuple[object, ...] = (
            len(codes), len(checked), killed, share(killed, scored), share(killed, len(checked)),
            survived, len(survivors) - survived, equivalent, untested, len(unlisted),
        )  # fmt: skip
        print(f"{module:<32}" + "".join(f"{figure:>9}" for figure in figures))
        if not checked:
            unchecked.append(module)
        elif not scored or 100.0 * killed / scored < TARGET:
            failing.append(module)
    total, checked_all, killed_all, equivalent_all = sums
    figures = (
        total, checked_all, killed_all,
        share(killed_all, checked_all - equivalent_all), share(killed_all, checked_all),
    )  # fmt: skip
    print(f"{'all':<32}" + "".join(f"{figure:>9}" for figure in figures))
    if args.open:
        for name, code in open_names:
            print(f"open: {name} ({STATUS.get(code, code)})")
    elif open_names:
        print(
            f"{len(open_names)} open: neither killed nor listed in mutation/survivors.txt "
            "(--open lists them; `.venv/bin/mutmut show NAME` shows one)"
        )
    if failing:
        print(f"under {TARGET:.0f}% killed: {', '.join(failing)}")
    if unchecked:
        print(f"not checked: {', '.join(unchecked)}")
    return 1 if failing or unchecked or open_names else 0


if __name__ == "__main__":
    sys.exit(main())
