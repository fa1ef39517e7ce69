"""Removing secrets from error events before they leave the process.

:func:`scrub_event` applies the secret rules of :mod:`flask_observe.secrets` to a whole
Sentry event (request, exception values, frame variables, breadcrumbs, extra data):
the value of every sensitive key becomes ``"[Filtered]"``, and so do URL credentials,
sensitive ``key=value`` / ``"key": "value"`` pairs (values masked to their end) and
card numbers inside strings.
:func:`make_before_send` turns it into a ``before_send`` callback for ``sentry_sdk.init``
that can be chained with an app's own.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import contextlib
import contextvars
import typing as t

from flask import current_app
from flask import has_app_context

from .containment import warn_limited
from .secrets import default_scrubber as default_scrubber
from .secrets import Scrubber as Scrubber
from .secrets import state_scrubber
from .state import find_state

if t.TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Iterator

EventT = t.TypeVar("EventT")
BeforeSend = t.Callable[[t.Any, t.Any], t.Any]


def scrub_event(event: EventT, extra_keys: Iterable[str] = ()) -> EventT:
    """Scrub a Sentry event (a dict) and return the scrubbed copy.

    :param event: the event, as handed to ``before_send``.
    :param extra_keys: more sensitive key substrings.

    .. versionadded:: 0.1.0
    """
    scrubber = Scrubber(extra_keys) if extra_keys else default_scrubber
    return scrubber.scrub_event(event)


def make_before_send(then: BeforeSend | None = None, extra_keys: Iterable[str] = ()) -> BeforeSend:
    """Build a ``before_send`` callback that scrubs each event, then calls *then*.

    Use it when the app initialises sentry-sdk itself and has its own ``before_send``::

        import sentry_sdk
        from flask_observe.scrub import make_before_send

        sentry_sdk.init(dsn=..., before_send=make_before_send(my_before_send))

    Scrubbing runs first, so *then* sees the scrubbed event (and may drop it by
    returning ``None``). If scrubbing itself fails the event is dropped: a lost event
    is better than a leaked secret. Inside a request of an app with Flask-Observe, and for
    the events Flask-Observe builds for such a request on its capture worker, the app's
    ``OBSERVE_SCRUB_KEYS`` are added to *extra_keys*.

    :param then: the app's own ``before_send``, called with the scrubbed event.
    :param extra_keys: more sensitive key substrings for every event.

    .. versionadded:: 0.1.0
    """
    fixed = Scrubber(extra_keys) if extra_keys else default_scrubber

    def before_send(event: t.Any, hint: t.Any) -> t.Any:
        try:
            scrubber = _app_scrubber() or fixed
            if scrubber is not fixed and extra_keys:
                scrubber = Scrubber((*scrubber.keys, *fixed.keys), scrubber.patterns)
            event = scrubber.scrub_event(event)
        except Exception:
            warn_limited("scrub", "Flask-Observe could not scrub an event; dropped it")
            return None
        if then is not None:
            return then(event, hint)
        return event

    before_send.flask_observe_scrubber = True  # type: ignore[attr-defined]
    before_send.flask_observe_then = then  # type: ignore[attr-defined]
    return before_send


#: The scrubber of the app an event belongs to, while that event is processed outside
#: the app's context (by the capture worker of :mod:`flask_observe.sentry.worker`).
_event_scrubber: contextvars.ContextVar[Scrubber | None] = contextvars.ContextVar(
    "flask_observe_event_scrubber", default=None
)


@contextlib.contextmanager
def scrubbing_for(scrubber: Scrubber) -> Iterator[None]:
    """Make the ``before_send`` of :func:`make_before_send` use *scrubber* for the events
    captured inside the block, as it would inside a request of the app it belongs to.

    :param scrubber: the app's scrubber (its ``OBSERVE_SCRUB_KEYS`` included).

    .. versionadded:: 0.2.0
    """
    token = _event_scrubber.set(scrubber)
    try:
        yield
    finally:
        _event_scrubber.reset(token)


def is_scrubbing(before_send: object) -> bool:
    """Whether *before_send* was built by :func:`make_before_send`."""
    return bool(getattr(before_send, "flask_observe_scrubber", False))


def _app_scrubber() -> Scrubber | None:
    """The scrubber of the current app, when it has Flask-Observe errors set up, or the
    one :func:`scrubbing_for` set."""
    scrubber = _event_scrubber.get()
    if scrubber is not None:
        return scrubber
    if not has_app_context():
        return None
    state = find_state(current_app)
    return state_scrubber(state) if state is not None else None
