"""Shared fixtures: a fresh app per test with Flask-Observe initialised."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask

from flask_observe import Observe

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from flask.testing import FlaskClient

AppFactory = t.Callable[..., Flask]


@pytest.fixture
def make_app() -> Callable[..., Flask]:
    """Build a testing app with the given config and Flask-Observe initialised."""

    def factory(observe: bool = True, **config: object) -> Flask:
        app = Flask("test_app")
        app.config["TESTING"] = True
        app.config.update(config)
        if observe:
            Observe(app)
        return app

    return factory


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
