"""Worker slots: a small number per worker process that a restarted worker reuses.

The processes with the same parent (the workers of a gunicorn or uWSGI master) share
the directory ``<tmp>/flask-observe-<uid>/parent-<ppid>/``. A worker takes the lowest
``slot-<n>`` file there that it can lock with :func:`fcntl.flock` and holds the lock as
long as it lives; the kernel releases it when the worker dies, however it dies, and the
replacement takes the same number. :mod:`flask_observe.process_metrics` names each
worker's figures ``w<n>``, so their number stays that of the workers alive at once.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

from . import process
from .containment import warn_limited

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no worker slots, no process figures
    fcntl = None  # type: ignore[assignment]

#: Most worker slots per parent process; a process that finds none free sends no figures.
MAX_SLOTS = 256

_slot_lock = threading.Lock()
#: This process's slot number and the descriptor holding its lock; ``None`` until the
#: first flush asks.
_slot: tuple[int, int] | None = None
#: The slot of this process could not be had; asked again no sooner than a fork.
_slot_failed = False


def slot_directory() -> Path:
    """Where the workers of this process's parent take their slots:
    ``<tmp>/flask-observe-<uid>/parent-<ppid>``."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"flask-observe-{uid}" / f"parent-{os.getppid()}"


def worker_slot() -> int | None:
    """This process's worker slot, allocated on the first call (``None``: none free,
    or the directory is unusable; a warning says why)."""
    global _slot, _slot_failed
    with _slot_lock:
        if _slot is None and not _slot_failed:
            try:
                _slot = take_slot(slot_directory())
                process.after_fork_in_child(_forget_slot_after_fork)
            except OSError as exc:
                warn_limited(
                    "process-slot",
                    "Flask-Observe: no worker slot (%s); process figures are not sent",
                    exc,
                )
            _slot_failed = _slot is None
        return _slot[0] if _slot is not None else None


def take_slot(directory: Path) -> tuple[int, int] | None:
    """Lock the lowest free ``slot-<n>`` file in *directory* (made if missing, under a
    private directory of this user): its number and the descriptor holding the lock;
    ``None`` when all :data:`MAX_SLOTS` are taken.

    :raises OSError: the directory is not private, or not usable.
    """
    if fcntl is None:  # pragma: no cover - Windows
        raise OSError("file locks are not available on this platform")
    base = directory.parent
    base.mkdir(mode=0o700, exist_ok=True)
    info = os.lstat(base)
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or not os.path.isdir(base):
        raise OSError(f"{base} is not a private directory of this user")
    _remove_stale(base)
    directory.mkdir(mode=0o700, exist_ok=True)
    for number in range(MAX_SLOTS):
        fd = os.open(directory / f"slot-{number}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return number, fd
    warn_limited(
        "process-slot-full",
        "Flask-Observe: all %d worker slots in %s are taken; process figures are not sent",
        MAX_SLOTS,
        directory,
    )
    return None


def touch_slot() -> None:
    """Refresh the slot file's times at each flush, so that a cleaner of old files in
    the temporary directory (systemd-tmpfiles) never takes a live worker's slot file."""
    held = _slot
    if held is not None and os.utime in os.supports_fd:
        os.utime(held[1])


def _remove_stale(base: Path) -> None:
    """Remove the slot directories of parents that are gone, keeping any slot a live
    process (an orphaned worker) still holds."""
    for directory in base.glob("parent-*"):
        try:
            if _alive(int(directory.name[len("parent-") :])):
                continue
            for slot in directory.glob("slot-*"):
                fd = os.open(slot, os.O_RDWR)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    slot.unlink()  # under the lock: no worker can take it meanwhile
                except BlockingIOError:
                    pass
                finally:
                    os.close(fd)
            directory.rmdir()
        except (OSError, ValueError):  # held, raced by a sibling, or not ours
            continue


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _forget_slot_after_fork() -> None:
    """In a forked child: the parent's slot descriptor shares the parent's lock, so the
    child closes its copy and takes a slot of its own when it first flushes."""
    global _slot, _slot_lock, _slot_failed
    _slot_lock = threading.Lock()
    if _slot is not None:
        try:
            os.close(_slot[1])
        except OSError:  # pragma: no cover - already closed
            pass
    _slot = None
    _slot_failed = False
