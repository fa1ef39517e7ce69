"""The package's shape: its modules import in one direction (no cycle, only the extension
imports the features, errors and sentry never import each other), and each module
imports alone."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

import flask_observe

if t.TYPE_CHECKING:
    from collections.abc import Iterator


PACKAGE = Path(flask_observe.__file__).parent


def _module_names() -> list[str]:
    names = ["flask_observe"]
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="flask_observe."):
        names.append(info.name)
    return sorted(names)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING") or (
        isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
    )


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at module level or inside functions, except those under
    ``if TYPE_CHECKING:`` (never executed)."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports when run."""
    names = set(_module_names())
    graph: dict[str, set[str]] = {}
    for name in names:
        is_package = name == "flask_observe" or (PACKAGE / Path(*name.split(".")[1:])).is_dir()
        path = (
            PACKAGE.joinpath(*name.split(".")[1:], "__init__.py")
            if is_package
            else PACKAGE.joinpath(*name.split(".")[1:]).with_suffix(".py")
        )
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = name if is_package else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in _runtime_imports(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    parent = package.split(".")
                    parent = parent[: len(parent) - node.level + 1]
                    base = ".".join([*parent, *([base] if base else [])])
                # ``from pkg import mod`` imports the module ``pkg.mod``; ``from pkg
                # import name`` reads an attribute of ``pkg`` itself.
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in names else base
                    for alias in node.names
                ]
            edges.update(target for target in targets if target in names and target != name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return path[path.index(target) :] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_import_graph_is_acyclic() -> None:
    graph = import_graph()
    assert len(graph) > 20  # the walk found the package's modules
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_only_the_extension_and_the_root_import_the_extension() -> None:
    graph = import_graph()
    importers = {name for name, targets in graph.items() if "flask_observe.extension" in targets}
    assert importers == {"flask_observe"}
    state_imports = graph["flask_observe.state"]
    assert state_imports == set(), state_imports


@pytest.mark.parametrize("module", _module_names())
def test_each_module_imports_alone(module: str) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_errors_and_sentry_meet_only_in_the_extension() -> None:
    """errors gets its capture callable from init_app: neither imports the other."""
    graph = import_graph()
    sentry_modules = {name for name in graph if name.startswith("flask_observe.sentry")}
    assert "flask_observe.sentry.capture" in sentry_modules
    assert graph["flask_observe.errors"] & sentry_modules == set()
    assert {name for name in sentry_modules if "flask_observe.errors" in graph[name]} == set()
