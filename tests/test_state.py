"""Per-app state: where it lives, how ``get_state`` finds it or says what is missing, and
the finish hooks it keeps."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask

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


def test_get_state_explains_what_is_missing() -> None:
    with pytest.raises(RuntimeError, match="needs an application context"):
        get_state()
    app = Flask("plain")
    with pytest.raises(RuntimeError, match="Did you forget to call Observe.init_app"):
        get_state(app)


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
