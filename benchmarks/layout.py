"""Shift where a benchmark process puts its objects, for instruction counts.

A run under valgrind is repeatable to the instruction, but what it counts depends on
where objects land: ``contextvars`` hashes its variables by address (so the shape of the
context's tree changes), CPython's type attribute cache is indexed by the type's version
tag and the address of the name looked up (so which hot look-ups collide changes), and
the allocator's work follows. Any change to what a process imports or allocates before
serving (a module, a route) moves these, and with them a configuration's count, by up
to about 1 % of a request: more than the differences the benchmarks are after.

So each configuration is counted in several layouts and the median is kept. A layout
is set by :data:`ENVIRON_KEY` (an integer) and applied by :func:`shift`, which the
benchmark scripts call before importing Flask: it keeps a seeded random set of small
objects of mixed sizes alive (moving every later small object) and makes a number of
classes with version tags (moving every later tag).
"""

from __future__ import annotations

import os
import random

#: The environment variable holding the layout number (0 or unset: no shift).
ENVIRON_KEY = "OBSERVE_BENCH_LAYOUT"

_ballast: list[object] = []


def shift() -> int:
    """Apply the layout :data:`ENVIRON_KEY` names; return its number."""
    layout = int(os.environ.get(ENVIRON_KEY) or 0)
    if layout <= 0:
        return 0
    chooser = random.Random(layout)
    for _ in range(chooser.randrange(200, 2000)):
        _ballast.append("x" * chooser.randrange(1, 400))
    for index in range(chooser.randrange(5, 80)):
        cls = type(f"_Layout{index}", (), {})
        getattr(cls, "tagged", None)  # a look-up gives the class its version tag
        _ballast.append(cls)
    return layout
