"""The Flask-Observe demo: an app factory with blueprints that exercise every feature.

Run it with ``make demo`` or ``flask --app demo_app run --debug``. Configuration comes
from ``FLASK_*`` environment variables too, e.g. ``FLASK_OBSERVE_STATSD_HOST=127.0.0.1``;
``FLASK_DEMO_EMBEDDED_SENTRY=true`` (set by ``make demo``) points the real sentry-sdk at
an embedded loopback stand-in whose events are listed at ``/demo/sentry-events``.
"""

from __future__ import annotations

import typing as t

from flask import Flask

from flask_observe import Observe

from . import blog
from .library import init_library
from .views import api
from .views import pages

if t.TYPE_CHECKING:
    from collections.abc import Mapping

observe = Observe()


def create_app(config: Mapping[str, t.Any] | None = None, *, instrument: bool = True) -> Flask:
    """Build the demo app.

    :param config: extra configuration, applied last (tests pass theirs here).
    :param instrument: ``False`` leaves Flask-Observe out: the baseline of the load
        benchmark (``gunicorn 'demo_app:create_app(instrument=False)'``).
    """
    app = Flask(__name__)
    app.config.from_mapping(
        SECRET_KEY="demo-only-not-a-secret",
        OBSERVE_STATSD_PREFIX="demo",
        OBSERVE_EXCLUDE_PATHS=["/health"],
    )
    app.config.from_prefixed_env()
    if config:
        app.config.update(config)
    sink = None
    if app.config.pop("DEMO_EMBEDDED_SENTRY", False) and not app.config.get("OBSERVE_SENTRY_DSN"):
        # `make demo`: the real sentry-sdk sends to a loopback stand-in, no outside service.
        from .sentry_sink import SentrySink

        sink = SentrySink()
        app.config["OBSERVE_SENTRY_DSN"] = sink.dsn
    if instrument:
        observe.init_app(app)
    if sink is not None:
        events = sink.events

        @app.get("/demo/sentry-events")
        def sentry_events() -> dict[str, t.Any]:
            """What the embedded Sentry stand-in received, newest last."""
            return {"events": list(events)}

    app.register_blueprint(pages)
    app.register_blueprint(api, url_prefix="/api")
    app.register_blueprint(blog.bp, url_prefix="/blog")
    init_library(app)
    if app.config.get("DEBUG_TB_ENABLED", app.debug):
        # Flask-DebugToolbar (in debug mode, e.g. `make demo`) with Flask-Observe's
        # Memory and Observe panels, which init_app added to DEBUG_TB_PANELS.
        from flask_debugtoolbar import DebugToolbarExtension

        DebugToolbarExtension(app)
    return app
