"""A tiny app for the gunicorn test: statsd at the port in OBSERVE_TEST_STATSD_PORT,
lines sent only at exit (the flush interval is long), one counter tagged with the
worker's pid per request."""

from __future__ import annotations

import os

from flask import Flask

from flask_observe import metrics
from flask_observe import Observe


def create_app() -> Flask:
    app = Flask("gunicorn_metrics")
    app.config.update(
        OBSERVE_STATSD_HOST="127.0.0.1",
        OBSERVE_STATSD_PORT=int(os.environ["OBSERVE_TEST_STATSD_PORT"]),
        OBSERVE_STATSD_FLUSH_INTERVAL=60.0,
        OBSERVE_STATSD_MAX_PACKET=65000,
    )
    Observe(app)

    @app.get("/")
    def index() -> str:
        pid = os.getpid()
        metrics.incr("served", tags={"pid": pid})
        return str(pid)

    return app
