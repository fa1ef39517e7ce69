"""What profiling a request costs, side by side in one run: Flask-Observe's sampling
Profiler panel against Flask-DebugToolbar's cProfile panel and pyinstrument.

One debug app with Flask-DebugToolbar lists every profiler as a toolbar panel, each
off until its cookie switches it on, exactly as a user switches them from the
toolbar. Two JSON views (the toolbar renders nothing for JSON, so the figures are
the profiling alone) are called in process through the WSGI callable:

- ``calls``: recursive ``fib(22)``, about 57k Python calls (where cProfile and
  pyinstrument's per-call hook pay most);
- ``loop``: a loop of arithmetic in one frame, about as long.

Configurations: ``unlisted`` (our panel not in ``DEBUG_TB_PANELS``), ``off`` (listed,
not switched on: the baseline, 1.000x), ``sampler`` (ours, default 1 ms interval),
``cprofile`` (the toolbar's Profiler panel) and ``pyinstrument`` (1 ms interval).
Rounds are interleaved; each figure is the median over rounds of the mean request
time: wall clock, and the CPU time of the whole process (every thread, the sampler's
included). On a machine shared with other work the CPU time is the steadier figure:
a thread that waits briefly for the GIL (as the sampled one does when a sample is
taken) is favoured by the OS scheduler when it wakes, which can make its wall time
*shorter* than unprofiled. Target for the sampler: at most 1.3x on both views.

    python -m benchmarks.profiler
    python -m benchmarks.profiler --rounds 15 --requests 30
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
import typing as t

from flask import Flask
from flask_debugtoolbar import DebugToolbarExtension
from flask_debugtoolbar.panels import DebugPanel
from werkzeug.test import Client

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from werkzeug import Request

#: pyinstrument's sampling interval (its default is 1 ms).
PYINSTRUMENT_INTERVAL = 0.001
SAMPLER = "flask_observe.panels.profiler.ProfilerPanel"
CPROFILE = "flask_debugtoolbar.panels.profiler.ProfilerDebugPanel"
PYINSTRUMENT = "benchmarks.profiler.PyinstrumentPanel"
#: Configuration -> (panels listed, the ``fldt_active`` cookie switching one on).
CONFIGURATIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "unlisted": ((CPROFILE, PYINSTRUMENT), ""),
    "off": ((CPROFILE, SAMPLER, PYINSTRUMENT), ""),
    "sampler": ((CPROFILE, SAMPLER, PYINSTRUMENT), "flDebugSamplingProfilerPanel"),
    "cprofile": ((CPROFILE, SAMPLER, PYINSTRUMENT), "flDebugProfilerPanel"),
    "pyinstrument": ((CPROFILE, SAMPLER, PYINSTRUMENT), "flDebugPyinstrumentPanel"),
}
VIEWS = ("calls", "loop")
TARGET = 1.3


class PyinstrumentPanel(DebugPanel):
    """pyinstrument around the view, switched on from the toolbar like the others."""

    name = "Pyinstrument"
    user_activate = True

    def nav_title(self) -> str:
        return self.name

    def title(self) -> str:
        return self.name

    def url(self) -> str:
        return ""

    def content(self) -> str:
        return ""

    def process_view(
        self, request: Request, view_func: Callable[..., t.Any], view_kwargs: dict[str, t.Any]
    ) -> Callable[..., t.Any] | None:
        if not self.is_active:
            return None
        from pyinstrument import Profiler

        def profiled(**kwargs: t.Any) -> t.Any:
            profiler = Profiler(interval=PYINSTRUMENT_INTERVAL, async_mode="disabled")
            profiler.start()
            try:
                return view_func(**kwargs)
            finally:
                profiler.stop()

        return profiled


def fib(number: int) -> int:
    return number if number < 2 else fib(number - 1) + fib(number - 2)


def loop(size: int) -> int:
    total = 0
    for value in range(size):
        total = (total * 31 + value) % 1_000_003
    return total


def make_app(panels: tuple[str, ...], loop_size: int) -> Flask:
    """A debug app with the toolbar, *panels* listed, and the two JSON views."""
    app = Flask("profiler_bench")
    app.config.update(
        DEBUG=True,
        SECRET_KEY="benchmark-only",
        DEBUG_TB_PANELS=list(panels),
        DEBUG_TB_INTERCEPT_REDIRECTS=False,
    )

    @app.get("/calls")
    def calls() -> dict[str, int]:
        return {"value": fib(22)}

    @app.get("/loop")
    def loop_view() -> dict[str, int]:
        return {"value": loop(loop_size)}

    DebugToolbarExtension(app)
    return app


def client_for(name: str, loop_size: int) -> Client:
    panels, cookie = CONFIGURATIONS[name]
    client = Client(make_app(panels, loop_size))
    if cookie:
        client.set_cookie("fldt_active", cookie)
    return client


def measure(
    clients: dict[str, Client], view: str, rounds: int, requests: int
) -> dict[str, tuple[float, float]]:
    """Median over rounds of (mean request seconds, mean process CPU seconds)."""
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
    for client in clients.values():  # warm-up
        for _ in range(3):
            client.get(f"/{view}").close()
    for _ in range(rounds):
        for name, client in clients.items():
            gc.collect()
            start, cpu = time.perf_counter(), time.process_time()
            for _ in range(requests):
                response = client.get(f"/{view}")
                response.get_data()
                response.close()
            elapsed = (time.perf_counter() - start) / requests
            samples[name].append((elapsed, (time.process_time() - cpu) / requests))
    return {
        name: (
            statistics.median(request for request, _ in values),
            statistics.median(cpu for _, cpu in values),
        )
        for name, values in samples.items()
    }


def loop_size_matching_fib() -> int:
    """A loop size whose time is about that of ``fib(22)`` on this machine."""
    start = time.perf_counter()
    for _ in range(5):
        fib(22)
    fib_seconds = (time.perf_counter() - start) / 5
    start = time.perf_counter()
    loop(100_000)
    per_item = (time.perf_counter() - start) / 100_000
    return max(10_000, int(fib_seconds / per_item))


def main(argv: list[str] | None = None) -> int:
    """Print the table; return 0 when the sampler met its target on both views."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args(argv)

    loop_size = loop_size_matching_fib()
    clients = {name: client_for(name, loop_size) for name in CONFIGURATIONS}
    results = {view: measure(clients, view, args.rounds, args.requests) for view in VIEWS}

    print(
        f"{'configuration':<14}"
        + "".join(f"{view + ' wall':>22}{view + ' cpu':>20}" for view in VIEWS)
    )
    ok = True
    for name in CONFIGURATIONS:
        cells = []
        for view in VIEWS:
            wall, cpu = results[view][name]
            base_wall, base_cpu = results[view]["off"]
            cells.append(f"{wall * 1000:9.3f} ms {wall / base_wall:6.2f}x")
            cells.append(f"{cpu * 1000:7.3f} ms {cpu / base_cpu:6.2f}x")
            if name == "sampler":
                ok = ok and max(wall / base_wall, cpu / base_cpu) <= TARGET
        print(f"{name:<14}" + "".join(f"{cell:>22}" if i % 2 == 0 else f"{cell:>20}"
                                     for i, cell in enumerate(cells)))  # fmt: skip
    print(
        f"fib(22) and loop({loop_size:,}); ratios against 'off'; sampler target <= {TARGET}x "
        f"per request, wall and CPU: {'ok' if ok else 'OVER'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
