"""Apps with Flask-DebugToolbar and Flask-Observe's panels, for the panel tests."""

from __future__ import annotations

import asyncio
import re
import typing as t

from flask import abort
from flask import Flask
from flask import redirect
from flask import Response
from flask import stream_with_context
from flask_debugtoolbar import DebugToolbarExtension

from flask_observe import Observe
from flask_observe import timed
from tests.support.apps import make_app

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from flask.testing import FlaskClient
    from werkzeug import Response as BaseResponse

SECRET = "very-secret-value-42"
#: The ``fldt_active`` cookie value that switches the Memory panel's second tier on.
MEMORY_ON = "flDebugMemoryPanel"
PAGE = "<!doctype html><html><head><title>t</title></head><body><p>{}</p></body></html>"


class Widget:
    """A class for the class-tracker page."""

    def __init__(self, size: int) -> None:
        self.payload = "x" * size


class Leak:
    """Instances made by /leak, for the heap diff."""

    __slots__ = ("number",)

    def __init__(self, number: int) -> None:
        self.number = number


KEPT: list[object] = []


def add_routes(app: Flask) -> None:
    """An HTML page, JSON, async, a stream, a redirect and allocating views."""

    @app.get("/")
    @timed("page")
    def page() -> str:
        return PAGE.format("hello")

    @app.get("/echo/<name>")
    def echo(name: str) -> str:
        return PAGE.format("echo")

    @app.get("/json")
    @timed("json")
    def json_view() -> dict[str, int]:
        return {"answer": 42}

    @app.get("/async")
    async def async_view() -> dict[str, str]:
        await asyncio.sleep(0)
        return {"mode": "async"}

    @app.get("/async-page")
    async def async_page() -> str:
        await asyncio.sleep(0)
        return PAGE.format("async page")

    @app.get("/stream")
    def stream() -> Response:
        def generate() -> Iterator[str]:
            for number in range(3):
                yield f"line {number}\n"

        return Response(stream_with_context(generate()), mimetype="text/plain")

    @app.get("/go")
    def go() -> BaseResponse:
        return redirect("/json")

    @app.get("/leak")
    def leak() -> str:
        KEPT.append([Leak(number) for number in range(5000)])
        return PAGE.format("leaked")

    @app.get("/widgets")
    def widgets() -> dict[str, int]:
        KEPT.append([Widget(100) for _ in range(3)])
        return {"made": 3}

    @app.get("/fragment")
    def fragment() -> str:
        return "<div>fragment</div>"

    @app.get("/missing")
    def missing() -> str:
        abort(404)


def make_toolbar_app(
    *, observe: bool = True, toolbar_first: bool = False, **config: object
) -> Flask:
    """A debug app with the toolbar and (by default) Flask-Observe's panels.

    :param observe: initialise Flask-Observe.
    :param toolbar_first: initialise the toolbar before Flask-Observe.
    :param config: extra configuration.
    """
    settings: dict[str, t.Any] = {
        "TESTING": False,
        "DEBUG": True,
        "SECRET_KEY": SECRET,
        "DEBUG_TB_INTERCEPT_REDIRECTS": True,
        **config,
    }
    app = make_app(add_routes, observe=False, name="toolbar_app", **settings)
    if toolbar_first:
        DebugToolbarExtension(app)
    if observe:
        Observe(app)
    if not toolbar_first:
        DebugToolbarExtension(app)
    return app


def cell(html: str, row_id: str) -> str:
    """The text of the table row with id *row_id* (tags stripped)."""
    match = re.search(rf'<tr[^>]*id="{row_id}"[^>]*>(.*?)</tr>', html, re.S)
    assert match, f"no row {row_id}"
    return re.sub(r"<[^>]+>", " ", match.group(1))


def get_page(client: FlaskClient, url: str = "/") -> str:
    """The HTML of *url*, which must answer 200; the response is closed."""
    response = client.get(url)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    response.close()
    return html
