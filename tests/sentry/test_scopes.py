"""What Flask-Observe takes from sentry-sdk itself: the names it imports, and the two
private ones it reads (flask_observe/sentry/scopes.py says why). Each test fails, naming
what changed, as soon as a sentry-sdk release moves one of them; ``make sentry-matrix``
runs them against the lowest sentry-sdk pyproject.toml declares and the newest."""

from __future__ import annotations

import contextvars
import importlib
import logging
import typing as t

import pytest
import sentry_sdk

from flask_observe.sentry import scopes
from tests.support.sentry import closed_port_dsn

if t.TYPE_CHECKING:
    pass


#: Every sentry-sdk name the package imports, by module.
IMPORTED = [
    ("sentry_sdk", "get_client"),
    ("sentry_sdk", "init"),
    ("sentry_sdk", "flush"),
    ("sentry_sdk", "last_event_id"),
    ("sentry_sdk.integrations.atexit", "AtexitIntegration"),
    ("sentry_sdk.integrations.dedupe", "DedupeIntegration"),
    ("sentry_sdk.scope", "Scope"),
    ("sentry_sdk.scope", "ScopeType"),
    ("sentry_sdk.scope", "use_isolation_scope"),
    ("sentry_sdk.scope", "use_scope"),
    ("sentry_sdk.scope", "add_global_event_processor"),
    ("sentry_sdk.serializer", "serialize"),
    ("sentry_sdk.utils", "event_from_exception"),
    ("sentry_sdk.utils", "Dsn"),
    ("sentry_sdk.utils", "BadDsn"),
]


@pytest.mark.parametrize(("module", "name"), [pytest.param(*p, id=".".join(p)) for p in IMPORTED])
def test_every_name_the_package_imports_is_there(module: str, name: str) -> None:
    assert hasattr(importlib.import_module(module), name), f"sentry-sdk has no {module}.{name}"


def test_the_scope_variables_are_the_ones_sentry_sdk_reads(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """sentry_sdk.scope._isolation_scope and _current_scope hold the scopes its public
    getters answer."""

    def inside() -> None:
        variables = scopes.scope_variables()
        assert variables is not None, "sentry-sdk no longer has _isolation_scope/_current_scope"
        isolation_var, current_var = variables
        assert scopes.thread_scopes() == (None, None)  # a fresh context has none...
        assert list(contextvars.copy_context()) == []  # ...and reading set none
        with sentry_sdk.isolation_scope() as isolation:
            assert isolation_var.get(None) is isolation
            assert current_var.get(None) is sentry_sdk.Scope.get_current_scope()
            assert scopes.thread_scopes() == (isolation, sentry_sdk.Scope.get_current_scope())

    with caplog.at_level(logging.WARNING, logger="flask_observe"):
        contextvars.Context().run(inside)
    assert caplog.records == []  # no fallback warning


def test_a_noted_last_event_id_is_what_last_event_id_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Scope._last_event_id is what sentry_sdk.last_event_id() reads, and what
    Scope.capture_event sets on the isolation scope."""
    with caplog.at_level(logging.WARNING, logger="flask_observe"):
        with sentry_sdk.isolation_scope() as isolation:
            scopes.note_last_event_id(isolation, "0123456789abcdef0123456789abcdef")
            assert sentry_sdk.last_event_id() == "0123456789abcdef0123456789abcdef"
    assert caplog.records == []  # no fallback warning
    sentry_sdk.init(dsn=closed_port_dsn(), default_integrations=False)
    with sentry_sdk.isolation_scope() as isolation:
        event_id = sentry_sdk.capture_message("hello")
        assert event_id is not None
        assert getattr(isolation, "_last_event_id", None) == event_id


def test_a_pushed_isolation_scope_is_gone_after_the_response() -> None:
    """The id answered for the rest of a request leaves the thread's context as it was
    found once the response is processed (Flask's after-request functions)."""
    from flask import Flask

    app = Flask("pushed")
    seen: dict[str, object] = {}

    @app.get("/")
    def index() -> str:
        environ: dict[str, t.Any] = {}
        scopes.answer_last_event_id(environ, None, "fedcba9876543210fedcba9876543210")
        seen["during"] = contextvars.copy_context().run(sentry_sdk.last_event_id)
        return "ok"

    def served() -> None:
        assert app.test_client().get("/").status_code == 200
        seen["after"] = sorted(var.name for var in contextvars.copy_context())

    contextvars.Context().run(served)
    assert seen == {"during": "fedcba9876543210fedcba9876543210", "after": []}
