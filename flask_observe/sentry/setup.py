"""sentry-sdk set-up: the lean initialisation, adopting a client the app set up itself,
and one client per process.

sentry-sdk is process-global and imported lazily here, so ``import flask_observe``
works without it. :func:`init_sentry` enables no framework integration at all (no
``FlaskIntegration``, no logging breadcrumbs): the success path pays nothing. A client
Flask-Observe made is made again in a forked child at its first capture there
(:func:`active_client`): the inherited one holds the parent's queued events.

Usage in a gunicorn config file, to initialise the SDK once per worker::

    def post_fork(server, worker):
        from flask_observe.sentry import init_sentry
        init_sentry("https://key@sentry.example/1")

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import contextvars
import sys
import typing as t

from .. import process
from ..containment import warn_limited
from ..scrub import is_scrubbing
from ..scrub import make_before_send

if t.TYPE_CHECKING:
    from sentry_sdk.client import BaseClient

#: Options :func:`init_sentry` passes unless the caller overrides them.
LEAN_OPTIONS: dict[str, t.Any] = {
    "default_integrations": False,
    "auto_enabling_integrations": False,
    "traces_sample_rate": None,
}

#: The settings of the client :func:`init_sentry` made last, keyed by the client's id.
_owned: dict[int, dict[str, t.Any]] = {}
#: The ids of :data:`_owned` clients this process inherited from its parent at a fork.
_inherited: set[int] = set()


def init_sentry(dsn: str, **options: t.Any) -> BaseClient:
    """Initialise sentry-sdk with lean defaults and Flask-Observe's scrubbing.

    Only ``DedupeIntegration`` (drops a second capture of the same exception) and
    ``AtexitIntegration`` (sends queued events at exit) are enabled: no
    ``FlaskIntegration``, so no per-request cost and no performance tracing. The
    ``before_send`` option, if given, runs after scrubbing.

    Call it once per process; under gunicorn, in the ``post_fork`` hook.

    :param dsn: the project's DSN.
    :param options: any further ``sentry_sdk.init`` option; these win over ours.
    :return: the new client (also bound to the global scope).

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
        Runs in a copy of the caller's context: importing sentry-sdk sets its scope
        variables in the importing thread's context, which makes Flask's own context
        changes dearer for every request later served on that thread.
    """
    return contextvars.copy_context().run(_init_sentry, dsn, options)


def _init_sentry(dsn: str, options: dict[str, t.Any]) -> BaseClient:
    import sentry_sdk
    from sentry_sdk.integrations.atexit import AtexitIntegration
    from sentry_sdk.integrations.dedupe import DedupeIntegration

    settings: dict[str, t.Any] = {
        **LEAN_OPTIONS,
        "integrations": [DedupeIntegration(), AtexitIntegration()],
        **options,
    }
    then = settings.get("before_send")
    if not is_scrubbing(then):
        settings["before_send"] = make_before_send(then)
    sentry_sdk.init(dsn=dsn, **settings)
    client = sentry_sdk.get_client()
    _owned.clear()
    _inherited.clear()
    _owned[id(client)] = {"dsn": dsn, **settings}
    process.after_fork_in_child(_after_fork_in_child)
    return client


def _after_fork_in_child() -> None:
    _inherited.update(_owned)


def validate_dsn(dsn: str) -> str | None:
    """The reason *dsn* is unusable, or ``None`` when it is fine (set-up time)."""
    try:
        from sentry_sdk.utils import BadDsn
        from sentry_sdk.utils import Dsn
    except ImportError:
        return "needs sentry-sdk: pip install 'Flask-Observe[sentry]'"
    try:
        Dsn(dsn)
    except BadDsn as exc:
        return f"not a valid Sentry DSN ({exc})"
    return None


def setup_from_config(dsn: str | None) -> None:
    """Initialise the SDK for ``OBSERVE_SENTRY_DSN``, or adopt the active client.

    An active client with the same DSN is reused; one with another DSN is left in
    place (the SDK is process-global) with a warning. An active client the app set up
    itself gets Flask-Observe's scrubbing in front of its ``before_send``.
    """
    if dsn is None:
        # Only adopt: importing the SDK to learn that it is inactive would also set its
        # context variables in this thread's context, which makes each of Flask's own
        # context variable changes dearer for every request served on this thread.
        sdk = sys.modules.get("sentry_sdk")
        if sdk is not None and sdk.get_client().is_active():
            install_scrubber(sdk.get_client())
        return
    try:
        import sentry_sdk
    except ImportError:
        return
    client = sentry_sdk.get_client()
    if client.is_active():
        active = client.options.get("dsn")
        if active != dsn:
            warn_limited(
                "sentry-init",
                "Flask-Observe: sentry-sdk is already initialised with another DSN; "
                "OBSERVE_SENTRY_DSN is ignored (the SDK is process-global).",
            )
        install_scrubber(client)
        return
    init_sentry(dsn)


def install_scrubber(client: BaseClient) -> None:
    """Put Flask-Observe's scrubbing in front of *client*'s ``before_send`` (once)."""
    current = client.options.get("before_send")
    if not is_scrubbing(current):
        client.options["before_send"] = make_before_send(current)


def is_active() -> bool:
    """Whether a sentry-sdk client is active, without importing sentry-sdk."""
    sentry_sdk = sys.modules.get("sentry_sdk")  # an SDK never imported is not active
    return sentry_sdk is not None and bool(sentry_sdk.get_client().is_active())


def active_client() -> BaseClient | None:
    """The active sentry-sdk client, re-created when the process forked since it was
    made by :func:`init_sentry` (its queue holds the parent's events: sending them from
    the child would duplicate them). ``None`` when the SDK is missing or inactive.
    """
    sentry_sdk = sys.modules.get("sentry_sdk")  # an SDK never imported is not active
    if sentry_sdk is None:
        return None
    client: BaseClient = sentry_sdk.get_client()
    if not client.is_active():
        return None
    if id(client) in _inherited:
        settings = dict(_owned[id(client)])
        dsn = settings.pop("dsn")
        settings.pop("integrations", None)
        client = init_sentry(dsn, **settings)
    else:
        install_scrubber(client)
    return client


def flask_integration_active(client: BaseClient) -> bool:
    """Whether sentry-sdk's own ``FlaskIntegration`` captures unhandled errors."""
    return client.get_integration("flask") is not None
