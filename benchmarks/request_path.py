"""The request path alone, in instructions: each middleware around a stub of Flask.

A whole Flask request (``peers --mode instructions``) puts the middleware's few thousand
instructions beside some 270 k whose count moves by up to 1 k with the memory layout, so
two versions of the request path within 0.5 % of a request cannot be told apart there.
Here each middleware wraps a stub WSGI app that answers the way Flask does: it puts a
Werkzeug request made by a real Flask app (with its ``url_rule``) in the environ and
starts a response with Flask's two headers. The middleware takes the same branches and
reads the same objects as behind Flask, and its distance from the floor's repeats to
about 0.1 k in every layout. It is printed in instructions and in percent of a bare
Flask request counted in the same run (the unit of the targets in
``docs/performance.rst``); the process around the request (garbage collector, caches)
is what ``peers`` adds.

    python -m benchmarks.request_path
    scripts/chroot.sh run py314 python -m benchmarks.request_path --layouts 5
"""

from __future__ import annotations

import argparse
import statistics
import typing as t

from benchmarks import harness

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment

#: The configurations around the stub, in table order (``bare`` is bare Flask).
NAMES = ("bare", "stub", "floor", "timing", "production")

#: What Flask answers the trivial view with.
_HEADERS = (("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "13"))

CONFIGURATIONS = harness.Registry("benchmarks.request_path", "/hello")


def flask_stub() -> WSGIApplication:
    """A WSGI app that answers as Flask answers the trivial view, without Flask: the
    request object in the environ is one a Flask app made and routed."""
    from flask import request
    from werkzeug.test import Client

    app = harness.trivial_app()
    kept: list[t.Any] = []

    @app.get("/keep")
    def keep() -> str:
        kept.append(request._get_current_object())  # type: ignore[attr-defined]
        return "kept"

    assert Client(app).get("/keep").status_code == 200
    flask_request = kept[0]
    assert flask_request.url_rule is not None

    def stub(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        environ["werkzeug.request"] = flask_request
        start_response("200 OK", list(_HEADERS))
        return [b"Hello, World!"]

    return stub


def _around_stub(name: str) -> WSGIApplication:
    """Configuration *name* of :data:`harness.CONFIGURATIONS` (its process: Sentry, the
    statsd client), its middleware wrapping :func:`flask_stub` instead of Flask."""
    from flask import Flask

    from flask_observe.state import get_state
    from flask_observe.timing import ObserveMiddleware

    app = harness.CONFIGURATIONS.build(name)
    assert isinstance(app, Flask)
    middleware = get_state(app).middleware
    assert isinstance(middleware, ObserveMiddleware)
    middleware.wsgi_app = flask_stub()
    return middleware.entry


CONFIGURATIONS.add("bare", "bare Flask (the unit of the percentages)")(harness.trivial_app)
CONFIGURATIONS.add("stub", "the stub alone")(flask_stub)
CONFIGURATIONS.add("floor", "the floor middleware around the stub")(
    lambda: harness.FloorMiddleware(flask_stub())
)
CONFIGURATIONS.add("timing", "Flask-Observe timing-only around the stub")(
    lambda: _around_stub("timing")
)
CONFIGURATIONS.add("production", "production's middleware and process, around the stub")(
    lambda: _around_stub("production")
)


def print_table(counts: dict[str, harness.Instructions]) -> None:
    """Each middleware's request thread: its median count, and its distance from the
    floor's in the same layout (median, and the largest minus the smallest over the
    layouts), in instructions and in percent of a bare Flask request."""
    bare = statistics.median(counts["bare"].request_thread)
    floor = counts["floor"].request_thread
    print(
        f"{'configuration':<12} {'instructions':>13} {'vs floor':>9} {'spread':>7} {'of bare':>8}"
    )
    for name, count in counts.items():
        own = statistics.median(count.request_thread)
        line = f"{name:<12} {own / 1000:>11.2f} k"
        if name not in ("bare", "stub"):
            gaps = [mine - theirs for mine, theirs in zip(count.request_thread, floor, strict=True)]
            gap = statistics.median(gaps)
            line += (
                f" {gap / 1000:>+7.2f} k {(max(gaps) - min(gaps)) / 1000:>5.2f} k"
                f" {gap / bare * 100:>+7.2f} %"
            )
        print(line)
    print(
        f"median of {len(floor)} memory layout(s), the request thread alone; vs floor: the "
        "distance from the floor in the same layout; of bare: in percent of a bare Flask "
        f"request ({bare / 1000:.1f} k)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--layouts", type=int, default=3, help="memory layouts")
    parser.add_argument("--low", type=int, default=300, help="requests of the short run")
    parser.add_argument("--high", type=int, default=3300, help="requests of the long run")
    args = parser.parse_args(argv)
    counts = harness.instructions(CONFIGURATIONS, list(NAMES), args.low, args.high, args.layouts)
    print_table(counts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
