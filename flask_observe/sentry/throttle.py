"""Per-fingerprint rate limit for error events (``OBSERVE_SENTRY_ERROR_RATE``).

In an error storm the same error repeats thousands of times, and every Sentry event costs
milliseconds to build. :class:`ErrorThrottle` admits at most *count* events per
*seconds* window for each fingerprint; the repeats beyond it are only counted, and the
next admitted event of that fingerprint carries the count. Pure bookkeeping: no Flask,
no sentry-sdk.

Usage::

    throttle = ErrorThrottle(10, 60.0)
    carried = throttle.admit(fingerprint(exception, exception.__traceback__))
    if carried is None:
        ...  # suppressed: count it, build nothing
    else:
        ...  # send, noting the ``carried`` repeats suppressed since the last event

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import threading
import time
import typing as t
import weakref

from .. import process

if t.TYPE_CHECKING:
    from collections.abc import Hashable
    from types import TracebackType

#: Most fingerprints remembered per throttle; beyond it, expired windows are forgotten
#: first, then the oldest ones.
MAX_FINGERPRINTS = 1024

# Process-wide, not per-app state: the throttles whose locks are replaced in a forked
# child (a lock held by another thread at fork time would never be released there).
_throttles: weakref.WeakSet[ErrorThrottle] = weakref.WeakSet()


def fingerprint(exception: BaseException, tb: TracebackType | None) -> Hashable:
    """What makes two errors "the same" for the throttle: the exception class and the
    file and line of every entry of its traceback, from the outermost to where it was
    raised.

    The whole traceback rather than the innermost frame alone: every ``abort(500)`` is
    raised on the same line of Werkzeug, and an error raised inside a shared helper or a
    database driver has the same innermost frame whichever view called it. The code
    path is what tells them apart, as in Sentry's own grouping.

    :param exception: the exception.
    :param tb: its traceback as it was when the error was noted.
    """
    locations: list[object] = [type(exception)]
    while tb is not None:
        locations.append(tb.tb_frame.f_code.co_filename)
        locations.append(tb.tb_lineno)
        tb = tb.tb_next
    return tuple(locations)


class ErrorThrottle:
    """At most *count* admitted errors per *seconds* window, for each fingerprint.

    A fingerprint's window starts with its first admitted error after the previous
    window ended. Thread-safe.

    :param count: errors admitted per window.
    :param seconds: the window's length.

    .. versionadded:: 0.2.0
    """

    def __init__(self, count: int, seconds: float) -> None:
        #: Errors admitted per window.
        self.count = count
        #: The window's length in seconds.
        self.seconds = seconds
        #: Errors suppressed so far, all fingerprints together.
        self.suppressed = 0
        #: Suppressed repeats forgotten with their fingerprint (more than
        #: :data:`MAX_FINGERPRINTS` fingerprints were busy at once).
        self.forgotten = 0
        # fingerprint -> [window start, admitted in the window, suppressed since the last]
        self._windows: dict[Hashable, list[float]] = {}
        self._lock = threading.Lock()
        _throttles.add(self)
        process.after_fork_in_child(_after_fork_in_child)

    def admit(self, key: Hashable) -> int | None:
        """Count one error with fingerprint *key*.

        :return: ``None`` when it is suppressed; else how many errors of *key* were
            suppressed since the last admitted one (their count is then reset).
        """
        now = time.monotonic()
        with self._lock:
            window = self._windows.get(key)
            if window is None:
                if len(self._windows) >= MAX_FINGERPRINTS:
                    self._forget(now)
                self._windows[key] = [now, 1, 0]
                return 0
            if now - window[0] >= self.seconds:
                window[0] = now
                window[1] = 0
            if window[1] < self.count:
                window[1] += 1
                carried = int(window[2])
                window[2] = 0
                return carried
            window[2] += 1
            self.suppressed += 1
            return None

    def _forget(self, now: float) -> None:
        """Make room: drop expired windows with nothing to carry, then the oldest."""
        windows = self._windows
        for key in [k for k, w in windows.items() if now - w[0] >= self.seconds and not w[2]]:
            del windows[key]
        while len(windows) >= MAX_FINGERPRINTS:
            oldest = next(iter(windows))
            self.forgotten += int(windows.pop(oldest)[2])

    def __len__(self) -> int:
        return len(self._windows)


def _after_fork_in_child() -> None:
    for throttle in list(_throttles):
        throttle._lock = threading.Lock()
