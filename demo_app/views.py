"""The demo's blueprints: an HTML page and JSON API routes (slow, streaming, async,
raising and memory-hungry ones included)."""

from __future__ import annotations

import asyncio
import time
import typing as t

from flask import abort
from flask import Blueprint
from flask import render_template
from flask import request
from flask import Response
from flask import stream_with_context

from flask_observe import timed

pages = Blueprint("pages", __name__)
api = Blueprint("api", __name__)

ITEMS: dict[int, dict[str, t.Any]] = {
    1: {"id": 1, "name": "teapot", "price": 418},
    2: {"id": 2, "name": "kettle", "price": 25},
}

#: What /api/allocate keeps alive, so the memory panel has something to show.
RETAINED: list[list[str]] = []


@pages.get("/")
@timed("page")
def index() -> str:
    return render_template("index.html", items=list(ITEMS.values()))


@pages.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@api.get("/items")
def list_items() -> dict[str, t.Any]:
    return {"items": list(ITEMS.values())}


@api.get("/items/<int:item_id>")
def get_item(item_id: int) -> dict[str, t.Any]:
    item = ITEMS.get(item_id)
    if item is None:
        abort(404, description=f"No item {item_id}.")
    return item


@api.post("/items")
def create_item() -> tuple[dict[str, t.Any], int]:
    data = request.get_json()
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        abort(400, description="Send a JSON object with a string 'name'.")
    item_id = max(ITEMS, default=0) + 1
    ITEMS[item_id] = {"id": item_id, "name": data["name"], "price": data.get("price", 0)}
    return ITEMS[item_id], 201


@api.get("/slow")
@timed("slow")
def slow() -> dict[str, float]:
    delay = min(float(request.args.get("seconds", "0.2")), 2.0)
    time.sleep(delay)
    return {"slept": delay}


@api.get("/async")
@timed("async")
async def async_view() -> dict[str, str]:
    await asyncio.sleep(0.01)
    return {"mode": "async"}


@api.get("/stream")
def stream() -> Response:
    count = min(int(request.args.get("lines", "5")), 1000)

    def generate() -> t.Iterator[str]:
        for number in range(count):
            time.sleep(0.01)
            yield f"line {number}\n"

    return Response(stream_with_context(generate()), mimetype="text/plain")


@api.get("/boom")
def boom() -> str:
    raise RuntimeError("The demo failed on purpose (postgres://demo:hunter2@db/demo).")


@api.get("/allocate")
def allocate() -> dict[str, int]:
    count = min(int(request.args.get("count", "100000")), 2_000_000)
    block = [f"object {number}" for number in range(count)]
    if request.args.get("keep"):
        RETAINED.append(block)
    return {"allocated": count, "retained_blocks": len(RETAINED)}
