"""Werkzeug's debugger shows the app's frames, not Flask-Observe's: the middleware and
view wrappers carry ``__traceback_hide__``, which the debugger honours."""

from __future__ import annotations

import asyncio
import re
import typing as t

import pytest
from flask import Flask
from werkzeug.debug import DebuggedApplication
from werkzeug.debug.tbtools import DebugTraceback
from werkzeug.test import Client

from flask_observe import timed
from tests.support.apps import make_app
from tests.support.toolbar import make_toolbar_app
from tests.support.toolbar import MEMORY_ON

if t.TYPE_CHECKING:
    from collections.abc import Callable


def add_failing_routes(app: Flask) -> None:
    """``/fail`` and ``/fail-async``, each raising two app frames deep, behind
    ``timed``."""

    def load_order(number: int) -> dict[str, int]:
        raise LookupError(f"no order {number}")

    @app.get("/fail")
    @timed("fail")
    def show_order() -> dict[str, int]:
        return load_order(7)

    @app.get("/fail-async")
    @timed("fail_async")
    async def show_order_async() -> dict[str, int]:
        await asyncio.sleep(0)
        return load_order(8)


def plain_debug_app() -> Flask:
    return make_app(add_failing_routes, DEBUG=True, TESTING=False, SECRET_KEY="x")


def production_app() -> Flask:
    """The production path (timing headers, no record), exceptions propagated."""
    return make_app(add_failing_routes, DEBUG=False, TESTING=False, PROPAGATE_EXCEPTIONS=True)


def toolbar_app() -> Flask:
    app = make_toolbar_app()
    add_failing_routes(app)
    return app


APPS = [
    pytest.param(plain_debug_app, id="debug"),
    pytest.param(production_app, id="production"),
    pytest.param(toolbar_app, id="toolbar-panels-on"),
]
#: Every panel that wraps the view switched on: Memory tier 2 and the Profiler.
PANELS_ON = f"{MEMORY_ON};flDebugSamplingProfilerPanel"


def traceback_of(app: Flask, url: str, *, hide: bool) -> list[tuple[str, str]]:
    """``(file, function)`` of each frame Werkzeug's debugger keeps for the error."""
    caught: list[DebugTraceback] = []

    def outer(environ: t.Any, start_response: t.Any) -> t.Any:
        try:
            return app(environ, start_response)
        except LookupError as error:
            caught.append(DebugTraceback(error, hide=hide))
            raise

    client = Client(outer)
    client.set_cookie("fldt_active", PANELS_ON)
    with pytest.raises(LookupError):
        client.get(url)
    return [(frame.filename, frame.name) for frame in caught[0].all_frames]


def ours(frames: list[tuple[str, str]]) -> list[str]:
    return [name for filename, name in frames if "/flask_observe/" in filename]


@pytest.mark.parametrize("make", APPS)
@pytest.mark.parametrize("url", ["/fail", "/fail-async"])
def test_our_frames_are_hidden_and_the_apps_remain(make: Callable[[], Flask], url: str) -> None:
    app = make()
    assert ours(traceback_of(app, url, hide=False)), "Flask-Observe is not in the stack"
    frames = traceback_of(app, url, hide=True)
    assert ours(frames) == []
    names = [name for filename, name in frames if filename == __file__]
    view = "show_order_async" if url.endswith("async") else "show_order"
    assert names[-2:] == [view, "load_order"]


def test_the_debugger_page_shows_no_frame_of_ours() -> None:
    """Through the real debugger middleware, as ``flask run --debug`` serves it."""
    app = plain_debug_app()
    client = Client(DebuggedApplication(app, evalex=False))
    response = client.get("/fail")
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    files = re.findall(r'<cite class="filename">"([^"]+)"</cite>', html)
    functions = re.findall(r'<code class="function">([^<]+)</code>', html)
    assert files and not [name for name in files if "/flask_observe/" in name]
    assert functions[-2:] == ["show_order", "load_order"]
    assert "LookupError: no order 7" in html
