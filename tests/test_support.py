"""The test support itself: the ``services`` marker cannot rot (a run in which a test uses
a service-starting fixture without the marker stops before any test runs), and the app
factory builds apps the way the tests rely on."""

from __future__ import annotations

import textwrap

import pytest
from flask import Flask

from tests.support import services
from tests.support.apps import make_app

GUARDED = """
import pytest

from tests.support.services import starts_services

@pytest.fixture
@starts_services
def daemon():
    yield "started"

@pytest.fixture
def daemon_client(daemon):
    return daemon

@pytest.mark.services
def test_marked(daemon):
    pass

def test_unmarked(daemon):
    pass

def test_unmarked_through_another_fixture(daemon_client):
    pass

def test_no_service():
    pass
"""


@pytest.fixture
def guarded(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """A project with our conftest as a plugin and the test file above, run in this
    process; the fixtures it declares leave the registry when the test ends."""
    monkeypatch.setattr(services, "SERVICE_FIXTURES", set(services.SERVICE_FIXTURES))
    pytester.makeini("[pytest]\naddopts = --strict-markers\nmarkers = services: starts one\n")
    pytester.makeconftest('pytest_plugins = ["tests.conftest"]\n')
    pytester.makepyfile(test_guarded=textwrap.dedent(GUARDED))
    return pytester


@pytest.mark.parametrize("args", [(), ("-m", "not services")], ids=["all", "fast-loop"])
def test_an_unmarked_user_of_a_service_fixture_stops_the_run(
    guarded: pytest.Pytester, args: tuple[str, ...]
) -> None:
    result = guarded.runpytest_inprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = result.stderr.str()
    assert "not marked @pytest.mark.services" in errors
    assert "test_guarded.py::test_unmarked (uses daemon)" in errors
    assert "test_guarded.py::test_unmarked_through_another_fixture (uses daemon)" in errors
    assert "test_marked" not in errors and "test_no_service" not in errors
    result.assert_outcomes()  # nothing ran


def test_marked_users_run_and_the_fast_loop_leaves_them_out(guarded: pytest.Pytester) -> None:
    guarded.makepyfile(
        test_guarded=textwrap.dedent(GUARDED).replace("\ndef test_unmarked", "\ndef no_test")
    )
    guarded.runpytest_inprocess().assert_outcomes(passed=2)
    fast = guarded.runpytest_inprocess("-m", "not services")
    fast.assert_outcomes(passed=1, deselected=1)


def test_make_app_adds_routes_then_observe_and_defaults_to_testing() -> None:
    seen: list[bool] = []

    def add_index(app: Flask) -> None:
        seen.append("observe" in app.extensions)
        app.add_url_rule("/", "index", lambda: "index")

    app = make_app(add_index, name="support_app", OBSERVE_EXCLUDE_PATHS=["/health"])
    assert seen == [False]  # the routes came first
    assert "observe" in app.extensions
    assert app.name == "support_app" and app.testing
    assert app.config["OBSERVE_EXCLUDE_PATHS"] == ["/health"]
    assert app.test_client().get("/").text == "index"
    plain = make_app(observe=False, TESTING=False)
    assert "observe" not in plain.extensions and not plain.testing
