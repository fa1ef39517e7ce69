"""The garbage collector's pauses while a process serves requests, per configuration.

Each collection is timed from its ``start`` to its ``stop`` callback (:data:`gc.callbacks`)
over a long run of requests, in a child process per configuration and start (``bare``
first, as the reference):

- ``left``: start-up's garbage left to the collector;
- ``collected``: collected once before the first request, as :func:`benchmarks.harness.serve`
  does before the requests it counts.

Printed per run: the collections, their total and mean time per request, and each one
longer than :data:`LONG` with the request it came after (to within a batch of 100).
This is what showed, on 3.14, that start-up's leftovers go in one-off collections of a few
milliseconds early in a process's life (see ``docs/performance.rst``)::

    python -m benchmarks.gc_pauses --requests 300000 --only floor timing
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import typing as t

from benchmarks import harness

#: A collection longer than this is listed: the young collections of the trivial app
#: take about 0.15 ms.
LONG = 0.0004

#: Requests served between two readings of the request count.
BATCH = 100


def pauses(name: str, requests: int, collect: bool) -> dict[str, t.Any]:
    """Serve *requests* requests of configuration *name* in this process, start-up's
    garbage collected first when *collect*; its collections while it served: each one's
    time, those longer than :data:`LONG` and, as the interpreter counts them, how many."""
    app = harness.build(name)
    environ = harness.CONFIGURATIONS.environ()
    if collect:
        gc.collect()
    served = 0
    started = 0.0
    times: list[float] = []
    long: list[tuple[int, int, float]] = []

    def timed(phase: str, info: dict[str, int]) -> None:
        nonlocal started
        if phase == "start":
            started = time.perf_counter()
            return
        seconds = time.perf_counter() - started
        times.append(seconds)
        if seconds > LONG:
            long.append((served, info["generation"], seconds))

    before = sum(generation["collections"] for generation in gc.get_stats())
    gc.callbacks.append(timed)
    try:
        for _ in range(requests // BATCH):
            harness.run_once(app, environ, BATCH)
            served += BATCH
    finally:
        gc.callbacks.remove(timed)
        collections = sum(generation["collections"] for generation in gc.get_stats()) - before
        harness.close_all()
    return {"requests": served, "times": times, "long": long, "collections": collections}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--only", nargs="+", default=["floor", "timing", "production"])
    args = parser.parse_args(argv)
    names = harness.CONFIGURATIONS.select(parser, args.only, harness.CONFIGURATIONS.names())
    width = max(len("configuration"), *(len(name) for name in names))
    print(
        f"{'configuration':<{width}} {'start-up':<10} {'collections':>11} {'total ms':>9} "
        f"{'us/request':>10}  longer than {LONG * 1000:.1f} ms (after request, generation, ms)"
    )
    for name in names:
        for collect in (False, True):
            # A process per run: production initialises sentry-sdk, which is process-wide.
            run = harness.in_child("benchmarks.gc_pauses", "pauses", name, args.requests, collect)
            total = sum(run["times"])
            longer = ", ".join(f"({r}, {g}, {s * 1000:.1f})" for r, g, s in run["long"])
            print(
                f"{name:<{width}} {'collected' if collect else 'left':<10} {len(run['times']):>11} "
                f"{total * 1000:>9.1f} {total / run['requests'] * 1e6:>10.3f}  {longer or '-'}"
            )
    print(
        f"{args.requests} requests per run, {sys.version.split()[0]}; each collection "
        "timed between its gc.callbacks start and stop"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
