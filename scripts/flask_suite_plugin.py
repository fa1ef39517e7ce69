"""pytest plugin used by ``scripts/flask_suite.py`` inside Flask's own test suite.

With ``FLASK_SUITE_OBSERVE=1`` it wraps ``flask.Flask.__init__`` for the session so that every
app the suite builds gets ``Observe(app)`` right after construction (monkeypatching Flask is
fine in a test harness, never in the library). In both runs it checks that ``flask`` was
imported from the installed package (``FLASK_SUITE_FLASK_DIR``), not from the sdist's ``src/``,
and writes what it saw as JSON to ``FLASK_SUITE_REPORT``.

Loaded with ``-p flask_suite_plugin`` and this directory on ``PYTHONPATH``.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import sys
import typing as t
from pathlib import Path

import pytest

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from flask import Flask

#: "1" turns the wrapping on; anything else leaves Flask alone (the plain run).
OBSERVE_ENV = "FLASK_SUITE_OBSERVE"
#: Directory the ``flask`` package must be imported from (the installed one).
FLASK_DIR_ENV = "FLASK_SUITE_FLASK_DIR"
#: Path of the JSON report written at the end of the session.
REPORT_ENV = "FLASK_SUITE_REPORT"


class _Session:
    """What the plugin changed and saw during one pytest session."""

    def __init__(self, observe: bool) -> None:
        self.observe = observe
        self.observed_apps = 0
        self.observe_errors = 0
        self.restore: Callable[[], None] | None = None

    def wrap_flask_init(self) -> None:
        """Replace ``Flask.__init__`` with one that calls ``Observe(app)`` at its end.

        A subclass that overrides ``__init__`` gets Observe when ``super().__init__()``
        returns (none in Flask's suite does). An error from ``Observe`` propagates, so the
        test that built the app fails and is reported.
        """
        import flask

        from flask_observe import Observe

        original = flask.Flask.__init__
        session = self

        @functools.wraps(original)
        def observed_init(app: Flask, *args: t.Any, **kwargs: t.Any) -> None:
            original(app, *args, **kwargs)
            try:
                Observe(app)
            except BaseException:
                session.observe_errors += 1
                raise
            session.observed_apps += 1

        patch = pytest.MonkeyPatch()
        patch.setattr(flask.Flask, "__init__", observed_init)
        self.restore = patch.undo


_STATE = pytest.StashKey[_Session]()


def _module_dir(name: str) -> str:
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    return str(Path(path).resolve().parent) if path else "<not imported>"


def _warm_up() -> None:
    """Build one observed app and serve one request before any test runs.

    ``flask_observe`` imports some modules on first use; some Flask tests remove every
    module imported during the test from ``sys.modules``. Importing them up front keeps
    one copy of each module for the whole session, as in a real process.
    """
    from flask import Flask

    from flask_observe import Observe

    app = Flask("flask_suite_warm_up")
    app.config["TESTING"] = True
    Observe(app)
    app.test_client().get("/")


def _pytest_compat() -> None:
    """Give Flask's suite the names it imports from pytest's internals.

    Flask 3.1's ``tests/conftest.py`` and ``tests/test_cli.py`` use
    ``_pytest.monkeypatch.notset``, which newer pytest renamed ``NOTSET`` (the same
    sentinel ``MonkeyPatch.undo`` compares against), so alias it in both runs.
    """
    import _pytest.monkeypatch

    if not hasattr(_pytest.monkeypatch, "notset"):
        _pytest.monkeypatch.notset = _pytest.monkeypatch.NOTSET  # type: ignore[attr-defined]


def pytest_configure(config: pytest.Config) -> None:
    _pytest_compat()
    expected = os.environ.get(FLASK_DIR_ENV)
    if not expected:
        raise pytest.UsageError(f"{FLASK_DIR_ENV} is not set: run this via scripts/flask_suite.py")
    importlib.import_module("flask")  # normally already imported by Flask's conftest
    actual = _module_dir("flask")
    if actual != str(Path(expected).resolve()):
        raise pytest.UsageError(
            f"flask was imported from {actual}, expected the installed package in {expected}"
        )
    config.stash[_STATE] = _Session(observe=os.environ.get(OBSERVE_ENV) == "1")


def pytest_report_header(config: pytest.Config) -> list[str]:
    session = config.stash[_STATE]
    lines = [f"flask-suite: flask from {_module_dir('flask')}"]
    if session.observe:
        lines.append(f"flask-suite: Observe(app) on every app, from {_module_dir('flask_observe')}")
    else:
        lines.append("flask-suite: plain run, Flask left alone")
    return lines


def pytest_sessionstart(session: pytest.Session) -> None:
    state = session.config.stash[_STATE]
    if state.observe:
        _warm_up()
        state.wrap_flask_init()


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash[_STATE]
    if state.restore is not None:
        state.restore()
        state.restore = None
    report = os.environ.get(REPORT_ENV)
    if report:
        data = {
            "observe": state.observe,
            "observed_apps": state.observed_apps,
            "observe_errors": state.observe_errors,
            "flask_dir": _module_dir("flask"),
            "flask_observe_dir": _module_dir("flask_observe"),
        }
        Path(report).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
