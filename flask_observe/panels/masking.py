"""Masking for what the panels show: secret-looking config values and URL credentials.

Everything the panels display is escaped by their Jinja environment; this module
decides what is not displayed at all.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import re

#: What a masked value is shown as.
MASK = "********"

_SECRET_NAME = re.compile(
    r"secret|passw|pwd|token|api_?key|private|credential|auth|dsn|salt|signature|cookie_?key",
    re.IGNORECASE,
)
# scheme://user:password@host or scheme://key@host (Sentry DSNs)
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)

#: Longest text shown for one value.
MAX_LENGTH = 200


def is_secret_name(name: str) -> bool:
    """Whether a config key such as ``SECRET_KEY`` or ``DB_PASSWORD`` looks secret.

    :param name: the configuration key.
    """
    return bool(_SECRET_NAME.search(name))


def mask_text(text: str) -> str:
    """Replace the credentials of every URL in *text* with :data:`MASK`.

    >>> mask_text("postgres://app:hunter2@db/app")
    'postgres://********@db/app'

    :param text: any text, e.g. an exception message.
    """
    return _URL_USERINFO.sub(lambda m: m.group("scheme") + MASK + "@", text)


def shorten(text: str, limit: int = MAX_LENGTH) -> str:
    """Cut *text* to *limit* characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def mask_value(name: str, value: object) -> str:
    """The text shown for the config value *value* of the key *name*.

    A value whose key looks secret is masked entirely (unless empty); any other value
    is shown as its ``repr`` with URL credentials masked and long text cut.

    :param name: the configuration key.
    :param value: its value.
    """
    if is_secret_name(name) and value not in (None, "", b""):
        return MASK
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__} object>"
    return shorten(mask_text(text))
