"""The sampling engine on its own: threads sampled apart, the thread's lifetime, and
other profilers, tracers and ``sys.monitoring`` tools left alone."""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys
import threading
import time
import typing as t

from asgiref.sync import async_to_sync

from flask_observe.panels.profiler.sampler import AWAITING
from flask_observe.panels.profiler.sampler import Collector
from flask_observe.panels.profiler.sampler import Profile
from flask_observe.panels.profiler.sampler import Sampler
from flask_observe.panels.profiler.sampler import THREAD_NAME

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType


def spin_alpha(seconds: float) -> int:
    """Pure Python work holding the GIL for *seconds*."""
    end = time.perf_counter() + seconds
    count = 0
    while time.perf_counter() < end:
        count += 1
    return count


def spin_beta(seconds: float) -> int:
    """The same work under another name."""
    end = time.perf_counter() + seconds
    count = 0
    while time.perf_counter() < end:
        count += 1
    return count


def names(profile: Profile) -> set[str]:
    return {frame[0] for stack, _ in profile.stacks for frame in stack}


def profiled(sampler: Sampler, work: Callable[[], object]) -> Profile:
    """Run *work* in this thread with a collector registered; its profile."""
    collector = Collector(threading.get_ident(), sys._getframe())
    sampler.register(collector)
    try:
        work()
    finally:
        sampler.unregister(collector)
    return collector.finish()


def sampler_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == THREAD_NAME]


def wait_stopped(sampler: Sampler) -> bool:
    deadline = time.monotonic() + 2.0
    while sampler.running and time.monotonic() < deadline:
        time.sleep(0.005)
    return not sampler.running


def test_a_thread_waiting_in_unregister_is_not_sampled() -> None:
    """A tick that finds the request's thread inside unregister(), waiting for the
    tick's lock, adds nothing to its profile: that wait is the profiler's, and the
    view's frames are gone by then (seen once in CI as a stack rooted in
    ``Sampler.unregister``)."""
    sampler = Sampler()
    registered, leave = threading.Event(), threading.Event()
    collectors: list[Collector] = []

    def request() -> None:
        collector = Collector(threading.get_ident(), sys._getframe())
        collectors.append(collector)
        sampler.register(collector)
        registered.set()
        leave.wait(5)
        sampler.unregister(collector)

    thread = threading.Thread(target=request)
    thread.start()
    assert registered.wait(5)
    (collector,) = collectors
    with sampler._lock:  # a tick under way: unregister() has to wait for it
        leave.set()
        ident = thread.ident
        assert ident is not None
        deadline = time.monotonic() + 5
        while sys._current_frames()[ident].f_code.co_name != "unregister":
            assert time.monotonic() < deadline, "the thread never reached unregister()"
            time.sleep(0.001)
        samples, stacks = collector.samples, dict(collector.stacks)
        collector.sample(sys._current_frames(), time.perf_counter())
        assert (collector.samples, collector.stacks) == (samples, stacks)
    thread.join(5)


