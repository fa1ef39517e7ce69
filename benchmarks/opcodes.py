"""Python opcodes executed per request, per function: exact and independent of layout.

Instruction counts (``--mode instructions``) move by a few thousand with where objects
land in memory: the interpreter's type attribute cache is indexed by addresses, so an
unrelated change can turn hits into misses. The number of Python opcodes a request runs
does not move at all, which makes it the figure to compare two versions of the request
path with before counting instructions. It does not weigh the opcodes (nor the C work
they start), so it complements the instruction counts rather than replacing them.

    python -m benchmarks.opcodes                       # timing, production
    python -m benchmarks.opcodes bare production --top 20

Each configuration of :data:`benchmarks.harness.CONFIGURATIONS` runs in its own
interpreter (sentry-sdk instruments the whole process); the child warms the app up, then
traces a few requests with ``sys.settrace`` and opcode events. The table prints each
configuration's opcodes per request against bare Flask, then the functions whose counts
differ from bare Flask's.
"""

from __future__ import annotations

import argparse
import collections
import sys
import typing as t
from pathlib import Path

from benchmarks import harness

if t.TYPE_CHECKING:
    from types import FrameType

#: Requests served before tracing (the first ones import, specialise, build caches).
WARM_UP = 50


def count(name: str, requests: int) -> dict[str, float]:
    """Opcodes per request of configuration *name*, per ``file:function``, in this
    process."""
    app = harness.build(name)
    environ = harness.CONFIGURATIONS.environ()
    harness.run_once(app, environ, WARM_UP)
    counts: collections.Counter[str] = collections.Counter()

    def trace(frame: FrameType, event: str, arg: object) -> t.Any:
        frame.f_trace_opcodes = True
        if event == "opcode":
            code = frame.f_code
            qualname = getattr(code, "co_qualname", code.co_name)  # 3.11+
            counts[f"{Path(code.co_filename).name}:{qualname}"] += 1
        return trace

    sys.settrace(trace)
    try:
        harness.run_once(app, environ, requests)
    finally:
        sys.settrace(None)
        harness.close_all()
    return {where: value / requests for where, value in counts.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=["timing", "production"])
    parser.add_argument("--requests", type=int, default=10, help="requests traced")
    parser.add_argument("--top", type=int, default=10, help="functions listed per row")
    args = parser.parse_args(argv)
    registry = harness.CONFIGURATIONS
    names = registry.select(parser, args.names, registry.names())
    per_function: dict[str, dict[str, float]] = {}
    for name in names:
        per_function[name] = harness.in_child("benchmarks.opcodes", "count", name, args.requests)
    bare = per_function["bare"]
    base = sum(bare.values())
    print(f"{'configuration':<20} {'opcodes':>9} {'vs bare':>8}  description")
    for name in names:
        total = sum(per_function[name].values())
        print(f"{name:<20} {total:>9.1f} {total - base:>+8.1f}  {registry.describe(name)}")
    for name in names[1:]:
        functions = per_function[name]
        changed = {
            where: functions.get(where, 0.0) - bare.get(where, 0.0)
            for where in set(functions) | set(bare)
        }
        ranked = sorted(
            (item for item in changed.items() if item[1]), key=lambda i: (-abs(i[1]), i[0])
        )
        print(f"\n{name}: functions whose opcodes per request differ from bare Flask")
        for where, delta in ranked[: args.top]:
            print(f"  {delta:>+8.1f}  {where}  ({functions.get(where, 0.0):.1f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
