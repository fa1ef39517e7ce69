"""Print the mutation score per module from the results ``mutmut run`` left in ``mutants/``.

Run by ``make mutate`` after ``mutmut run``; by hand: ``.venv/bin/python mutation/score.py``.
A mutant is killed when a test failed (or timed out) with it in place. Survivors kept on
purpose (equivalent, or not worth a test) are listed with their reason in
``mutation/survivors.txt`` and counted apart ("kept"); the others are "open". The score
is killed / checked (a run cut short checks only some mutants: see the "checked"
column). Exits 1 when a module is under :data:`TARGET` or a survivor is open.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MUTANTS = HERE.parent / "mutants"
#: The least share of mutants killed in every module, in percent.
TARGET = 90.0

#: mutmut's exit codes: a failed test, pytest's internal error, timeouts.
KILLED = {1, 3, 36, -24, 24, 152, 255}
STATUS = {0: "survived", 5: "no tests", 33: "no tests", None: "not checked"}


def kept_survivors() -> list[str]:
    """The mutant name patterns listed in survivors.txt: the first word of each line, a
    name or an ``fnmatch`` pattern; the reason follows after ``#``."""
    kept = []
    for line in (HERE / "survivors.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            kept.append(line.split()[0])
    return kept


def is_kept(name: str, kept: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in kept)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=MUTANTS, help="mutmut's directory")
    parser.add_argument("--open", action="store_true", help="list the open survivors")
    args = parser.parse_args(argv)
    metas = sorted(args.mutants.glob("flask_observe/**/*.py.meta"))
    if not metas:
        print(f"no results under {args.mutants}: run `make mutate` first", file=sys.stderr)
        return 2
    kept = kept_survivors()
    header = ("mutants", "checked", "killed", "%", "survived", "no tests", "kept", "open")
    print(f"{'module':<32}" + "".join(f"{name:>9}" for name in header))
    failing = []
    open_names = []
    sums = [0, 0, 0]
    for meta in metas:
        module = meta.relative_to(args.mutants).as_posix().removesuffix(".meta")
        codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        checked = {name: code for name, code in codes.items() if code is not None}
        killed = sum(1 for code in checked.values() if code in KILLED)
        survivors = sorted(name for name, code in checked.items() if code not in KILLED)
        survived = sum(1 for name in survivors if checked[name] == 0)
        unlisted = [name for name in survivors if not is_kept(name, kept)]
        open_names += [(name, checked[name]) for name in unlisted]
        percent = 100.0 * killed / len(checked) if checked else 0.0
        for index, value in enumerate((len(codes), len(checked), killed)):
            sums[index] += value
        figures: tuple[object, ...] = (len(codes), len(checked), killed, f"{percent:.1f}")
        figures += (survived, len(survivors) - survived)  # survived, no tests
        figures += (len(survivors) - len(unlisted), len(unlisted))  # kept, open
        print(f"{module:<32}" + "".join(f"{figure:>9}" for figure in figures))
        if percent < TARGET:
            failing.append(module)
    percent = 100.0 * sums[2] / sums[1] if sums[1] else 0.0
    print(f"{'all':<32}" + "".join(f"{figure:>9}" for figure in (*sums, f"{percent:.1f}")))
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
    return 1 if failing or open_names else 0


if __name__ == "__main__":
    sys.exit(main())
