"""Every Python code sample in the docs and the README runs.

Samples of one page run in order in one namespace (a page may build on its earlier
samples), which starts with a fresh ``app = Flask("docs_sample")`` so that a sample can show
``@app.get(...)`` without boilerplate. Shell samples (``::`` blocks, ``sh``) are not run.
A sample that must not run marks itself with a first line ``# not run: <reason>``.
"""

from __future__ import annotations

import re
import textwrap
import typing as t
from pathlib import Path

import pytest
from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
DIRECTIVE = re.compile(r"^(\s*)\.\. code-block:: python\s*$")
FENCE = re.compile(r"^```python\s*$")


def rst_samples(text: str) -> list[tuple[int, str]]:
    lines = text.splitlines()
    samples: list[tuple[int, str]] = []
    index = 0
    while index < len(lines):
        match = DIRECTIVE.match(lines[index])
        index += 1
        if not match:
            continue
        indent = len(match.group(1))
        while index < len(lines) and lines[index].strip().startswith(":"):
            index += 1  # directive options
        start = index
        block: list[str] = []
        while index < len(lines) and (
            not lines[index].strip() or len(lines[index]) - len(lines[index].lstrip()) > indent
        ):
            block.append(lines[index])
            index += 1
        samples.append((start + 1, textwrap.dedent("\n".join(block))))
    return samples


def markdown_samples(text: str) -> list[tuple[int, str]]:
    samples: list[tuple[int, str]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        if FENCE.match(lines[index]):
            start = index + 1
            end = lines.index("```", start)
            samples.append((start + 1, "\n".join(lines[start:end])))
            index = end
        index += 1
    return samples


def pages() -> list[t.Any]:
    found = [pytest.param(ROOT / "README.md", id="README.md")]
    for path in sorted((ROOT / "docs").rglob("*.rst")):
        if "_build" not in path.parts:
            found.append(pytest.param(path, id=str(path.relative_to(ROOT))))
    return found


def test_pages_have_samples() -> None:
    """The extraction itself works (a broken regex would make every page pass)."""
    assert markdown_samples((ROOT / "README.md").read_text())
    assert rst_samples((ROOT / "docs" / "quickstart.rst").read_text())
    assert rst_samples((ROOT / "docs" / "timing.rst").read_text())


@pytest.mark.parametrize("page", pages())
def test_code_samples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = page.read_text()
    samples = markdown_samples(text) if page.suffix == ".md" else rst_samples(text)
    monkeypatch.chdir(tmp_path)
    # Not Flask("docs"): that name imports as the docs/ directory (a namespace package),
    # and Flask's root-path lookup fails when two checkouts (a git worktree and the
    # editable install) both put a docs/ directory on sys.path.
    namespace: dict[str, t.Any] = {"__name__": "docs_sample", "app": Flask("docs_sample")}
    for line, source in samples:
        if source.lstrip().startswith("# not run:"):
            continue
        code = compile(source, f"{page.name}:{line}", "exec")
        try:
            exec(code, namespace)
        except Exception as error:  # pragma: no cover - the failure message is the point
            pytest.fail(f"{page.name}, sample at line {line} failed: {error!r}\n{source}")
