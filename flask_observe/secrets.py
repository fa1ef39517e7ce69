"""Secret rules: which keys and which parts of a text are secret, and the one marker
shown in their place. Sentry events (:mod:`flask_observe.scrub`), problem+json bodies
(:mod:`flask_observe.errors`) and the toolbar panels all apply these rules.

A :class:`Scrubber` replaces with ``"[Filtered]"`` the value of every sensitive key
(in mappings, and in ``(name, value)`` pairs such as a list of headers) and, inside
any text, ``user:pass@`` credentials in URLs, the values of ``key=value`` /
``"key": "value"`` pairs whose key is sensitive, payment card numbers, and the matches
of ``OBSERVE_SCRUB_PATTERNS``.

Where a value inside text ends (it is masked whole, up to there):

- a quoted value (``"key": "value"``, ``key='value'``) at its closing quote, escaped
  quotes (``\\"``) included, or at the end of the line when the quote is never closed;
- an unquoted value (``key=value``, ``key: value``) at the end of the line, at ``&``,
  ``,``, ``;``, a quote or a closing bracket, or before a space followed by the next
  ``name=`` or ``name:``. Spaces inside are part of it: ``password=correct horse battery
  staple`` becomes ``password=[Filtered]``, while ``a=1&password=x y&b=2`` becomes
  ``a=1&password=[Filtered]&b=2``. An auth scheme (``Bearer``, ``Basic``, ``Token``,
  ``Digest``) is masked with its value.

A payment card number is 13 to 19 digits, written together or in groups separated by
single spaces or dashes, that pass the Luhn check; it is masked wherever it appears in
text (``4111 1111 1111 1111``, ``4111-1111-1111-1111``).

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

#: A run of 13 to 19 digits, maybe grouped by single spaces or dashes: a card number
#: when it also passes the Luhn check (:func:`luhn_valid`).
CARD_CANDIDATE = re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])")

#: Deepest nesting walked; anything deeper is replaced as a whole.
MAX_DEPTH = 32

#: Values that stay as they are under a sensitive key: there is nothing to hide.
_EMPTY = (None, "", b"")

EventT = t.TypeVar("EventT")


class Scrubber:
    """The secret rules for one set of sensitive keys.

    :param extra_keys: more sensitive key substrings (``OBSERVE_SCRUB_KEYS``).
    :param extra_patterns: regular expressions whose every match in a text is masked
        whole (``OBSERVE_SCRUB_PATTERNS``).

    .. versionadded:: 0.1.0
    .. versionchanged:: 0.2.0
        Moved here from :mod:`flask_observe.scrub`; the keys are those the panels
        masked too.
    .. versionchanged:: 0.3.0
        Values inside text are masked to their end, spaces included; card numbers and
        *extra_patterns* are masked too.
    """

    def __init__(
        self, extra_keys: Iterable[str] = (), extra_patterns: Iterable[re.Pattern[str]] = ()
    ) -> None:
        keys = tuple(
            dict.fromkeys(k.lower().replace("-", "_") for k in (*DEFAULT_KEYS, *extra_keys))
        )
        #: The normalised key substrings this scrubber filters.
        self.keys = keys
        #: The extra patterns this scrubber masks.
        self.patterns = tuple(extra_patterns)
        alternatives = "|".join(re.escape(k).replace("_", "[_-]?") for k in keys)
        filtered = re.escape(FILTERED)
        word = r"[^\s\"'&,;}\])]+"
        # key, separator (= or :, after the key's closing quote if any), then the value
        # (see the module docstring for where it ends): quoted by " or ', or unquoted,
        # words joined by spaces until the next name= / name:, with an auth scheme
        # word (Bearer, Basic, Token, Digest) masked together with its value.
        self._pairs = re.compile(
            r"(?P<key>[\w.-]*(?:" + alternatives + r")[\w.-]*)"
            r"(?P<sep>[\"']?\s*[=:]\s*)"
            r"(?:"
            r"(?P<quote>[\"'])(?!" + filtered + r")"
            r"(?P<quoted>(?:\\.|(?!(?P=quote))[^\\\n])+)"
            r"|"
            r"(?!" + filtered + r")"
            r"(?P<value>(?:(?:Bearer|Basic|Token|Digest)\s+)?"
            + word
            + r"(?:[ \t]+(?![\w.-]+[=:])"
            + word
            + r")*)"
            r")",
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
        """Mask URL credentials, sensitive ``key=value`` pairs, card numbers and the
        extra patterns inside *text*."""
        if "@" in text:
            text = URL_CREDENTIALS.sub(r"\g<scheme>" + FILTERED + "@", text)
        if ("=" in text or ":" in text) and self._may_hold_pair(text):
            text = self._pairs.sub(_mask_pair, text)
        text = CARD_CANDIDATE.sub(_mask_card, text)
        for pattern in self.patterns:
            text = pattern.sub(FILTERED, text)
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


def _mask_pair(match: re.Match[str]) -> str:
    """The key and separator of a sensitive pair, then the marker in place of its value
    (after the opening quote of a quoted value: the closing one stays in the text)."""
    return match["key"] + match["sep"] + (match["quote"] or "") + FILTERED


def _mask_card(match: re.Match[str]) -> str:
    number = match.group()
    return FILTERED if luhn_valid(number) else number


def luhn_valid(number: str) -> bool:
    """Whether the digits of *number* (spaces and dashes ignored) pass the Luhn check
    that every payment card number passes.

    .. versionadded:: 0.3.0
    """
    total = 0
    for position, char in enumerate(reversed(number.replace(" ", "").replace("-", ""))):
        digit = int(char)
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


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
        scrubber = Scrubber(state.config.scrub_keys, state.config.scrub_patterns)
        state.add_part(scrubber)
    return scrubber
