"""Keeping Flask-Observe's own failures away from the app.

Instrumentation must never raise into a request. Code that can fail runs inside
:func:`contained`, which logs the failure at WARNING (never ERROR, which Sentry's
logging integration would turn into an event) at most once a minute per place.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Iterator

logger = logging.getLogger("flask_observe")

#: Seconds between two warnings from the same place.
WARNING_INTERVAL = 60.0

_last_warned: dict[str, float] = {}
_lock = threading.Lock()


def warn_limited(where: str, message: str, *args: object, exc_info: bool = False) -> bool:
    """Log a WARNING for *where* unless one was logged in the last minute.

    :return: whether the warning was logged.
    """
    now = time.monotonic()
    with _lock:
        last = _last_warned.get(where)
        if last is not None and now - last < WARNING_INTERVAL:
            return False
        _last_warned[where] = now
    logger.warning(message, *args, exc_info=exc_info)
    return True


@contextlib.contextmanager
def contained(where: str) -> Iterator[None]:
    """Run a block whose exceptions are logged (rate-limited) and swallowed."""
    try:
        yield
    except Exception:
        warn_limited(where, "Flask-Observe: %s failed; the request goes on.", where, exc_info=True)
