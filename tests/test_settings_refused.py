"""Settings that used to do nothing, silently, are refused or warned about:
``DEBUG_TB_HOSTS`` as a string, an ``OBSERVE_EXCLUDE_PATHS`` wildcard that cannot
match, and ``OBSERVE_TOOLBAR_PANELS = True`` with the toolbar off. ``/health`` and
``/health/`` exclude each other's spelling."""

from __future__ import annotations

import logging
import typing as t

import pytest
from flask import Flask

from flask_observe import ConfigError
from flask_observe import Observe
from flask_observe.paths import ExcludedPaths
from tests.support.toolbar import make_toolbar_app

if t.TYPE_CHECKING:
    from tests.support.apps import AppFactory


HOSTS_REFUSED = "DEBUG_TB_HOSTS: expected a list or tuple of client addresses such as ['127.0.0.1']"


@pytest.mark.parametrize(
    "hosts",
    [
        pytest.param("10.0.0.10", id="string"),
        pytest.param({"10.0.0.10"}, id="set"),
        pytest.param([10], id="not-strings"),
    ],
)
def test_debug_tb_hosts_must_be_a_list_of_addresses(hosts: object) -> None:
    with pytest.raises(ConfigError) as caught:
        make_toolbar_app(
            toolbar_first=True, DEBUG=False, DEBUG_TB_ENABLED=True, DEBUG_TB_HOSTS=hosts
        )
    assert caught.value.key == "DEBUG_TB_HOSTS"
    assert str(caught.value).startswith(HOSTS_REFUSED)


def test_a_string_of_hosts_is_refused_at_the_first_request_when_observe_came_first() -> None:
    app = make_toolbar_app(DEBUG=False, DEBUG_TB_ENABLED=True, DEBUG_TB_HOSTS="10.0.0.10")
    with pytest.raises(ConfigError) as caught:
        app.test_client().get("/", environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert str(caught.value).startswith(HOSTS_REFUSED)


def test_debug_tb_hosts_compares_addresses_whole() -> None:
    app = make_toolbar_app(
        DEBUG=False,
        DEBUG_TB_ENABLED=True,
        DEBUG_TB_HOSTS=["10.0.0.10"],
        OBSERVE_TOOLBAR_PANELS=True,
    )
    client = app.test_client()
    for address, status in (("10.0.0.1", 404), ("10.0.0.10", 200)):
        response = client.get("/_observe/memory/heap", environ_base={"REMOTE_ADDR": address})
        assert response.status_code == status, address
        response.close()


@pytest.mark.parametrize(
    "pattern",
    ["/static/*.css", "/*/health", "/a*b"],
)
def test_a_wildcard_that_cannot_match_is_refused(make_app: AppFactory, pattern: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_app(OBSERVE_EXCLUDE_PATHS=[pattern])
    assert str(caught.value) == (
        f"OBSERVE_EXCLUDE_PATHS: {pattern!r} would exclude nothing: '*' is a wildcard only "
        "as the last character, a prefix such as '/static/*'; list the paths, or a prefix"
    )


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        pytest.param(["/health/"], "/health", True, id="slash-pattern-bare-path"),
        pytest.param(["/health/"], "/health/", True, id="slash-pattern-slash-path"),
        pytest.param(["/health"], "/health/", True, id="bare-pattern-slash-path"),
        pytest.param(["/health"], "/healthz", False, id="not-a-prefix"),
        pytest.param(["/health"], "/health/deep", False, id="not-below"),
        pytest.param(["/"], "/", True, id="root"),
        pytest.param(["/"], "/health", False, id="root-only"),
        pytest.param(["/static/*"], "/static/app.css", True, id="prefix"),
        pytest.param(["/static/*"], "/staticx", False, id="prefix-is-literal"),
    ],
)
def test_what_a_pattern_excludes(patterns: list[str], path: str, excluded: bool) -> None:
    assert ExcludedPaths(patterns).match(path) is excluded


def test_health_with_a_slash_is_excluded_through_the_app(make_app: AppFactory) -> None:
    def routes(app: Flask) -> None:
        @app.get("/health")
        def health() -> str:
            return "ok"

    app = make_app(routes, OBSERVE_EXCLUDE_PATHS=["/health/"])
    response = app.test_client().get("/health")
    assert response.get_data(as_text=True) == "ok"
    assert "X-Runtime" not in response.headers


def test_panels_asked_for_with_the_toolbar_off_warn_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="flask_observe"):
        app = make_toolbar_app(DEBUG=False, OBSERVE_TOOLBAR_PANELS=True)
        app.test_client().get("/")
        app.test_client().get("/")
    assert [record.getMessage() for record in caplog.records] == [
        "Flask-Observe: OBSERVE_TOOLBAR_PANELS is True but the debug toolbar is off on app "
        f"{app.name!r} (app.debug is off and DEBUG_TB_ENABLED is not True): no panel will "
        "be shown."
    ]


def test_panels_asked_for_without_the_toolbar_set_up_warn_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="flask_observe"):
        app = make_toolbar_app(observe=False)  # the toolbar, then a second app without it
        bare = Flask("no_toolbar_asked")
        bare.config.update(DEBUG=True, SECRET_KEY="x", OBSERVE_TOOLBAR_PANELS=True)
        bare.add_url_rule("/", "index", lambda: "ok")
        Observe(bare)
        for _ in range(2):
            assert bare.test_client().get("/").get_data(as_text=True) == "ok"
        app.test_client().get("/")
    assert [record.getMessage() for record in caplog.records] == [
        "Flask-Observe: OBSERVE_TOOLBAR_PANELS is True but Flask-DebugToolbar is not set up "
        "on app 'no_toolbar_asked': no panel, no /_observe page and no X-Observe-Report "
        "header. Call DebugToolbarExtension(app)."
    ]


def test_panels_asked_for_with_the_toolbar_after_observe_do_not_warn(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="flask_observe"):
        app = make_toolbar_app(OBSERVE_TOOLBAR_PANELS=True)  # Observe first
        app.test_client().get("/").close()
    assert caplog.records == []


def test_panels_left_to_their_default_do_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="flask_observe"):
        make_toolbar_app(DEBUG=False)
    assert caplog.records == []
