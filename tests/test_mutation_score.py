"""mutation/score.py: the table it prints from a small fake ``mutants/`` tree and a
survivors list, and its exit code."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

if t.TYPE_CHECKING:
    from types import ModuleType

SCRIPT = Path(__file__).resolve().parent.parent / "mutation" / "score.py"

#: ``PATTERN KIND  # reason`` lines, with comments and a blank line as in the real file.
SURVIVORS = """\
# kept on purpose

flask_observe.a.x_same__mutmut_1 equivalent  # the same behaviour
flask_observe.a.x_forked__mutmut_* untested  # runs only in a forked child
flask_observe.sentry.b.x_same__mutmut_* equivalent  # the same behaviour
"""


def load_score() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mutation_score", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_meta(root: Path, module: str, codes: dict[str, int | None]) -> None:
    meta = root / "flask_observe" / f"{module}.py.meta"
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps({"exit_code_by_key": codes}), encoding="utf-8")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Two modules: ``a.py`` with 8 killed, one equivalent survivor and one untested (no
    tests); ``sentry/b.py`` with 19 killed (a failed test or a timeout), one equivalent
    survivor and two mutants the run did not reach."""
    mutants = tmp_path / "mutants"
    write_meta(
        mutants,
        "a",
        {
            **{f"flask_observe.a.x_f__mutmut_{n}": 1 for n in range(1, 9)},
            "flask_observe.a.x_same__mutmut_1": 0,
            "flask_observe.a.x_forked__mutmut_3": 33,
        },
    )
    write_meta(
        mutants,
        "sentry/b",
        {
            **{f"flask_observe.sentry.b.x_g__mutmut_{n}": 1 for n in range(1, 18)},
            "flask_observe.sentry.b.x_g__mutmut_18": 24,  # a timeout
            "flask_observe.sentry.b.x_g__mutmut_19": -24,
            "flask_observe.sentry.b.x_same__mutmut_2": 0,
            "flask_observe.sentry.b.x_h__mutmut_1": None,
            "flask_observe.sentry.b.x_h__mutmut_2": None,
        },
    )
    (tmp_path / "survivors.txt").write_text(SURVIVORS, encoding="utf-8")
    return tmp_path


def run(tree: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, list[str]]:
    args = ["--mutants", str(tree / "mutants"), "--survivors", str(tree / "survivors.txt")]
    code = load_score().main([*args, *extra])
    captured = capsys.readouterr()
    return code, (captured.out + captured.err).splitlines()


def test_the_table_leaves_equivalent_survivors_out_of_the_score(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run(tree, capsys)
    assert [line.split() for line in lines[:4]] == [
        ["module", "mutants", "checked", "killed", "%", "strict", "%", "survived", "no",
         "tests", "equiv.", "untested", "open"],
        ["flask_observe/a.py", "10", "10", "8", "88.9", "80.0", "1", "1", "1", "1", "0"],
        ["flask_observe/sentry/b.py", "22", "20", "19", "100.0", "95.0", "1", "0", "1", "0",
         "0"],
        ["all", "32", "30", "27", "96.4", "90.0"],
    ]  # fmt: skip
    # a.py: 8 of 9 (the equivalent one left out) is under 90%; the untested one counts
    assert lines[4:] == ["under 90% killed: flask_observe/a.py"]
    assert code == 1


def test_no_module_under_the_target_and_nothing_open_exits_zero(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_meta(
        tree / "mutants",
        "a",
        {
            **{f"flask_observe.a.x_f__mutmut_{n}": 1 for n in range(1, 10)},
            "flask_observe.a.x_same__mutmut_1": 0,
        },
    )
    code, lines = run(tree, capsys)
    assert lines[1].split() == ["flask_observe/a.py", "10", "10", "9", "100.0", "90.0"] + [
        "1", "0", "1", "0", "0",
    ]  # fmt: skip
    assert len(lines) == 4  # the header, two modules, "all": nothing more to say
    assert code == 0


def test_a_survivor_not_listed_is_open_and_fails(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_meta(
        tree / "mutants",
        "sentry/b",
        {
            **{f"flask_observe.sentry.b.x_g__mutmut_{n}": 1 for n in range(1, 20)},
            "flask_observe.sentry.b.x_g__mutmut_20": 0,
            "flask_observe.sentry.b.x_h__mutmut_1": 5,
        },
    )
    code, lines = run(tree, capsys)
    assert lines[2].split() == ["flask_observe/sentry/b.py", "21", "21", "19", "90.5", "90.5"] + [
        "1", "1", "0", "0", "2",
    ]  # fmt: skip
    assert lines[4] == (
        "2 open: neither killed nor listed in mutation/survivors.txt "
        "(--open lists them; `.venv/bin/mutmut show NAME` shows one)"
    )
    assert code == 1
    code, lines = run(tree, capsys, "--open")
    assert lines[4:6] == [
        "open: flask_observe.sentry.b.x_g__mutmut_20 (survived)",
        "open: flask_observe.sentry.b.x_h__mutmut_1 (no tests)",
    ]
    assert code == 1


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("flask_observe.a.x_same__mutmut_1  # the same behaviour", id="no-kind"),
        pytest.param("flask_observe.a.x_same__mutmut_1 trivial  # why", id="unknown-kind"),
        pytest.param("flask_observe.a.x_same__mutmut_1 equivalent", id="no-reason"),
        pytest.param("flask_observe.a.x_same__mutmut_1 equivalent  #  ", id="empty-reason"),
    ],
)
def test_a_survivors_line_without_a_kind_and_a_reason_is_refused(
    tree: Path, capsys: pytest.CaptureFixture[str], line: str
) -> None:
    (tree / "survivors.txt").write_text(SURVIVORS + line + "\n", encoding="utf-8")
    code, lines = run(tree, capsys)
    assert lines == [
        "survivors.txt:6: expected 'PATTERN KIND  # reason' with KIND one of equivalent, "
        f"untested, got {line.strip()!r}"
    ]
    assert code == 2


def test_no_results_exits_two(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run(tmp_path, capsys)
    assert lines == [f"no results under {tmp_path / 'mutants'}: run `make mutate` first"]
    assert code == 2


def test_the_script_exits_with_the_code_of_its_verdict(tree: Path) -> None:
    args = ["--mutants", str(tree / "mutants"), "--survivors", str(tree / "survivors.txt")]
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stdout.splitlines()[-1] == "under 90% killed: flask_observe/a.py"


def test_the_projects_survivors_list_is_readable() -> None:
    """Every line of mutation/survivors.txt has a pattern, a kind and a reason (a line
    without raises here)."""
    kept = load_score().kept_survivors()
    assert kept and all(entry.kind in ("equivalent", "untested") for entry in kept)


def test_a_module_the_run_did_not_reach_is_named_and_fails(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_meta(tree / "mutants", "c", {"flask_observe.c.x_k__mutmut_1": None})
    code, lines = run(tree, capsys)
    assert lines[2].split() == ["flask_observe/c.py", "1", "0", "0", "-", "-"] + ["0"] * 5
    assert lines[5:] == ["under 90% killed: flask_observe/a.py", "not checked: flask_observe/c.py"]
    assert code == 1
