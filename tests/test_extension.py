"""The extension contract: per-app state, app factories, many apps, no side effects."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import typing as t

import pytest
from flask import Flask

from flask_observe import Observe
from flask_observe.extension import get_state
from flask_observe.extension import ObserveState

if t.TYPE_CHECKING:
    from collections.abc import Callable


def test_state_lives_in_app_extensions(app: Flask) -> None:
    state = app.extensions["observe"]
    assert isinstance(state, ObserveState)
    assert state.config.runtime_header is True
    with app.app_context():
        assert get_state() is state
    assert get_state(app) is state


def test_extension_object_keeps_no_app() -> None:
    observe = Observe()
    first, second = Flask("first"), Flask("second")
    observe.init_app(first)
    observe.init_app(second)
    assert not any(isinstance(value, Flask) for value in vars(observe).values())
    assert first.extensions["observe"].extension is observe
    assert second.extensions["observe"] is not first.extensions["observe"]


def test_init_twice_raises(app: Flask) -> None:
    with pytest.raises(RuntimeError, match="already registered on the app 'test_app'"):
        Observe(app)
    with pytest.raises(RuntimeError, match="already registered"):
        Observe().init_app(app)


def test_get_state_explains_what_is_missing() -> None:
    with pytest.raises(RuntimeError, match="needs an application context"):
        get_state()
    app = Flask("plain")
    with pytest.raises(RuntimeError, match="Did you forget to call Observe.init_app"):
        get_state(app)


def test_factory_pattern_with_different_configs() -> None:
    observe = Observe()

    def create_app(**config: object) -> Flask:
        app = Flask("factory")
        app.config.update(config)
        observe.init_app(app)

        @app.get("/")
        def index() -> str:
            return "ok"

        return app

    quiet = create_app(OBSERVE_RUNTIME_HEADER=False, OBSERVE_SERVER_TIMING=False)
    loud = create_app()
    excluded = create_app(OBSERVE_EXCLUDE_PATHS=["/"])
    assert "X-Runtime" not in quiet.test_client().get("/").headers
    assert "X-Runtime" in loud.test_client().get("/").headers
    assert "Server-Timing" not in excluded.test_client().get("/").headers
    # The first app's configuration did not leak into the others, and back.
    assert "X-Runtime" not in quiet.test_client().get("/").headers


def test_hundreds_of_apps_in_one_process() -> None:
    observe = Observe()
    apps = []
    for number in range(300):
        app = Flask(f"app{number}")
        app.config["OBSERVE_RUNTIME_HEADER"] = number % 2 == 0
        app.config["OBSERVE_EXCLUDE_PATHS"] = [f"/skip{number}"]
        observe.init_app(app)

        @app.get("/<path:anything>")
        def view(anything: str, number: int = number) -> str:
            return str(number)

        apps.append(app)
    for number, app in enumerate(apps):
        client = app.test_client()
        response = client.get("/hello")
        assert response.text == str(number)
        assert ("X-Runtime" in response.headers) is (number % 2 == 0)
        assert "Server-Timing" in response.headers
        assert "Server-Timing" not in client.get(f"/skip{number}").headers
        assert "Server-Timing" in client.get(f"/skip{number + 1}").headers


def test_register_error_validates_its_arguments() -> None:
    observe = Observe()

    class DoesNotExist(Exception):
        pass

    observe.register_error(DoesNotExist, 404)
    assert observe.error_map[DoesNotExist] == 404
    with pytest.raises(TypeError, match="exception class"):
        observe.register_error("DoesNotExist", 404)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="400 to 599"):
        observe.register_error(DoesNotExist, 200)


def test_finish_hook_added_after_init_gets_records(make_app: Callable[..., Flask]) -> None:
    app = make_app()

    @app.get("/items/<int:number>")
    def item(number: int) -> str:
        return str(number)

    seen: list[tuple[str | None, str, int]] = []
    app.extensions["observe"].add_finish_hook(
        lambda record: seen.append((record.endpoint, record.method, record.status))
    )
    app.test_client().get("/items/3").close()
    app.test_client().post("/items/3").close()
    app.test_client().get("/nowhere").close()
    # A 405 keeps the endpoint its path matched (flask_observe.routing); a 404 has none.
    assert seen == [("item", "GET", 200), ("item", "POST", 405), (None, "GET", 404)]


def test_import_has_no_side_effects_and_needs_no_extra() -> None:
    """Import with the optional packages made unimportable, and watch for sockets."""
    code = textwrap.dedent(
        """
        import socket, sys
        blocked = {"statsd", "sentry_sdk", "flask_debugtoolbar", "pympler", "prometheus_client"}

        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in blocked:
                    raise ImportError(f"{name} is blocked for this test")
                return None

        sys.meta_path.insert(0, Block())
        opened = []
        real_socket = socket.socket
        class Spy(real_socket):
            def __init__(self, *args, **kwargs):
                opened.append(args)
                super().__init__(*args, **kwargs)
        socket.socket = Spy
        socket.getaddrinfo = lambda *a, **k: opened.append(a) or []

        import flask_observe
        from flask import Flask
        app = Flask("x")
        flask_observe.Observe(app)
        assert app.test_client().get("/").status_code == 404
        assert not opened, opened
        assert not blocked & set(sys.modules), blocked & set(sys.modules)
        print("clean")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "clean"


def registrations(app: Flask) -> tuple[object, ...]:
    """What init_app could have registered on *app*."""
    return (
        app.wsgi_app,
        dict(app.error_handler_spec),
        {k: list(v) for k, v in app.after_request_funcs.items()},
        set(app.cli.commands),
        set(app.blueprints),
    )


@pytest.mark.parametrize(
    ("config", "key"),
    [
        pytest.param(
            {"DEBUG_TB_ENABLED": True, "OBSERVE_TOOLBAR_PANELS": True},
            "DEBUG_TB_HOSTS",
            id="toolbar",
        ),
        pytest.param({"OBSERVE_SENTRY_DSN": "not a dsn"}, "OBSERVE_SENTRY_DSN", id="sentry"),
    ],
)
def test_a_refused_feature_leaves_the_app_as_it_was(config: dict[str, object], key: str) -> None:
    """Checks that need more than the config run before any feature registers a hook."""
    from flask_observe import ConfigError

    app = Flask("refused")
    app.config.update(config, OBSERVE_STATSD_HOST="127.0.0.1", SECRET_KEY="x")
    before = registrations(app)
    with pytest.raises(ConfigError) as info:
        Observe(app)
    assert info.value.key == key
    after = registrations(app)
    assert after == before
    assert "observe" not in app.extensions
