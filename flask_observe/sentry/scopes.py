"""sentry-sdk's scopes seen from the request thread: read without making any, and the id
``sentry_sdk.last_event_id()`` answers for the rest of a request with a captured error.

The serving thread's context must be left as it was found: each variable set there
makes every one of Flask's own context changes dearer on every later request served by
the thread (2.9k instructions each, 0.9 % of a trivial request). sentry-sdk's public
API cannot do either job without setting one: its getters (``get_isolation_scope()``,
``get_current_scope()``) make and *set* a scope where the context has none, and its
scope managers (``isolation_scope()``, ``new_scope()``, ``use_isolation_scope()``)
first do the same for the current scope. Run in a copy of the context, the getters
cost two fresh scopes, about 9 µs per error. So this module reads two names sentry-sdk
keeps private, each in one function that says why, and falls back to the public API
(with a warning) when a release no longer has them; ``tests/sentry/test_scopes.py`` fails
as soon as one changes.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import contextvars
import typing as t

from flask import after_this_request

from ..containment import warn_limited

if t.TYPE_CHECKING:
    from flask import Response
    from sentry_sdk.scope import Scope

#: WSGI environ key holding the token that gives the thread its own isolation scope
#: back once the response of a request with a captured error is processed.
ISOLATION_TOKEN_KEY = "flask_observe.sentry_isolation"

ScopeVariable = contextvars.ContextVar["Scope | None"]


def scope_variables() -> tuple[ScopeVariable, ScopeVariable] | None:
    """sentry-sdk's context variables holding the isolation and the current scope, or
    ``None`` when this release has no such variables.

    Private to sentry-sdk (``sentry_sdk.scope._isolation_scope`` and
    ``_current_scope``, from 2.0 to this day): no public API reads a scope without
    setting one, or sets one for longer than a ``with`` block (see the module's
    docstring). The only place Flask-Observe reads them.
    """
    import sentry_sdk.scope

    isolation = getattr(sentry_sdk.scope, "_isolation_scope", None)
    current = getattr(sentry_sdk.scope, "_current_scope", None)
    if isinstance(isolation, contextvars.ContextVar) and isinstance(
        current, contextvars.ContextVar
    ):
        return isolation, current
    warn_limited(
        "sentry-scope-variables",
        "Flask-Observe: this sentry-sdk keeps its scopes elsewhere; errors are captured "
        "at a higher cost and may leave a scope set in the serving thread.",
    )
    return None


def note_last_event_id(scope: Scope, event_id: str) -> None:
    """Make *scope*, an isolation scope, answer *event_id* to ``last_event_id()``.

    sentry-sdk has no public setter: ``Scope.capture_event`` sets the private
    ``_last_event_id`` of the isolation scope (2.2 to this day), and Flask-Observe
    captures on another thread, in a fork of that scope. The only place Flask-Observe
    writes it.
    """
    if not hasattr(scope, "_last_event_id"):
        warn_limited(
            "sentry-last-event-id",
            "Flask-Observe: this sentry-sdk keeps the last event id elsewhere; "
            "sentry_sdk.last_event_id() does not answer Flask-Observe's captures.",
        )
        return
    scope._last_event_id = event_id


def thread_scopes() -> tuple[Scope | None, Scope | None]:
    """The caller's isolation and current scope, ``None`` for one its context has none
    of, read without making or setting one. An event captured with no scope gets fresh
    ones where it is built (a fresh scope costs microseconds: no need on the request
    thread). Without sentry-sdk's variables, the public getters run in a copy of the
    context instead."""
    variables = scope_variables()
    if variables is not None:
        return variables[0].get(None), variables[1].get(None)

    def made() -> tuple[Scope | None, Scope | None]:
        from sentry_sdk.scope import Scope

        return Scope.get_isolation_scope(), Scope.get_current_scope()

    return contextvars.copy_context().run(made)


def fork(scope: Scope | None) -> Scope | None:
    """A copy of *scope* that later changes to either leave alone (``None`` stays)."""
    return scope.fork() if scope is not None else None


def answer_last_event_id(
    environ: dict[str, t.Any], thread_isolation: Scope | None, event_id: str
) -> None:
    """Make ``sentry_sdk.last_event_id()`` answer *event_id* for the rest of the request
    (an app's own 500 page may show it, Sentry's user feedback pattern), as when the
    capture ran in the request.

    A fork of the thread's isolation scope *thread_isolation* (a fresh scope if it has
    none), noting the id, is this request's isolation scope until its response is
    processed; then the thread's own is back, or none if it had none. As with
    sentry-sdk's ``FlaskIntegration``, the id does not leak into the next request, and
    the thread's context does not keep a scope only the error path needed.
    """
    from sentry_sdk.scope import Scope
    from sentry_sdk.scope import ScopeType

    if thread_isolation is not None:
        isolation = thread_isolation.fork()
    else:
        isolation = Scope(ty=ScopeType.ISOLATION)
    note_last_event_id(isolation, event_id)
    variables = scope_variables()
    if variables is None:
        note_last_event_id(Scope.get_isolation_scope(), event_id)
        return
    variable = variables[0]
    first = ISOLATION_TOKEN_KEY not in environ
    token = variable.set(isolation)
    if not first:  # the first token restores the thread's scope
        return
    environ[ISOLATION_TOKEN_KEY] = token

    def restore(response: Response) -> Response:
        try:
            variable.reset(environ.pop(ISOLATION_TOKEN_KEY))
        except Exception:
            warn_limited("sentry-scope", "Flask-Observe could not restore the Sentry scope")
        return response

    after_this_request(restore)
