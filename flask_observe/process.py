"""Per-process hooks: a function run in each forked child, or at interpreter exit, that
is registered once per process however many apps, clients or queues ask for it.

What Flask-Observe keeps per process (statsd senders, the Sentry capture worker, the
throttles' locks) belongs to the process that made it: a forked child (a gunicorn worker
of a preloaded app) must start without the parent's buffers, threads and held locks, and
what is still buffered must be sent before the interpreter exits. Each such module
registers its hook here, when it first has something to protect, never at import::

    from flask_observe import process

    process.after_fork_in_child(_forget_parent_buffers)
    process.at_exit(close_all)

Registrations are inherited by a forked child, like the hooks themselves: asking again
there registers nothing twice.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import atexit
import os
import threading
import typing as t

#: What is registered, as ``(when, function)`` pairs; process-wide, as the hooks are.
_registered: set[tuple[str, t.Callable[[], None]]] = set()
_lock = threading.Lock()


def after_fork_in_child(function: t.Callable[[], None]) -> None:
    """Call *function* in the child process after every later :func:`os.fork`.

    Registering the same function again does nothing. On a platform without
    :func:`os.register_at_fork` nothing is registered (nothing forks there).

    :param function: called with no argument, in the child, before the fork returns;
        it must not raise (Python only prints what a fork hook raises).
    """
    if hasattr(os, "register_at_fork"):
        _register("fork", function, lambda: os.register_at_fork(after_in_child=function))


def at_exit(function: t.Callable[[], None]) -> None:
    """Call *function* at interpreter exit (with :mod:`atexit`).

    Registering the same function again does nothing. :mod:`atexit` calls the last
    registered function first, so a hook that must run before another library's exit
    hook (sentry-sdk's flush, say) is registered after that library's.

    :param function: called with no argument.
    """
    _register("exit", function, lambda: atexit.register(function))


def _register(when: str, function: t.Callable[[], None], register: t.Callable[[], object]) -> None:
    key = (when, function)
    with _lock:
        if key in _registered:
            return
        if not _registered and hasattr(os, "register_at_fork"):
            # A lock another thread held at fork time stays held in the child.
            os.register_at_fork(after_in_child=_new_lock)
        register()
        _registered.add(key)


def _new_lock() -> None:
    global _lock
    _lock = threading.Lock()
