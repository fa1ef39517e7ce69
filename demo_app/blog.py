"""The demo's server-rendered section: a small blog with HTML pages, its own error
pages, and a page that fails on purpose.

Its 500 page shows the Sentry event id from :func:`flask_observe.event_id`, so a
visitor can quote it to support; Flask-Observe puts the same id in the
``X-Sentry-Event-Id`` header. The blog's own error handlers answer its errors (an app's
handlers win over Flask-Observe's problem+json); the JSON API under ``/api`` keeps
problem+json for API clients.
"""

from __future__ import annotations

import typing as t

from flask import abort
from flask import Blueprint
from flask import render_template

from flask_observe import event_id
from flask_observe import timed

bp = Blueprint("blog", __name__)

POSTS: dict[int, dict[str, t.Any]] = {
    1: {
        "id": 1,
        "title": "Why we time every request",
        "body": "X-Runtime and Server-Timing on every response, statsd behind them.",
    },
    2: {
        "id": 2,
        "title": "Quote this id to support",
        "body": "When a page fails, the visitor sees the Sentry event id of the error.",
    },
}


@bp.get("/")
@timed("blog_index")
def index() -> str:
    return render_template("blog/index.html", posts=list(POSTS.values()))


@bp.get("/<int:post_id>")
def post(post_id: int) -> str:
    found = POSTS.get(post_id)
    if found is None:
        abort(404)
    return render_template("blog/post.html", post=found)


@bp.get("/archive")
def archive() -> str:
    """A page that fails: the database is down (the password in the message is masked
    in the Sentry event)."""
    raise RuntimeError("The archive query failed (postgres://blog:hunter2@db/blog).")


@bp.errorhandler(404)
def not_found(error: Exception) -> tuple[str, int]:
    return render_template("blog/404.html"), 404


@bp.errorhandler(500)
def server_error(error: Exception) -> tuple[str, int]:
    """The blog's own 500 page, with the event id when the error was captured."""
    return render_template("blog/500.html", event_id=event_id()), 500
