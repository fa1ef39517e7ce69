"""flask_observe.process: fork and exit hooks registered once per process, in real forked
children and real interpreter exits."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings

from flask_observe import process

#: Calls of :func:`_count_fork` in this process (a forked child inherits the list).
FORK_CALLS: list[int] = []


def _count_fork() -> None:
    FORK_CALLS.append(os.getpid())


def test_a_fork_hook_asked_for_three_times_runs_once_in_each_child() -> None:
    for _ in range(3):
        process.after_fork_in_child(_count_fork)
    FORK_CALLS.clear()
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads, 3.12+
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child process
        try:
            process.after_fork_in_child(_count_fork)  # inherited: registers nothing more
            grandchild = os.fork()
            if grandchild == 0:
                os._exit(len(FORK_CALLS))
            _, status = os.waitpid(grandchild, 0)
            os.write(write_end, f"{FORK_CALLS == [os.getpid()]} {status >> 8}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    answer = os.read(read_end, 64).decode()
    os.close(read_end)
    assert answer == "True 2"  # the child ran it once; the grandchild twice (inherited)
    assert FORK_CALLS == []  # never in the parent


EXIT_SCRIPT = """
from flask_observe import process

def first():
    print("first", flush=True)

def second():
    print("second", flush=True)

for _ in range(3):
    process.at_exit(first)
process.at_exit(second)
process.at_exit(first)
print("exiting", flush=True)
"""


def test_an_exit_hook_asked_for_again_runs_once_last_registered_first() -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", textwrap.dedent(EXIT_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.split() == ["exiting", "second", "first"]
