"""Flask's own contracts hold with Observe on: debug trapping, the app's own generic
handlers, nothing registered when JSON errors are off, apps freed by the collector, and a
package whose modules import in one direction."""

from __future__ import annotations

import ast
import gc
import json
import pkgutil
import subprocess
import sys
import typing as t
import weakref
from pathlib import Path

import pytest
from flask import abort
from flask import Flask
from flask import request
from werkzeug.exceptions import BadRequestKeyError
from werkzeug.exceptions import HTTPException
from werkzeug.exceptions import InternalServerError
from werkzeug.exceptions import NotFound

import flask_observe
from flask_observe import Observe
from flask_observe.errors import handle_http_exception
from flask_observe.errors import PROBLEM_MIMETYPE
from tests.support.apps import make_app
from tests.support.sentry import closed_port_dsn

if t.TYPE_CHECKING:
    from collections.abc import Iterator


def build_app(observe: bool = True, **config: object) -> Flask:
    """An app as plain Flask configures it (not in testing mode unless *config* says so)."""
    settings: dict[str, t.Any] = {"TESTING": False, **config}
    return make_app(add_failing_routes, observe=observe, name="transparent", **settings)


def add_failing_routes(app: Flask) -> None:
    @app.post("/form")
    def form() -> str:
        return request.form["missing"]

    @app.get("/abort/<int:code>")
    def abort_code(code: int) -> str:
        abort(code)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")


def our_handlers(app: Flask) -> list[object]:
    return [
        handler
        for by_code in app.error_handler_spec.values()
        for by_class in by_code.values()
        for handler in by_class.values()
        if getattr(handler, "__module__", "").startswith("flask_observe")
    ]


# --- debug trapping ------------------------------------------------------------------


@pytest.mark.parametrize("observe", [False, True], ids=["plain", "observe"])
def test_bad_request_key_error_is_trapped_in_debug(observe: bool) -> None:
    app = build_app(observe)
    app.debug = True  # TRAP_BAD_REQUEST_ERRORS defaults to trapping in debug mode
    with pytest.raises(BadRequestKeyError):
        app.test_client().post("/form")


@pytest.mark.parametrize("observe", [False, True], ids=["plain", "observe"])
def test_trap_bad_request_errors_outside_debug(observe: bool) -> None:
    app = build_app(observe, TESTING=True, TRAP_BAD_REQUEST_ERRORS=True)
    with pytest.raises(KeyError):
        app.test_client().post("/form")


@pytest.mark.parametrize("observe", [False, True], ids=["plain", "observe"])
def test_trap_http_exceptions(observe: bool) -> None:
    app = build_app(observe, TESTING=True, TRAP_HTTP_EXCEPTIONS=True)
    client = app.test_client()
    with pytest.raises(NotFound):
        client.get("/nowhere")
    with pytest.raises(InternalServerError):
        client.get("/abort/500")


def test_untrapped_bad_request_is_still_a_problem() -> None:
    app = build_app(TRAP_BAD_REQUEST_ERRORS=False)
    app.debug = True
    response = app.test_client().post("/form")
    assert (response.status_code, response.mimetype) == (400, PROBLEM_MIMETYPE)


def test_trapped_unhandled_error_is_answered_when_not_propagated() -> None:
    """TRAP_HTTP_EXCEPTIONS must not make the 500 of an unhandled error raise."""
    app = build_app(TRAP_HTTP_EXCEPTIONS=True, PROPAGATE_EXCEPTIONS=False)
    response = app.test_client().get("/boom")
    assert (response.status_code, response.mimetype) == (500, PROBLEM_MIMETYPE)


# --- the app's own generic handlers ----------------------------------------------------


def add_generic_handler(app: Flask, exception: type[Exception]) -> list[BaseException]:
    seen: list[BaseException] = []

    def mine(error: Exception) -> tuple[str, int]:
        seen.append(error)
        code = error.code if isinstance(error, HTTPException) and error.code else 500
        return f"mine {type(error).__name__}", code

    app.register_error_handler(exception, mine)
    return seen


@pytest.mark.parametrize("exception", [Exception, HTTPException])
@pytest.mark.parametrize("order", ["before-init", "after-init"])
def test_app_generic_handler_receives_http_errors(exception: type[Exception], order: str) -> None:
    app = build_app(observe=False, PROPAGATE_EXCEPTIONS=False)
    if order == "before-init":
        seen = add_generic_handler(app, exception)
        Observe(app)
    else:
        Observe(app)
        seen = add_generic_handler(app, exception)
    client = app.test_client()
    missing = client.get("/nowhere")
    assert (missing.status_code, missing.get_data()) == (404, b"mine NotFound")
    aborted = client.get("/abort/500")
    assert (aborted.status_code, aborted.get_data()) == (500, b"mine InternalServerError")
    assert [type(e) for e in seen] == [NotFound, InternalServerError]


def test_app_exception_handler_still_sees_unhandled_errors_first() -> None:
    app = build_app(PROPAGATE_EXCEPTIONS=False)
    seen = add_generic_handler(app, Exception)
    response = app.test_client().get("/boom")
    assert response.get_data() == b"mine RuntimeError"
    assert [type(e) for e in seen] == [RuntimeError]


def test_blueprint_generic_handler_wins_for_its_routes() -> None:
    from flask import Blueprint

    app = build_app(observe=False)
    bp = Blueprint("bp", __name__)

    @bp.get("/bp/abort")
    def bp_abort() -> str:
        abort(403)

    @bp.errorhandler(Exception)
    def bp_handler(error: Exception) -> tuple[str, int]:
        return "blueprint", 418

    app.register_blueprint(bp)
    Observe(app)
    client = app.test_client()
    assert client.get("/bp/abort").get_data() == b"blueprint"
    assert client.get("/abort/403").mimetype == PROBLEM_MIMETYPE


