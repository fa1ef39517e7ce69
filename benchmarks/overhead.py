"""Per-request cost of Flask-Observe configurations against bare Flask, in one run.

Each configuration is a small app with one trivial view, called through its WSGI
callable in-process (no HTTP). Rounds are interleaved so that machine noise hits every
configuration alike; the figure per configuration is the median per-request time over
the rounds, printed with its ratio to bare Flask.

    python -m benchmarks.overhead                 # all configurations
    python -m benchmarks.overhead --only bare timing
    python -m benchmarks.overhead --rounds 30 --requests 2000
    python -m benchmarks.overhead --instructions  # valgrind: instructions per request

Configurations that need an optional package that is missing are reported and skipped.
The ``floor`` configuration is the least a timing middleware can do (a ``perf_counter``
pair, both headers, one locked list append); each row also shows its gap to it.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import typing as t

from benchmarks import harness

if t.TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

#: The configurations compared, in table order: all share this process.
NAMES = (
    "bare", "floor", "timing", "runtime", "metrics", "metrics-tags", "prometheus", "errors",
    "sentry_flask",
)  # fmt: skip


def measure(apps: dict[str, WSGIApplication], rounds: int, requests: int) -> dict[str, float]:
    """Median seconds per request of each app over interleaved rounds, the collector
    off (a success leaves no garbage worth collecting)."""
    environ = harness.CONFIGURATIONS.environ()
    samples: dict[str, list[float]] = {name: [] for name in apps}
    for app in apps.values():  # warm up
        harness.run_once(app, environ, max(requests // 10, 10))
    gc.collect()
    gc.disable()
    try:
        for name in harness.interleaved(list(apps), rounds):
            samples[name].append(harness.run_once(apps[name], environ, requests))
    finally:
        gc.enable()
    return {name: statistics.median(values) for name, values in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--only", nargs="*", help="configuration names (bare is always in)")
    parser.add_argument(
        "--check", action="store_true", help="no timing: check each app serves the same view"
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per request under valgrind instead of timing (deterministic)",
    )
    parser.add_argument(
        "--layouts", type=int, default=3, help="with --instructions: memory layouts per figure"
    )
    args = parser.parse_args(argv)
    registry = harness.CONFIGURATIONS
    names = registry.select(parser, args.only, NAMES)
    if args.instructions:
        counts = harness.instructions(registry, names, 300, 1800, args.layouts)
        return harness.print_instructions(registry, counts, 300, 1800)
    try:
        apps = registry.build_all(names)
        if args.check:
            return registry.check(apps, 200, b"Hello, World!")
        results = measure(apps, args.rounds, args.requests)
    finally:
        harness.close_all()
    base = results["bare"]
    print(f"{'configuration':<14} {'per request':>12} {'vs bare':>8}  description")
    for name, seconds in results.items():
        print(
            f"{name:<14} {seconds * 1e6:>9.1f} µs {seconds / base:>7.3f}x  "
            f"{registry.describe(name)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
