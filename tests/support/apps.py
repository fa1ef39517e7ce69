"""The one app factory of the tests, and the small sets of routes several tests share.

Every test app comes from :func:`make_app`: a named Flask app in testing mode, the
given configuration, route builders applied in order, then ``Observe(app)``. In a test,
prefer the ``make_app`` fixture of ``tests/conftest.py``: it calls this function and
closes the statsd clients of the apps it made after the test (an open socket would fail
the run under ``filterwarnings = error``)::

    def test_blueprint_route(make_app):
        app = make_app(add_api_routes, OBSERVE_EXCLUDE_PATHS=["/health"])
        assert app.test_client().get("/api/items/7").json == {"id": 7}

An app that must behave as in production passes ``TESTING=False`` (unhandled errors
then answer 500 instead of propagating into the test).
"""

from __future__ import annotations

import os
import typing as t

from flask import abort
from flask import Blueprint
from flask import Flask
from flask import request

from flask_observe import metrics
from flask_observe import Observe

#: Adds routes (or anything else) to an app before Flask-Observe is initialised.
Routes = t.Callable[[Flask], None]
#: The signature of :func:`make_app`, and of the ``make_app`` fixture.
AppFactory = t.Callable[..., Flask]


def make_app(
    *routes: Routes, observe: bool = True, name: str = "test_app", **config: object
) -> Flask:
    """Build a test app.

    :param routes: called with the app, in order, before Flask-Observe is initialised.
    :param observe: initialise Flask-Observe (``Observe(app)``) last.
    :param name: the app's import name (``app.name``).
    :param config: configuration, applied over ``TESTING=True``.
    """
    app = Flask(name)
    app.config["TESTING"] = True
    app.config.update(config)
    for add_routes in routes:
        add_routes(app)
    if observe:
        Observe(app)
    return app


def close_statsd(app: Flask) -> None:
    """Close the statsd client Flask-Observe made for *app*, if it made one."""
    client = metrics.client(app)
    if client is not None:
        client.close()


def add_api_routes(app: Flask) -> None:
    """An ``api`` blueprint under ``/api``: ``GET /api/items/<id>`` answers, ``POST
    /api/boom`` raises ``KeyError`` (the metric names of a blueprint, a 500)."""
    api = Blueprint("api", __name__)

    @api.get("/items/<int:item_id>")
    def get_item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    @api.post("/boom")
    def boom() -> str:
        raise KeyError("boom")

    app.register_blueprint(api, url_prefix="/api")


def add_served_counter(app: Flask) -> None:
    """``GET /`` counts ``served`` tagged with the serving process's pid and answers it."""

    @app.get("/")
    def index() -> str:
        pid = os.getpid()
        metrics.incr("served", tags={"pid": pid})
        return str(pid)


def gunicorn_metrics_app() -> Flask:
    """For gunicorn (``tests.support.apps:gunicorn_metrics_app()``): statsd at the port in
    ``OBSERVE_TEST_STATSD_PORT``, lines sent only at exit (the flush interval is long),
    one counter tagged with the worker's pid per request."""
    return make_app(
        add_served_counter,
        name="gunicorn_metrics",
        TESTING=False,
        OBSERVE_STATSD_HOST="127.0.0.1",
        OBSERVE_STATSD_PORT=int(os.environ["OBSERVE_TEST_STATSD_PORT"]),
        OBSERVE_STATSD_FLUSH_INTERVAL=60.0,
        OBSERVE_STATSD_MAX_PACKET=65000,
    )


def gunicorn_process_app() -> Flask:
    """For gunicorn (``tests.support.apps:gunicorn_process_app()``): like
    :func:`gunicorn_metrics_app`, with the prefix ``gw``, the process figures on and a
    flush every 0.1 s, so that each worker reports while it lives."""
    return make_app(
        add_served_counter,
        name="gunicorn_process",
        TESTING=False,
        OBSERVE_STATSD_HOST="127.0.0.1",
        OBSERVE_STATSD_PORT=int(os.environ["OBSERVE_TEST_STATSD_PORT"]),
        OBSERVE_STATSD_PREFIX="gw",
        OBSERVE_STATSD_FLUSH_INTERVAL=0.1,
        OBSERVE_PROCESS_METRICS=True,
    )


def add_failing_routes(app: Flask) -> None:
    """``POST /form`` reads a missing form key (a ``BadRequestKeyError``), ``GET
    /abort/<code>`` aborts with *code*, ``GET /boom`` raises ``RuntimeError``."""

    @app.post("/form")
    def form() -> str:
        return request.form["missing"]

    @app.get("/abort/<int:code>")
    def abort_code(code: int) -> str:
        abort(code)

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("boom")


def plain_app(observe: bool = True, **config: object) -> Flask:
    """An app with :func:`add_failing_routes` as plain Flask configures it (not in
    testing mode unless *config* says so)."""
    settings: dict[str, t.Any] = {"TESTING": False, **config}
    return make_app(add_failing_routes, observe=observe, name="transparent", **settings)
