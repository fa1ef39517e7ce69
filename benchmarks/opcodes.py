"""Python opcodes executed per request, per function: exact and independent of layout.

Instruction counts (``--mode instructions``) move by a few thousand with where objects
land in memory: the interpreter's type attribute cache is indexed by addresses, so an
unrelated change can turn hits into misses. The number of Python opcodes a request runs
does not move at all, which makes it the figure to compare two versions of the request
path with before counting instructions. It does not weigh the opcodes (nor the C work
they start), so it complements the instruction counts rather than replacing them.

    python benchmarks/opcodes.py                       # observe_timing, observe_production
    python benchmarks/opcodes.py bare observe_production --top 20

Each configuration of :mod:`benchmarks.apps` runs in its own interpreter (sentry-sdk
instruments the whole process); the child warms the app up, then traces a few requests
with ``sys.settrace`` and opcode events. The table prints each configuration's opcodes
per request against bare Flask, then the functions whose counts differ from bare
Flask's.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
import typing as t
from pathlib import Path

if t.TYPE_CHECKING:
    from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Requests served before tracing (the first ones import, specialise, build caches).
WARM_UP = 50


def count(name: str, requests: int) -> dict[str, float]:
    """Opcodes per request of configuration *name*, per ``file:function``, in this
    process."""
    from werkzeug.test import EnvironBuilder

    from benchmarks import apps
    from benchmarks.overhead import run_once

    app = apps.build(name)
    environ = EnvironBuilder(path="/hello").get_environ()
    run_once(app, environ, WARM_UP)
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
        run_once(app, environ, requests)
    finally:
        sys.settrace(None)
    return {where: value / requests for where, value in counts.items()}


def _child(name: str, requests: int) -> int:
    json.dump(count(name, requests), sys.stdout)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", default=["observe_timing", "observe_production"])
    parser.add_argument("--requests", type=int, default=10, help="requests traced")
    parser.add_argument("--top", type=int, default=10, help="functions listed per row")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child, args.requests)

    from benchmarks import apps

    unknown = [name for name in args.names if name not in apps.names()]
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; choose from {apps.names()}")
    names = ["bare", *(name for name in args.names if name != "bare")]
    per_function: dict[str, dict[str, float]] = {}
    for name in names:
        command = [sys.executable, __file__, "--child", name, "--requests", str(args.requests)]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        per_function[name] = json.loads(output)
    bare = per_function["bare"]
    base = sum(bare.values())
    print(f"{'configuration':<20} {'opcodes':>9} {'vs bare':>8}  description")
    for name in names:
        total = sum(per_function[name].values())
        print(f"{name:<20} {total:>9.1f} {total - base:>+8.1f}  {apps.describe(name)}")
    for name in names[1:]:
        functions = per_function[name]
        changed = {
            where: functions.get(where, 0.0) - bare.get(where, 0.0)
            for where in set(functions) | set(bare)
        }
        # Ties by name: the set above has no stable order from one run to the next.
        ranked = sorted((i for i in changed.items() if i[1]), key=lambda i: (-abs(i[1]), i[0]))
        print(f"\n{name}: functions whose opcodes per request differ from bare Flask")
        for where, delta in ranked[: args.top]:
            print(f"  {delta:>+8.1f}  {where}  ({functions.get(where, 0.0):.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