def test_two_threads_each_get_only_their_own_frames() -> None:
    sampler = Sampler()
    barrier = threading.Barrier(2, timeout=10)
    results: dict[str, Profile] = {}

    def run(name: str, work: Callable[[float], int]) -> None:
        collector = Collector(threading.get_ident(), sys._getframe())

        def body() -> None:
            barrier.wait()  # both registered before either works
            # Work until sampled, not for a fixed time: a loaded machine delays samples.
            deadline = time.monotonic() + 10
            while collector.samples < 12 and time.monotonic() < deadline:
                work(0.01)

        sampler.register(collector)
        try:
            body()
        finally:
            sampler.unregister(collector)
        results[name] = collector.finish()

    threads = [
        threading.Thread(target=run, args=("alpha", spin_alpha)),
        threading.Thread(target=run, args=("beta", spin_beta)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    alpha, beta = results["alpha"], results["beta"]
    assert "spin_alpha" in names(alpha) and "spin_beta" not in names(alpha)
    assert "spin_beta" in names(beta) and "spin_alpha" not in names(beta)
    for profile in (alpha, beta):
        assert profile.samples >= 10, profile.samples
        # Stacks start below the registering frame: the body is the root of each.
        roots = {stack[0][0] for stack, _ in profile.stacks}
        assert roots == {
            "test_two_threads_each_get_only_their_own_frames.<locals>.run.<locals>.body"
        }
        # The samples' weights cover most of the request, never more than all of it
        # (relative: a loaded machine delays samples, not the request's own clock).
        assert 0.5 * profile.duration <= profile.sampled <= profile.duration


def test_weights_add_up_to_the_time_covered() -> None:
    profile = profiled(Sampler(), lambda: spin_alpha(0.1))
    assert profile.sampled == sum(seconds for _, seconds in profile.stacks)
    spin = sum(seconds for stack, seconds in profile.stacks if stack[-1][0] == "spin_alpha")
    assert spin >= 0.8 * profile.sampled
    leaf = next(stack[-1] for stack, _ in profile.stacks if stack[-1][0] == "spin_alpha")
    assert leaf == ("spin_alpha", __file__, spin_alpha.__code__.co_firstlineno)


def test_no_thread_until_a_request_is_profiled_and_none_after() -> None:
    deadline = time.monotonic() + 2.0
    while sampler_threads() and time.monotonic() < deadline:  # earlier tests' samplers
        time.sleep(0.005)
    sampler = Sampler()
    idle = sampler.running
    before = sampler_threads()
    assert (idle, before) == (False, [])

    collector = Collector(threading.get_ident(), sys._getframe())
    sampler.register(collector)
    assert sampler.running
    assert len(sampler_threads()) == len(before) + 1
    spin_alpha(0.02)
    sampler.unregister(collector)

    assert wait_stopped(sampler)
    assert sampler_threads() == before
    assert collector.finish().samples >= 1


def test_the_thread_lives_while_any_request_is_profiled() -> None:
    sampler = Sampler()
    first = Collector(threading.get_ident(), sys._getframe())
    second = Collector(threading.get_ident() + 1, None)  # another thread id
    sampler.register(first)
    sampler.register(second)
    sampler.unregister(first)
    time.sleep(0.05)
    assert sampler.running
    sampler.unregister(second)
    assert wait_stopped(sampler)


def test_switch_interval_lowered_while_sampling_and_restored() -> None:
    previous = sys.getswitchinterval()
    sampler = Sampler(0.001)
    collector = Collector(threading.get_ident(), sys._getframe())
    sampler.register(collector)
    during = sys.getswitchinterval()
    sampler.unregister(collector)
    assert wait_stopped(sampler)
    assert during <= 0.001 < previous
    assert sys.getswitchinterval() == previous


def monitoring_tools() -> dict[int, str | None]:
    """``sys.monitoring``'s tool ids in use (an empty dict before Python 3.12)."""
    monitoring = getattr(sys, "monitoring", None)
    if monitoring is None:
        return {}
    return {tool: monitoring.get_tool(tool) for tool in range(6)}


def test_other_profilers_tracers_and_monitoring_tools_untouched() -> None:
    calls: list[str] = []

    def profile_hook(frame: FrameType, event: str, arg: object) -> None:
        calls.append(event)

    def trace_hook(frame: FrameType, event: str, arg: object) -> None:
        return None

    monitoring = getattr(sys, "monitoring", None)
    if monitoring is not None:  # Python 3.12+: hold the profiler slot ourselves
        monitoring.use_tool_id(monitoring.PROFILER_ID, "test-holder")
    tools_before = monitoring_tools()
    old_profile, old_trace = sys.getprofile(), sys.gettrace()
    sys.setprofile(profile_hook)
    sys.settrace(trace_hook)
    seen: list[object] = []
    try:

        def work() -> None:
            spin_alpha(0.05)
            seen.extend((sys.getprofile(), sys.gettrace(), monitoring_tools()))

        profile = profiled(Sampler(), work)
        after = (sys.getprofile(), sys.gettrace(), monitoring_tools())
    finally:
        sys.setprofile(old_profile)
        sys.settrace(old_trace)
        if monitoring is not None:
            monitoring.free_tool_id(monitoring.PROFILER_ID)
    assert seen == [profile_hook, trace_hook, tools_before]
    assert after == (profile_hook, trace_hook, tools_before)
    assert calls, "the profile hook kept being called while sampling"
    assert "spin_alpha" in names(profile)


def test_cprofile_runs_in_the_same_thread_at_the_same_time() -> None:
    profiler = cProfile.Profile()

    def work() -> None:
        profiler.runcall(spin_beta, 0.05)

    profile = profiled(Sampler(), work)
    stats = pstats.Stats(profiler)
    assert any(key[2] == "spin_beta" for key in stats.stats)  # type: ignore[attr-defined]
    assert "spin_beta" in names(profile)


async def awaited_view() -> str:
    await asyncio.sleep(0.06)
    spin_alpha(0.03)
    return "done"


def test_a_coroutine_is_followed_across_its_awaits() -> None:
    sampler = Sampler()
    collector = Collector(threading.get_ident(), sys._getframe())
    loop_threads: list[int] = []

    async def follow() -> str:
        coroutine = awaited_view()
        loop_threads.append(threading.get_ident())
        collector.attach_coroutine(coroutine, threading.get_ident())
        try:
            return await coroutine
        finally:
            collector.detach_coroutine()

    sampler.register(collector)
    try:
        start = time.perf_counter()
        assert async_to_sync(follow)() == "done"
        elapsed = time.perf_counter() - start
    finally:
        sampler.unregister(collector)
    profile = collector.finish()

    assert loop_threads != [threading.get_ident()]  # asgiref ran it in another thread
    by_path: dict[tuple[str, ...], float] = {}
    for stack, seconds in profile.stacks:
        path = tuple(frame[0] for frame in stack)
        by_path[path] = by_path.get(path, 0.0) + seconds
    waiting = sum(
        s for path, s in by_path.items() if path[:3] == ("awaited_view", "sleep", AWAITING)
    )
    working = sum(s for path, s in by_path.items() if path[:2] == ("awaited_view", "spin_alpha"))
    assert 0.045 <= waiting and 0.02 <= working, by_path
    # no time counted twice (the last sample may run one 1 ms interval past the end)
    assert waiting + working <= elapsed + 0.002, (elapsed, by_path)


def test_registering_a_thread_twice_is_refused() -> None:
    sampler = Sampler()
    collector = Collector(threading.get_ident(), sys._getframe())
    sampler.register(collector)
    try:
        again = Collector(threading.get_ident(), sys._getframe())
        try:
            sampler.register(again)
        except RuntimeError as exc:
            assert "already being profiled" in str(exc)
        else:
            raise AssertionError("a second collector for the same thread was accepted")
    finally:
        sampler.unregister(collector)
    assert wait_stopped(sampler)


class SlowCollector(Collector):
    """A collector whose samples take 50 ms, to catch a tick in the act."""

    def __init__(self, thread_id: int, root: FrameType | None) -> None:
        super().__init__(thread_id, root)
        self.ticking = threading.Event()
        self.in_tick = False

    def sample(self, frames: dict[int, FrameType], now: float) -> None:
        self.in_tick = True
        self.ticking.set()
        time.sleep(0.05)
        super().sample(frames, now)
        self.in_tick = False


def test_no_tick_touches_a_collector_once_unregister_returns() -> None:
    """So the request's thread may read it (finish()) while the sampler goes on."""
    sampler = Sampler()
    collector = SlowCollector(threading.get_ident(), sys._getframe())
    sampler.register(collector)
    assert collector.ticking.wait(timeout=5)
    sampler.unregister(collector)  # waits for the tick under way
    in_tick = collector.in_tick
    samples = collector.samples
    time.sleep(0.06)
    assert (in_tick, collector.samples) == (False, samples)
    assert wait_stopped(sampler)
