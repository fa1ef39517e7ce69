"""Shared fixtures: a fresh app per test with Flask-Observe initialised."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask

from flask_observe import metrics
from flask_observe import Observe

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterator

    from flask.testing import FlaskClient

AppFactory = t.Callable[..., Flask]


@pytest.fixture
def make_app() -> Iterator[Callable[..., Flask]]:
    """Build a testing app with the given config and Flask-Observe initialised; statsd
    clients are closed after the test."""
    apps: list[Flask] = []

    def factory(observe: bool = True, **config: object) -> Flask:
        app = Flask("test_app")
        app.config["TESTING"] = True
        app.config.update(config)
        if observe:
            Observe(app)
            apps.append(app)
        return app

    yield factory
    for app in apps:
        client = metrics.client(app)
        if client is not None:
            client.close()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
