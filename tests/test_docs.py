"""Every Python code sample in the docs and the README runs.

Samples of one page run in order in one namespace (a page may build on its earlier
samples), which starts with a fresh ``app = Flask("docs_sample")`` so that a sample can
show ``@app.get(...)`` without boilerplate.

Which blocks are Python samples:

- reST: ``.. code-block:: python`` (also ``code``/``sourcecode``, ``py``, ``python3``),
  and literal blocks introduced with ``::`` or a ``code-block`` without a language, when
  their text parses as Python and does something (Sphinx highlights these as Python
  too). Shell sessions, HTTP exchanges, ``pip`` lines and output do not parse, so they
  are not run; label a shell or config block that happens to parse
  (``NAME=value``) with its language (``.. code-block:: sh``).
- Markdown: fences labelled ``python`` (or ``py``), and unlabelled fences that parse as
  Python.

A sample that must not run (a fragment that needs names defined elsewhere) starts with
the visible line ``# not run: <reason>``. It must still compile. Keep these rare: most
fragments can define what they use.
"""

from __future__ import annotations

import ast
import re
import textwrap
import typing as t
from pathlib import Path

import pytest
from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
PYTHON = {"python", "python3", "py", "py3"}
#: Sphinx's default ``highlight_language``: Python if the text is Python, else none.
GUESS = "default"
CODE_DIRECTIVE = re.compile(r"^(\s*)\.\. (?:code-block|code|sourcecode)::[ \t]*(\S*)\s*$")
HIGHLIGHT = re.compile(r"^\s*\.\. highlight::\s*(\S+)\s*$")
EXPLICIT_MARKUP = re.compile(r"^\s*\.\.(\s|$)")
LIST_MARKER = re.compile(r"^([-*+•]|\d+[.)]|#\.|\(\d+\))\s+")
FENCE = re.compile(r"^(```|~~~)\s*([\w+-]*)\s*$")
NOT_RUN = "# not run:"


def is_python(source: str) -> bool:
    """Whether a block without a language is a Python sample.

    It has to parse, and to do something: a block of bare expressions without a call
    (JSON, a lone name, ``[section]``) is data or output, not a sample.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False
    for node in tree.body:
        if not isinstance(node, ast.Expr):
            return True
        if any(isinstance(inner, ast.Call | ast.Await) for inner in ast.walk(node)):
            return True
    return False


def indent_of(line: str) -> int:
    return len(line) - len(line.lstrip())


def text_indent(line: str) -> int:
    """Where the text of a paragraph line starts (after a list marker)."""
    stripped = line.lstrip()
    marker = LIST_MARKER.match(stripped)
    return indent_of(line) + (marker.end() if marker else 0)


def indented_block(lines: list[str], index: int, indent: int) -> tuple[int, str]:
    """The block of lines from *index* indented more than *indent*: (end, dedented text)."""
    block: list[str] = []
    while index < len(lines) and (not lines[index].strip() or indent_of(lines[index]) > indent):
        block.append(lines[index])
        index += 1
    return index, textwrap.dedent("\n".join(block)).strip("\n")


def ends_with_literal_marker(line: str) -> bool:
    """A paragraph line ending in ``::`` (not a directive, nor a ``:::::`` underline)."""
    stripped = line.strip()
    if not stripped.endswith("::") or EXPLICIT_MARKUP.match(line):
        return False
    return stripped == "::" or set(stripped) != {":"}


def rst_samples(text: str) -> list[tuple[int, str]]:
    """The Python samples of a reST page: (line number, source)."""
    lines = text.splitlines()
    samples: list[tuple[int, str]] = []
    default = GUESS
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if highlight := HIGHLIGHT.match(line):
            default = highlight.group(1)
            continue
        if directive := CODE_DIRECTIVE.match(line):
            language = directive.group(2) or default
            indent = len(directive.group(1))
            while index < len(lines) and lines[index].strip().startswith(":"):
                index += 1  # directive options
        elif ends_with_literal_marker(line):
            language = default
            indent = text_indent(line)
            while index < len(lines) and not lines[index].strip():
                index += 1
            if index == len(lines) or indent_of(lines[index]) <= indent:
                continue  # "::" at the end of a paragraph with no block after it
        else:
            continue
        start = index
        while start < len(lines) and not lines[start].strip():
            start += 1
        index, source = indented_block(lines, index, indent)
        if language in PYTHON or (language == GUESS and is_python(source)):
            samples.append((start + 1, source))
    return samples


def markdown_samples(text: str) -> list[tuple[int, str]]:
    """The Python samples of a Markdown page: (line number, source)."""
    samples: list[tuple[int, str]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        index += 1
        if not fence:
            continue
        start = index
        end = lines.index(fence.group(1), start)
        source = "\n".join(lines[start:end])
        language = fence.group(2).lower()
        if language in PYTHON or (not language and is_python(source)):
            samples.append((start + 1, source))
        index = end + 1
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


RST = """\
Title
=====

A Python literal block::

    x = 1

Shell and output are not run::

    $ curl -si http://127.0.0.1:5000/
    HTTP/1.1 200 OK

::

    pip install 'Flask-Observe[all]'

Output that parses::

    {"type": "about:blank", "status": 404}

- A list item whose block is Python::

      y = x + 1

  The item goes on.

.. note::

   In a directive, expanded form:

   ::

       z = y + 1

.. code-block:: python

    # not run: a fragment
    observe.init_app(app)

.. code-block:: sh

    FLASK_OBSERVE_STATSD_HOST=statsd.internal flask run

.. code-block::

    print("no language: guessed")

.. highlight:: none

Highlighting off, so not a sample::

    w = 1

.. code-block:: py

    v = 1
"""


def test_rst_literal_blocks_are_found() -> None:
    assert rst_samples(RST) == [
        (6, "x = 1"),
        (23, "y = x + 1"),
        (33, "z = y + 1"),
        (37, "# not run: a fragment\nobserve.init_app(app)"),
        (46, 'print("no language: guessed")'),
        (56, "v = 1"),
    ]


def test_markdown_fences_are_found() -> None:
    text = (
        "```sh\npip install x\n```\n\n```\nimport os\n```\n\n"
        "```\nmake demo\n```\n\n```py\nx = 1\n```\n\n```json\n{}\n```\n"
    )
    assert markdown_samples(text) == [(6, "import os"), (14, "x = 1")]


@pytest.mark.parametrize("page", pages())
def test_code_samples_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = page.read_text()
    samples = markdown_samples(text) if page.suffix == ".md" else rst_samples(text)
    monkeypatch.chdir(tmp_path)
    # Not Flask("docs"): that name imports as the docs/ directory (a namespace package),
    # and Flask's root-path lookup fails when two checkouts (a git worktree and the
    # editable install) both put a docs/ directory on sys.path.
    namespace: dict[str, t.Any] = {"__name__": "docs_sample", "app": Flask("docs_sample")}
    failures: list[str] = []
    for line, source in samples:
        try:
            code = compile(source, f"{page.name}:{line}", "exec")
            if not source.lstrip().startswith(NOT_RUN):
                exec(code, namespace)
        except Exception as error:  # pragma: no cover - the failure message is the point
            failures.append(f"{page.name}, sample at line {line} failed: {error!r}\n{source}")
    # All of a page's failures at once, not only the first.
    assert not failures, "\n\n".join(failures)