# --- JSON errors off ---------------------------------------------------------------------


def test_json_errors_off_registers_nothing_on_the_error_path() -> None:
    app = build_app(OBSERVE_JSON_ERRORS=False)
    assert our_handlers(app) == []
    plain = build_app(observe=False).test_client()
    client = app.test_client()
    for path in ("/nowhere", "/abort/503"):
        assert client.get(path).get_data() == plain.get(path).get_data()


def test_json_errors_off_with_sentry_registers_only_the_capturing_handler() -> None:
    app = build_app(OBSERVE_JSON_ERRORS=False, OBSERVE_SENTRY_DSN=closed_port_dsn())
    assert our_handlers(app) == [handle_http_exception]
    plain = build_app(observe=False).test_client()
    response = app.test_client().get("/nowhere")
    assert response.get_data() == plain.get("/nowhere").get_data()  # Flask's own page


def test_json_errors_off_with_sentry_keeps_trapping_and_app_handlers() -> None:
    app = build_app(OBSERVE_JSON_ERRORS=False, OBSERVE_SENTRY_DSN=closed_port_dsn(), TESTING=True)
    seen = add_generic_handler(app, Exception)
    assert app.test_client().get("/nowhere").get_data() == b"mine NotFound"
    assert [type(e) for e in seen] == [NotFound]
    trapping = build_app(
        OBSERVE_JSON_ERRORS=False,
        OBSERVE_SENTRY_DSN=closed_port_dsn(),
        TESTING=True,
        TRAP_HTTP_EXCEPTIONS=True,
    )
    with pytest.raises(NotFound):
        trapping.test_client().get("/nowhere")


def test_json_errors_on_is_still_the_default_body() -> None:
    response = build_app().test_client().get("/nowhere")
    body = json.loads(response.get_data())
    assert (response.mimetype, body["status"]) == (PROBLEM_MIMETYPE, 404)


# --- garbage collection ----------------------------------------------------------------


def test_apps_with_observe_are_freed_by_the_collector() -> None:
    refs = []
    for index in range(20):
        app = build_app(OBSERVE_EXCLUDE_PATHS=["/health"], TESTING=bool(index % 2))
        app.test_client().get("/nowhere")
        refs.append(weakref.ref(app))
        del app
    gc.collect()
    assert [ref() for ref in refs] == [None] * 20


# --- one-way imports -----------------------------------------------------------------------


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


# --- the thread's context ---------------------------------------------------------------

#: Serves a success, an unhandled error (answered by the app's own 500 handler, which
#: reads sentry_sdk.last_event_id()) and a success again in a fresh interpreter, and
#: prints what each request saw and what the main thread's context holds in between.
_CONTEXT_SCRIPT = """
import contextvars, json, sys
from flask import Flask
from flask_observe import Observe

def names():
    return sorted(var.name for var in contextvars.copy_context())

app = Flask("context")
app.config.update(json.loads(sys.argv[1]))

def last_id():  # read in a copy: sentry-sdk sets the scope it reads, if none is set
    sdk = sys.modules.get("sentry_sdk")
    return contextvars.copy_context().run(sdk.last_event_id) if sdk is not None else None

@app.get("/ok")
def ok():
    return {"vars": names(), "last": last_id()}

@app.get("/boom")
def boom():
    raise RuntimeError("boom")

@app.errorhandler(500)
def own_500(error):
    return {"vars": names(), "last": last_id()}, 500

Observe(app)
client = app.test_client()
report = {"init": names()}
report["ok"] = client.get("/ok").json
report["after_ok"] = names()
response = client.get("/boom")
report["boom"] = response.json
report["after_boom"] = names()
report["ok_again"] = client.get("/ok").json
report["after_all"] = names()
report["sdk_imported"] = "sentry_sdk" in sys.modules
print(json.dumps(report))
"""


def _context_report(**config: object) -> dict[str, t.Any]:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", _CONTEXT_SCRIPT, json.dumps(config)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return t.cast("dict[str, t.Any]", json.loads(result.stdout.splitlines()[-1]))


def test_timing_alone_never_imports_sentry_sdk() -> None:
    """Importing sentry-sdk sets three context variables in the importing thread, which
    makes each of Flask's own context changes dearer on every later request: an app
    with no Sentry configured must not pay for it, errors included."""
    report = _context_report(PROPAGATE_EXCEPTIONS=False)
    assert report["sdk_imported"] is False
    assert report["ok"]["vars"] == ["flask.app_ctx", "flask.request_ctx"]
    assert report["init"] == report["after_ok"] == report["after_all"] == []


def test_sentry_leaves_the_thread_context_as_it_found_it() -> None:
    """With a DSN, sentry-sdk is imported and initialised, and an error is captured,
    all without leaving a variable in the serving thread's context; within the
    request, sentry_sdk.last_event_id() answers the captured id, and only there."""
    report = _context_report(
        PROPAGATE_EXCEPTIONS=False,
        OBSERVE_SENTRY_DSN=closed_port_dsn(),
        OBSERVE_SENTRY_ERROR_RATE=None,
    )
    assert report["sdk_imported"] is True
    assert report["init"] == report["after_ok"] == report["after_boom"] == report["after_all"] == []
    assert report["ok"] == {"vars": ["flask.app_ctx", "flask.request_ctx"], "last": None}
    assert report["boom"]["last"] is not None and len(report["boom"]["last"]) == 32
    assert report["ok_again"]["last"] is None  # the id does not leak into the next request
