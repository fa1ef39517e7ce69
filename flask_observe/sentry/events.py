"""Sentry events from what the request thread noted: :class:`PendingEvent`, and the one
way Flask-Observe builds and captures an event from it.

The request thread keeps the exception with its traceback (which keeps the frames and
their locals alive), the scrubbed request data, tags, forks of sentry-sdk's scopes, the
event id the client got, and a copy of the locals of the one frame that may still be
running. :func:`deliver` builds the event with sentry-sdk's own
``event_from_exception`` and captures it in those scopes, so event processors,
``DedupeIntegration`` and ``before_send`` (scrubbing) apply as when the capture ran in
the request. It runs on the capture worker (:mod:`flask_observe.sentry.worker`), or in
the request thread when the event must show that thread's stack (``add_full_stack``).

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import dataclasses
import os
import typing as t

from ..scrub import scrubbing_for

if t.TYPE_CHECKING:
    from types import TracebackType

    from sentry_sdk.client import BaseClient
    from sentry_sdk.scope import Scope

    from ..scrub import Scrubber

#: Key Flask-Observe adds to the hint of the events it builds.
HINT_KEY = "flask_observe"

#: Extra data holding how many repeats the throttle suppressed before this event.
SUPPRESSED_EXTRA = "suppressed_since_last"

#: Tag set (to ``"yes"``) on an event that stands for suppressed repeats too.
SUPPRESSED_TAG = "suppressed"

ExcInfo = tuple[type[BaseException], BaseException, "TracebackType | None"]
#: ``(co_filename, function name, traceback line, shallow copy of the locals)``.
HeadLocals = tuple[str, str, int, dict[str, t.Any]]


@dataclasses.dataclass(eq=False)
class PendingEvent:
    """What the worker needs to build and capture one event, noted on the request
    thread.

    .. versionadded:: 0.2.0
    """

    #: The exception with its traceback as it was when noted (a propagating exception's
    #: ``__traceback__`` grows afterwards).
    exc_info: ExcInfo
    #: ``False`` for unhandled exceptions, ``True`` for ``abort(5xx)``.
    handled: bool
    #: The event id the client was given.
    event_id: str
    #: The request part of the event, already scrubbed.
    request_data: dict[str, t.Any] | None
    #: Transaction name (the endpoint).
    transaction: str | None
    #: ``route`` and ``endpoint`` tags.
    tags: dict[str, str]
    #: Repeats of this error the throttle suppressed since its last event.
    suppressed: int
    #: The client active in the request (fork-checked).
    client: BaseClient
    #: Forks of the request's isolation and current scopes (user, tags, breadcrumbs the
    #: app set in the request); ``None`` where the request thread had none (the worker
    #: makes a fresh one).
    isolation_scope: Scope | None
    current_scope: Scope | None
    #: The app's scrubber, for ``before_send`` outside the app context.
    scrubber: Scrubber
    #: The locals of the traceback's first frame when noted (it may still be running).
    head_locals: HeadLocals | None = None


def head_locals(tb: TracebackType | None) -> HeadLocals | None:
    """A shallow copy of the locals of *tb*'s first frame, the one that caught the
    exception.

    The other frames of a traceback have been left by the exception and keep their last
    locals; the first one may still be running (Flask's ``wsgi_app`` goes on after the
    capture), so read later it would show other values than at the time of the error.
    One small dict, about a microsecond.
    """
    if tb is None:
        return None
    frame = tb.tb_frame
    code = frame.f_code
    return (code.co_filename, code.co_name, tb.tb_lineno, dict(frame.f_locals))


def build_event(pending: PendingEvent) -> tuple[t.Any, dict[str, t.Any]]:
    """The event and hint for *pending*.

    Runs with *pending*'s client current (frame serialisation reads its options).
    """
    from sentry_sdk.utils import event_from_exception

    client = pending.client
    event, hint = event_from_exception(
        pending.exc_info,
        client_options=client.options,
        mechanism={"type": "flask_observe", "handled": pending.handled},
    )
    _apply_head_locals(event, pending, client)
    event["event_id"] = pending.event_id
    if pending.request_data is not None:
        event["request"] = pending.request_data
    if pending.transaction:
        event["transaction"] = pending.transaction
        event["transaction_info"] = {"source": "component"}
    if pending.suppressed:
        event.setdefault("extra", {})[SUPPRESSED_EXTRA] = pending.suppressed
    hint[HINT_KEY] = True
    return event, hint


def _apply_head_locals(event: t.Any, pending: PendingEvent, client: BaseClient) -> None:
    """Serialise the noted locals of the traceback's first frame in place of its
    current ones (unless ``data_collection`` filters variables: then they stay as
    built)."""
    if pending.head_locals is None:
        return
    collection = client.options.get("data_collection")
    if isinstance(collection, dict) and collection.get("provided_by_user"):
        return
    from sentry_sdk.serializer import serialize

    filename, function, lineno, variables = pending.head_locals
    place = (os.path.abspath(filename), function, lineno)
    values = (event.get("exception") or {}).get("values") or [{}]
    for frame in (values[-1].get("stacktrace") or {}).get("frames") or ():
        if (
            "vars" in frame
            and (frame.get("abs_path"), frame.get("function"), frame.get("lineno")) == place
        ):
            custom_repr = client.options.get("custom_repr")
            frame["vars"] = serialize(variables, is_vars=True, custom_repr=custom_repr)
            return


def deliver(pending: PendingEvent) -> str | None:
    """Build *pending*'s event and capture it in its scopes; the event id, or ``None``
    when the SDK dropped it (or its client was closed meanwhile).

    It sets sentry-sdk's scopes in the caller's context for the time of the capture: in
    the request thread, run it in a copy of the context.
    """
    from sentry_sdk.scope import Scope
    from sentry_sdk.scope import ScopeType
    from sentry_sdk.scope import use_isolation_scope
    from sentry_sdk.scope import use_scope

    client = pending.client
    if not client.is_active():
        return None
    isolation = pending.isolation_scope
    if isolation is None:
        isolation = Scope(ty=ScopeType.ISOLATION)
    scope = pending.current_scope
    if scope is None:
        scope = Scope(ty=ScopeType.CURRENT)
    scope.set_client(client)
    with use_isolation_scope(isolation), use_scope(scope):
        with scrubbing_for(pending.scrubber):
            event, hint = build_event(pending)
            for key, value in pending.tags.items():
                scope.set_tag(key, value)
            if pending.suppressed:
                scope.set_tag(SUPPRESSED_TAG, "yes")
            if pending.transaction:
                scope.set_transaction_name(pending.transaction, source="component")
            return scope.capture_event(event, hint=hint)
