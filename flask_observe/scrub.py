"""Removing secrets from error events before they leave the process.

:func:`scrub_event` walks a whole Sentry event (request, exception values, frame
variables, breadcrumbs, extra data) and replaces the value of every sensitive key with
``"[Filtered]"``; inside strings it masks ``user:pass@`` credentials in URLs and the
values of ``key=value`` / ``"key": "value"`` pairs whose key is sensitive.
:func:`make_before_send` turns it into a ``before_send`` callback for ``sentry_sdk.init``
that can be chained with an app's own.

Sensitive keys, matched case-insensitively as substrings after ``-`` became ``_``:
``password``, ``passwd``, ``secret``, ``token``, ``api_key``, ``apikey``, ``card``,
``authorization``, ``cookie``, plus the keys in ``OBSERVE_SCRUB_KEYS``. That covers the
headers ``Authorization``, ``Proxy-Authorization``, ``Cookie``, ``Set-Cookie``,
``X-Api-Key`` and ``X-Auth-Token`` and their WSGI ``HTTP_*`` spellings.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import typing as t

from flask import current_app
from flask import has_app_context

from .containment import warn_limited
from .state import find_state

if t.TYPE_CHECKING:
    from collections.abc import Iterable
    from collections.abc import Iterator

#: What a scrubbed value is replaced with (Sentry's own marker).
FILTERED = "[Filtered]"

#: Substrings that make a key sensitive.
DEFAULT_KEYS: tuple[str, ...] = (
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "card",
    "authorization",
    "cookie",
)

#: ``scheme://user:password@`` (and ``scheme://token@``) inside any string.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^\s/@?#]+@")

#: Deepest nesting walked; anything deeper is replaced as a whole.
MAX_DEPTH = 32

EventT = t.TypeVar("EventT")
BeforeSend = t.Callable[[t.Any, t.Any], t.Any]


class Scrubber:
    """Scrubs events for one set of sensitive keys.

    :param extra_keys: more sensitive key substrings (``OBSERVE_SCRUB_KEYS``).

    .. versionadded:: 0.1.0
    """

    def __init__(self, extra_keys: Iterable[str] = ()) -> None:
        keys = tuple(
            dict.fromkeys(k.lower().replace("-", "_") for k in (*DEFAULT_KEYS, *extra_keys))
        )
        #: The normalised key substrings this scrubber filters.
        self.keys = keys
        alternatives = "|".join(re.escape(k).replace("_", "[_-]?") for k in keys)
        # key, separator (= or : with optional quotes), then the value up to a delimiter;
        # an auth scheme word (Bearer, Basic, Token) is masked together with its value.
        self._pairs = re.compile(
            r"(?P<key>[\w.-]*(?:" + alternatives + r")[\w.-]*)"
            r"(?P<sep>[\"']?\s*[=:]\s*[\"']?)"
            r"(?!\[Filtered\])"
            r"(?P<value>(?:(?:Bearer|Basic|Token|Digest)\s+)?[^\s\"'&,;}\])]+)",
            re.IGNORECASE,
        )
        # A necessary condition for a pair, cheap to test: one of the keys and a
        # separator. Most strings of an event (source lines, frame values) have neither,
        # and the full pattern is slow to rule out on them. On ASCII text (nearly all),
        # searching the lowered text is the same test and several times faster than
        # IGNORECASE, which folds case character by character.
        self._any_key = re.compile(alternatives, re.IGNORECASE)
        self._any_key_lowered = re.compile(alternatives)
        # A key's substrings in a normalised name, in one C-level search.
        self._key_in_name = re.compile("|".join(re.escape(k) for k in keys))

    def is_sensitive(self, key: object) -> bool:
        """Whether the value under *key* must be filtered."""
        if not isinstance(key, str):
            return False
        return self._key_in_name.search(key.lower().replace("-", "_")) is not None

    def scrub_text(self, text: str) -> str:
        """Mask URL credentials and sensitive ``key=value`` pairs inside *text*."""
        if "@" in text:
            text = _URL_CREDENTIALS.sub(r"\g<scheme>" + FILTERED + "@", text)
        if ("=" in text or ":" in text) and self._may_hold_pair(text):
            text = self._pairs.sub(r"\g<key>\g<sep>" + FILTERED, text)
        return text

    def _may_hold_pair(self, text: str) -> bool:
        if text.isascii():
            return self._any_key_lowered.search(text.lower()) is not None
        return self._any_key.search(text) is not None

    def scrub(self, value: t.Any, depth: int = 0) -> t.Any:
        """Return a scrubbed copy of *value* (dicts, lists, tuples and strings)."""
        if isinstance(value, str):
            return self.scrub_text(value)
        if depth >= MAX_DEPTH:
            return FILTERED
        if isinstance(value, dict):
            return {
                key: (
                    FILTERED
                    if self.is_sensitive(key) and value[key] not in (None, "")
                    else self.scrub(value[key], depth + 1)
                )
                for key in value
            }
        if isinstance(value, (list, tuple)):
            if len(value) == 2 and self.is_sensitive(value[0]):
                # a (name, value) pair, as in a list of headers
                return [value[0], FILTERED]
            return [self.scrub(item, depth + 1) for item in value]
        if isinstance(value, bytes):
            return self.scrub_text(value.decode("utf-8", "replace"))
        return value

    def scrub_event(self, event: EventT) -> EventT:
        """Return a scrubbed copy of a Sentry event dict."""
        return t.cast("EventT", self.scrub(event))


#: A scrubber with the default keys only.
default_scrubber = Scrubber()


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
                scrubber = Scrubber((*scrubber.keys, *fixed.keys))
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
    sentry = state.sentry if state is not None else None
    return sentry.scrubber if sentry is not None else None
