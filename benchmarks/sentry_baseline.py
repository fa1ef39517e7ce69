"""In-request capture: the baseline the benchmarks and the tests compare Flask-Observe's
capture worker with. Each event is built and captured in the request thread, with
sentry-sdk's ``event_from_exception``, written here apart from the package's own
:func:`flask_observe.sentry.events.build_event`.

    from benchmarks.sentry_baseline import build_in_request

    build_in_request(app)  # an app initialised with Flask-Observe and Sentry

Everything else on the app's error path is the same as with the worker (throttle,
request data, scopes, event id in the response); only where and how the event is built
differ.
"""

from __future__ import annotations

import typing as t

from flask_observe.sentry import SentryState
from flask_observe.sentry.events import HINT_KEY
from flask_observe.sentry.events import SUPPRESSED_EXTRA
from flask_observe.sentry.events import SUPPRESSED_TAG
from flask_observe.state import get_state

if t.TYPE_CHECKING:
    from flask import Flask

    from flask_observe.sentry.events import PendingEvent


def build_in_request(app: Flask) -> None:
    """Make *app* build and capture each event in the request thread."""
    sentry = get_state(app).part(SentryState)
    if sentry is None:
        raise RuntimeError(f"Flask-Observe's Sentry capture is not set up on {app.name!r}")
    sentry.deliver_inline = capture_in_request


def capture_in_request(pending: PendingEvent) -> str | None:
    """Build and capture *pending*'s event right here, in the request thread, with
    sentry-sdk's ``event_from_exception``; the id sentry-sdk gave it, or ``None`` when it
    was dropped.

    Runs in a copy of the request's context (the caller makes it), in forks of the
    request's scopes or fresh ones; ``DedupeIntegration`` and ``before_send`` apply.
    """
    from sentry_sdk.scope import Scope
    from sentry_sdk.scope import ScopeType
    from sentry_sdk.scope import use_isolation_scope
    from sentry_sdk.scope import use_scope
    from sentry_sdk.utils import event_from_exception

    isolation = pending.isolation_scope or Scope(ty=ScopeType.ISOLATION)
    scope = pending.current_scope or Scope(ty=ScopeType.CURRENT)
    with use_isolation_scope(isolation), use_scope(scope):
        client = scope.get_client()
        exception = pending.exc_info[1]
        event, hint = event_from_exception(
            exception,
            client_options=client.options,
            mechanism={"type": "flask_observe", "handled": pending.handled},
        )
        hint[HINT_KEY] = True
        if pending.request_data is not None:
            event["request"] = dict(pending.request_data)
        if pending.transaction:
            event["transaction"] = pending.transaction
            event["transaction_info"] = {"source": "component"}
        if pending.suppressed:
            event.setdefault("extra", {})[SUPPRESSED_EXTRA] = pending.suppressed
        for key, value in pending.tags.items():
            scope.set_tag(key, value)
        if pending.suppressed:
            scope.set_tag(SUPPRESSED_TAG, "yes")
        if pending.transaction:
            scope.set_transaction_name(pending.transaction, source="component")
        return scope.capture_event(event, hint=hint)
