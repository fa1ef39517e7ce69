"""The apps the peer benchmarks compare: one trivial view, instrumented each way.

``build(name)`` returns a fresh app; gunicorn can serve one directly::

    gunicorn 'benchmarks.apps:build("observe_production")'

Each configuration is meant to run in its own process: sentry-sdk and OpenTelemetry
instrument process-wide, so sharing a process would measure them everywhere.
"""

from __future__ import annotations

import os
import socket

from flask import Flask

from benchmarks.overhead import FloorMiddleware
from benchmarks.overhead import serve_one_error
from benchmarks.overhead import statsd_config
from benchmarks.overhead import trivial_app as trivial

#: name -> one-line description, in table order.
DESCRIPTIONS: dict[str, str] = {
    "bare": "bare Flask",
    "floor": "floor: perf_counter pair + both headers + one locked list append",
    "observe_timing": "Flask-Observe: timing headers",
    "observe_production": "Flask-Observe: timing + statsd (UDP) + JSON errors + Sentry armed",
    "prometheus": "prometheus_flask_exporter, default metrics",
    "sentry_flask": "sentry-sdk FlaskIntegration (tracing off)",
    "otel": "opentelemetry-instrumentation-flask, SDK tracer, no exporter",
    "debugtoolbar": "Flask-DebugToolbar, default panels (needs SECRET_KEY)",
}

_kept: list[socket.socket] = []


def closed_port() -> int:
    """A loopback TCP port with nothing listening (a dead Sentry)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def statsd_sink() -> int:
    """Open a UDP socket that receives (and never reads) statsd packets, as a local
    daemon would: a listening receiver is what makes the sender pay for the wake-up."""
    port = int(os.environ.get("OBSERVE_BENCH_STATSD_PORT", "0"))
    if port:
        return port
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sink.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    _kept.append(sink)  # lives as long as the benchmark process
    return int(sink.getsockname()[1])


def build(name: str) -> Flask:
    """A fresh app for the configuration *name* (a key of :data:`DESCRIPTIONS`)."""
    if name == "bare":
        return trivial()
    if name == "floor":
        app = trivial()
        app.wsgi_app = FloorMiddleware(app.wsgi_app)  # type: ignore[method-assign]
        return app
    if name == "observe_timing":
        from flask_observe import Observe

        app = trivial()
        Observe(app)
        return app
    if name == "observe_production":
        from flask_observe import Observe

        app = trivial(
            **statsd_config(
                statsd_sink(),
                OBSERVE_STATSD_PREFIX="bench",
                OBSERVE_SENTRY_DSN=f"http://public@127.0.0.1:{closed_port()}/1",
            )
        )
        Observe(app)
        serve_one_error(app)  # the steady state of a process that has captured errors
        return app
    if name == "prometheus":
        from prometheus_flask_exporter import PrometheusMetrics

        app = trivial()
        PrometheusMetrics(app)
        return app
    if name == "sentry_flask":
        import sentry_sdk

        sentry_sdk.init(dsn=f"http://public@127.0.0.1:{closed_port()}/1")
        return trivial()
    if name == "otel":
        from opentelemetry import trace
        from opentelemetry.instrumentation.flask import FlaskInstrumentor
        from opentelemetry.sdk.trace import TracerProvider

        provider = TracerProvider()
        trace.set_tracer_provider(provider)
        app = trivial()
        FlaskInstrumentor().instrument_app(app, tracer_provider=provider)  # type: ignore[no-untyped-call]
        return app
    if name == "debugtoolbar":
        from flask_debugtoolbar import DebugToolbarExtension

        app = trivial(SECRET_KEY="bench", DEBUG_TB_ENABLED=True, DEBUG_TB_INTERCEPT_REDIRECTS=False)
        app.debug = True
        DebugToolbarExtension(app)
        return app
    raise KeyError(f"unknown configuration {name!r}; known: {', '.join(DESCRIPTIONS)}")


def names() -> list[str]:
    return list(DESCRIPTIONS)


def describe(name: str) -> str:
    return DESCRIPTIONS[name]
