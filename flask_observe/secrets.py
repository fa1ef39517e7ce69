"""Secret rules: which keys and which parts of a text are secret, and the one marker
shown in their place. Sentry events (:mod:`flask_observe.scrub`), problem+json bodies
(:mod:`flask_observe.errors`) and the toolbar panels all apply these rules.

A :class:`Scrubber` replaces with ``"[Filtered]"`` the value of every sensitive key
(in mappings, and in ``(name, value)`` pairs such as a list of headers) and, inside
any text, ``user:pass@`` credentials in URLs and the values of ``key=value`` /
``"key": "value"`` pairs whose key is sensitive.

Sensitive keys, matched case-insensitively as substrings after ``-`` became ``_``:
``passw`` (``password``, ``passwd``), ``pwd``, ``secret``, ``token``, ``api_key``,
``apikey``, ``auth`` (``authorization``, ``x-auth-token``), ``cookie``, ``card``,
``credential``, ``private``, ``dsn``, ``salt``, ``signature``, plus the keys in
``OBSERVE_SCRUB_KEYS``. That covers the headers ``Authorization``,
``Proxy-Authorization``, ``Cookie``, ``Set-Cookie``, ``X-Api-Key`` and ``X-Auth-Token``
and their WSGI ``HTTP_*`` spellings, and config keys such as ``SECRET_KEY``,
``SENTRY_DSN`` or ``MAIL_PASSWORD``.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import re
import typing as t

from .state import find_state

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from flask import Flask

    from .state import ObserveState

#: What a secret is replaced with, everywhere (Sentry's own marker).
FILTERED = "[Filtered]"

#: Substrings that make a key sensitive.
DEFAULT_KEYS: tuple[str, ...] = (
    "passw",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "auth",
    "cookie",
    "card",
    "credential",
    "private",
    "dsn",
    "salt",
    "signature",
)

#: ``scheme://user:password@`` (and ``scheme://token@``) inside any string.
URL_CREDENTIALS = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^\s/@?#]+@")

#: Deepest nesting walked; anything deeper is replaced as a whole.
MAX_DEPTH = 32

#: Values that stay as they are under a sensitive key: there is nothing to hide.
_EMPTY = (None, "", b"")

EventT = t.TypeVar("EventT")


class Scrubber:
    """The secret rules for one set of sensitive keys.

    :param extra_keys: more sensitive key substrings (``OBSERVE_SCRUB_KEYS``).

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
        Moved here from :mod:`flask_observe.scrub`; the keys are those the panels
        masked too.
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
            r"(?!" + re.escape(FILTERED) + r")"
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

    def hides(self, key: object, value: object) -> bool:
        """Whether *value*, found under *key*, is replaced as a whole: the key is
        sensitive and the value is not empty (``None``, ``""``, ``b""``)."""
        return self.is_sensitive(key) and value not in _EMPTY

    def scrub_text(self, text: str) -> str:
        """Mask URL credentials and sensitive ``key=value`` pairs inside *text*."""
        if "@" in text:
            text = URL_CREDENTIALS.sub(r"\g<scheme>" + FILTERED + "@", text)
        if ("=" in text or ":" in text) and self._may_hold_pair(text):
            text = self._pairs.sub(r"\g<key>\g<sep>" + FILTERED, text)
        return text

    def _may_hold_pair(self, text: str) -> bool:
        if text.isascii():
            return self._any_key_lowered.search(text.lower()) is not None
        return self._any_key.search(text) is not None

    def scrub(self, value: t.Any, depth: int = 0) -> t.Any:
        """Return a scrubbed copy of *value*: mappings, lists and tuples (as lists),
        strings and bytes (as text); anything else as it is."""
        if isinstance(value, str):
            return self.scrub_text(value)
        if depth >= MAX_DEPTH:
            return FILTERED
        if isinstance(value, dict):
            return {
                key: (
                    FILTERED
                    if self.is_sensitive(key) and value[key] not in _EMPTY
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


def app_scrubber(app: Flask) -> Scrubber:
    """The scrubber of *app*: :func:`state_scrubber` when Flask-Observe is initialised
    on it, else :data:`default_scrubber`.

    :param app: the Flask application.

    .. versionadded:: 0.3.0
    """
    state = find_state(app)
    return state_scrubber(state) if state is not None else default_scrubber


def state_scrubber(state: ObserveState) -> Scrubber:
    """The scrubber of the app whose Flask-Observe state is *state*: the default keys
    plus its ``OBSERVE_SCRUB_KEYS``, made on first use and kept in the state.

    :param state: the app's Flask-Observe state.

    .. versionadded:: 0.3.0
    """
    scrubber = state.part(Scrubber)
    if scrubber is None:
        scrubber = Scrubber(state.config.scrub_keys)
        state.add_part(scrubber)
    return scrubber
