"""Per-request cost of the Memory panel's tiers against Flask-DebugToolbar, in one run.

Every configuration serves the same small HTML page through the toolbar (its 11
default panels), called in-process through the WSGI callable. Figures are medians
over interleaved rounds, on a small heap and again after adding 1M extra objects:

- ``toolbar``: Flask-DebugToolbar with its default panels (the baseline, 1.000x);
- ``tier1``: plus Flask-Observe's Memory and Observe panels, heap diff off; the
  panel's own measured cost of tier 1 is shown too (target: at most 1 ms);
- ``tier2``: the Memory panel switched on (heap diff, ``OBSERVE_MEMORY_BUDGET``): its
  time beyond the baseline against the budget (target: never over by more than 20%);
- ``tier3 heap`` / ``tier3 sizes``: the on-demand pages, one call each.

    python -m benchmarks.memory_panel
    python -m benchmarks.memory_panel --rounds 9 --requests 40 --extra 1000000
"""

from __future__ import annotations

import argparse
import gc
import re
import statistics
import time

from flask import Flask
from werkzeug.test import Client

from benchmarks import harness

PAGE = "<!doctype html><html><head><title>b</title></head><body><p>bench</p></body></html>"
SECRET = "benchmark-only"
COST = re.compile(r'id="memory-tier1-cost">.*?([\d.]+) ms', re.S)
TIER2 = re.compile(r"cost ([\d.]+) ms \(budget|spent after ([\d.]+) ms")


def page_app(panels: bool, budget: float) -> Flask:
    """A debug app with one HTML page, the toolbar, and our panels when *panels*."""
    from flask_debugtoolbar import DebugToolbarExtension

    from flask_observe import Observe

    app = Flask("memory_bench")
    app.config.update(
        DEBUG=True,
        SECRET_KEY=SECRET,
        OBSERVE_TOOLBAR_PANELS=panels,
        OBSERVE_MEMORY_BUDGET=budget,
        OBSERVE_RUNTIME_HEADER=False,
    )

    @app.get("/page")
    def page() -> str:
        return PAGE

    Observe(app)
    DebugToolbarExtension(app)
    return app


def timed_get(client: Client, url: str) -> tuple[float, str]:
    """Seconds for one request (body read and closed) and the body."""
    start = time.perf_counter()
    response = client.get(url)
    body = response.get_data(as_text=True)
    response.close()
    return time.perf_counter() - start, body


def per_request(
    clients: dict[str, Client], rounds: int, requests: int
) -> tuple[dict[str, float], list[float]]:
    """Median seconds per request for each client, rounds interleaved (see
    :func:`benchmarks.harness.interleaved`); and the
    tier-1 costs the Memory panel reported."""
    samples: dict[str, list[float]] = {name: [] for name in clients}
    costs: list[float] = []
    for client in clients.values():  # warm-up: first-request set-up, template caches
        timed_get(client, "/page")
    for name in harness.interleaved(list(clients), rounds):
        gc.collect()
        start = time.perf_counter()
        for _ in range(requests):
            _, body = timed_get(clients[name], "/page")
            match = COST.search(body)
            if match:
                costs.append(float(match.group(1)) / 1000.0)
        samples[name].append((time.perf_counter() - start) / requests)
    return {name: statistics.median(values) for name, values in samples.items()}, costs


def run_heap(label: str, args: argparse.Namespace, rows: list[tuple[str, ...]]) -> bool:
    """Measure every tier on the current heap; append table rows; return targets met."""
    toolbar = Client(page_app(False, args.budget))
    tier1 = Client(page_app(True, args.budget))
    medians, costs = per_request({"toolbar": toolbar, "tier1": tier1}, args.rounds, args.requests)
    base = medians["toolbar"]
    tier1_cost = statistics.median(costs) if costs else float("nan")
    ok = tier1_cost <= 0.001
    rows.append((label, "toolbar", f"{base * 1000:9.3f}", "1.000x", "11 default panels"))
    rows.append(
        (label, "tier1", f"{medians['tier1'] * 1000:9.3f}", f"{medians['tier1'] / base:.3f}x",
         f"panel's own cost {tier1_cost * 1000:.3f} ms (target <= 1 ms): "
         f"{'ok' if tier1_cost <= 0.001 else 'OVER'}")
    )  # fmt: skip

    tier2 = Client(page_app(True, args.budget))
    tier2.set_cookie("fldt_active", "flDebugMemoryPanel")
    timed_get(tier2, "/page")
    times, spent, complete = [], [], []
    for _ in range(args.tier2_requests):
        gc.collect()
        seconds, body = timed_get(tier2, "/page")
        times.append(seconds)
        match = TIER2.search(body)
        spent.append(float(match.group(1) or match.group(2)) / 1000.0 if match else float("nan"))
        complete.append("memory-cut-short" not in body)
    over = max(times) - base  # the diff's share of the slowest request
    within = over <= args.budget * 1.2
    ok = ok and within
    state = "complete" if all(complete) else ("cut short" if not any(complete) else "mixed")
    rows.append(
        (label, "tier2", f"{statistics.median(times) * 1000:9.3f}",
         f"{statistics.median(times) / base:.3f}x",
         f"diff {max(spent) * 1000:.0f} ms, {state}; worst request {over / args.budget:.2f}x "
         f"the {args.budget:g} s budget (target <= 1.20x): {'ok' if within else 'OVER'}")
    )  # fmt: skip

    for name, url in (
        ("tier3 heap", "/_observe/memory/heap"),
        ("tier3 sizes", "/_observe/memory/sizes"),
    ):
        seconds, body = timed_get(tier1, url)
        found = re.search(r'id="heap-cost">(\d+) objects', body)
        note = f"{found.group(1)} objects (Pympler muppy + summary)" if found else "asizeof"
        rows.append((label, name, f"{seconds * 1000:9.3f}", f"{seconds / base:.3f}x", note))
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else "")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--tier2-requests", type=int, default=3)
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--extra", type=int, default=1_000_000, help="extra objects, big heap")
    args = parser.parse_args(argv)

    rows: list[tuple[str, ...]] = []
    ok = run_heap("small", args, rows)
    ballast = [[number] for number in range(args.extra)]
    ok = run_heap(f"+{args.extra:,}", args, rows) and ok
    del ballast

    print(f"{'heap':<12} {'config':<12} {'ms/request':>10}  {'ratio':>8}  notes")
    for heap, config, ms, ratio, note in rows:
        print(f"{heap:<12} {config:<12} {ms:>10}  {ratio:>8}  {note}")
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
