"""Process figures per worker (flask_observe/process_metrics.py): their names in every
dialect, each figure against what the process really did, the worker slots, the
garbage-collector callback, forks and the setting."""

from __future__ import annotations

import gc
import os
import re
import subprocess
import sys
import threading
import time
import typing as t
from pathlib import Path

import pytest
from flask import request

from flask_observe import ConfigError
from flask_observe import metrics
from flask_observe import process_metrics
from flask_observe import worker_slots
from flask_observe.process_metrics import ProcessFigures
from flask_observe.state import get_state
from tests.support.metrics import udp_config

if t.TYPE_CHECKING:
    from flask import Flask

    from tests.support.apps import AppFactory
    from tests.support.metrics import UdpReceiver


FIGURES = [
    ("cpu_user_seconds", "c"),
    ("cpu_system_seconds", "c"),
    ("gc_seconds", "c"),
    ("gc_collections_gen0", "c"),
    ("gc_collections_gen1", "c"),
    ("gc_collections_gen2", "c"),
    ("rss_bytes", "g"),
    ("open_fds", "g"),
    ("threads", "g"),
    ("requests_in_flight", "g"),
]


def figures_of(app: Flask) -> ProcessFigures:
    figures = get_state(app).part(ProcessFigures)
    assert figures is not None
    return figures


def read(figures: ProcessFigures) -> dict[str, float]:
    return {name: value for name, value, _ in figures.figures()}


@pytest.mark.parametrize(
    ("tags", "pattern"),
    [
        pytest.param("none", r"shop\.web1\.process\.w(\d+)\.{figure}:[0-9.]+\|{kind}", id="none"),
        pytest.param(
            "graphite",
            r"shop\.web1\.process\.{figure};worker=w(\d+):[0-9.]+\|{kind}",
            id="graphite",
        ),
        pytest.param(
            "influxdb",
            r"shop\.web1\.process\.{figure},worker=w(\d+):[0-9.]+\|{kind}",
            id="influxdb",
        ),
        pytest.param(
            "dogstatsd",
            r"shop\.web1\.process\.{figure}:[0-9.]+\|{kind}\|#worker:w(\d+)",
            id="dogstatsd",
        ),
    ],
)
def test_every_figure_is_sent_at_a_flush_in_each_dialect(
    tags: str, pattern: str, make_app: AppFactory, udp: UdpReceiver
) -> None:
    app = make_app(
        **udp_config(
            udp,
            OBSERVE_PROCESS_METRICS=True,
            OBSERVE_STATSD_PREFIX="shop.web1",
            OBSERVE_STATSD_TAGS=tags,
        )
    )
    client = metrics.client(app)
    assert client is not None
    client.flush()
    lines = udp.wait_for(len(FIGURES))
    slot = worker_slots.worker_slot()
    assert slot is not None
    for figure, kind in FIGURES:
        regex = re.compile(pattern.format(figure=figure, kind=kind))
        found = [match for line in lines if (match := regex.fullmatch(line))]
        assert len(found) == 1, (figure, lines)
        assert found[0].group(1) == str(slot)


def test_no_process_lines_without_the_setting(make_app: AppFactory, udp: UdpReceiver) -> None:
    app = make_app(**udp_config(udp, OBSERVE_PROCESS_METRICS=False))
    with app.app_context():
        metrics.incr("only")
    client = metrics.client(app)
    assert client is not None
    client.flush()
    assert udp.wait_for(2, timeout=0.5) == ["only:1|c"]
    assert get_state(app).part(ProcessFigures) is None


def test_open_files_and_threads_are_counted(make_app: AppFactory, udp: UdpReceiver) -> None:
    figures = figures_of(make_app(**udp_config(udp, OBSERVE_PROCESS_METRICS=True)))
    before = read(figures)
    files = [open(os.devnull, "rb") for _ in range(5)]  # noqa: SIM115
    stop = threading.Event()
    threads = [threading.Thread(target=stop.wait) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        during = read(figures)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for file in files:
            file.close()
    assert during["open_fds"] - before["open_fds"] == 5
    assert during["threads"] - before["threads"] == 3
    assert read(figures)["open_fds"] == before["open_fds"]


def test_rss_is_the_resident_memory(make_app: AppFactory, udp: UdpReceiver) -> None:
    figures = figures_of(make_app(**udp_config(udp, OBSERVE_PROCESS_METRICS=True)))
    status = Path("/proc/self/status").read_text()
    resident_kib = int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]
    rss = read(figures)["rss_bytes"]
    assert 0.9 * resident_kib * 1024 <= rss <= 1.1 * resident_kib * 1024
    block = bytearray(64 * 1024 * 1024)  # written, so resident
    grown = read(figures)["rss_bytes"]
    del block
    assert grown - rss >= 60 * 1024 * 1024


def test_collections_are_counted_per_generation_since_the_last_flush(
    make_app: AppFactory, udp: UdpReceiver
) -> None:
    figures = figures_of(make_app(**udp_config(udp, OBSERVE_PROCESS_METRICS=True)))
    was_enabled = gc.isenabled()
    gc.disable()  # no automatic collection in between: the counts are exact
    try:
        read(figures)
        gc.collect()
        gc.collect()
        gc.collect(0)
        after = read(figures)
        again = read(figures)
    finally:
        if was_enabled:
            gc.enable()
    assert (after["gc_collections_gen0"], after["gc_collections_gen1"]) == (1, 0)
    assert after["gc_collections_gen2"] == 2
    assert after["gc_seconds"] > 0
    assert (again["gc_collections_gen0"], again["gc_collections_gen2"], again["gc_seconds"]) == (
        0,
        0,
        0,
    )


def test_gc_time_is_the_time_spent_collecting(make_app: AppFactory, udp: UdpReceiver) -> None:
    figures = figures_of(make_app(**udp_config(udp, OBSERVE_PROCESS_METRICS=True)))
    cycles: list[list[object]] = []
    for _ in range(200_000):
        pair: list[object] = []
        pair.append(pair)
        cycles.append(pair)
    del cycles, pair
    read(figures)
    started = time.perf_counter()
    gc.collect()
    elapsed = time.perf_counter() - started
    spent = read(figures)["gc_seconds"]
    assert 0.5 * elapsed <= spent <= elapsed


def test_cpu_seconds_add_up_to_the_process_cpu_time(make_app: AppFactory, udp: UdpReceiver) -> None:
    figures = figures_of(make_app(**udp_config(udp, OBSERVE_PROCESS_METRICS=True)))
    start = os.times()
    read(figures)
    total = 0.0
    while os.times().user - start.user < 0.2:
        sum(range(10_000))
        total += read(figures)["cpu_user_seconds"]
    total += read(figures)["cpu_user_seconds"]
    end = os.times()
    assert 0.2 <= total <= end.user - start.user + 1e-9


def test_requests_in_flight(make_app: AppFactory, udp: UdpReceiver) -> None:
    """Two requests held inside their views read 2, one of them done 1, both done 0; a
    thread that is not serving a request is not counted."""
    release = {"/a": threading.Event(), "/b": threading.Event()}
    entered = {"/a": threading.Event(), "/b": threading.Event()}
    app = make_app(**udp_config(udp, OBSERVE_PROCESS_METRICS=True))

    @app.get("/a")
    @app.get("/b")
    def held() -> str:
        entered[request.path].set()
        release[request.path].wait(10)
        return "done"

    figures = figures_of(app)
    idle = threading.Thread(target=threading.Event().wait, args=(0.5,))
    idle.start()
    assert read(figures)["requests_in_flight"] == 0
    replies: list[int] = []
    threads = {
        path: threading.Thread(
            target=lambda path=path: replies.append(app.test_client().get(path).status_code)
        )
        for path in ("/a", "/b")
    }
    for path, thread in threads.items():
        thread.start()
        assert entered[path].wait(10)
    assert read(figures)["requests_in_flight"] == 2
    release["/a"].set()
    threads["/a"].join()
    assert read(figures)["requests_in_flight"] == 1
    release["/b"].set()
    threads["/b"].join()
    idle.join()
    assert replies == [200, 200]
    assert read(figures)["requests_in_flight"] == 0


def test_the_gc_callback_is_installed_once_and_removed_with_the_last_app(
    make_app: AppFactory, udp: UdpReceiver
) -> None:
    config = udp_config(udp, OBSERVE_PROCESS_METRICS=True)
    first, second = make_app(**config), make_app(**config)
    assert gc.callbacks.count(process_metrics._time_gc) == 1
    for app in (first, second):
        client = metrics.client(app)
        assert client is not None
        client.close()
    assert process_metrics._time_gc not in gc.callbacks


# -- worker slots ------------------------------------------------------------------------

TAKE_SLOT = """
import sys, pathlib
from flask_observe import process_metrics
from flask_observe import worker_slots
print(worker_slots.take_slot(pathlib.Path(sys.argv[1]))[0], flush=True)
sys.stdin.read()
"""


def take_slot_in_child(directory: Path) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, "-c", TAKE_SLOT, str(directory)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    return child, child.stdout.readline().strip()


def test_slots_are_the_lowest_free_numbers_and_a_dead_worker_frees_its_own(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "private" / "parent-1"
    directory.parent.mkdir(mode=0o700)
    held = worker_slots.take_slot(directory)
    assert held is not None and held[0] == 0
    first, number = take_slot_in_child(directory)
    assert number == "1"
    second, number = take_slot_in_child(directory)
    assert number == "2"
    first.kill()  # no clean-up: the kernel releases the lock of a dead process
    first.communicate()
    third, number = take_slot_in_child(directory)
    assert number == "1"
    for child in (second, third):
        child.kill()
        child.communicate()
    os.close(held[1])
    assert sorted(path.name for path in directory.iterdir()) == ["slot-0", "slot-1", "slot-2"]


def test_the_directories_of_dead_parents_are_removed_unless_a_slot_is_held(
    tmp_path: Path,
) -> None:
    base = tmp_path / "private"
    base.mkdir(mode=0o700)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = int(gone.stdout)
    stale = base / f"parent-{dead}"
    orphaned = base / "parent-999999999"  # no such pid either, but a live process holds a slot
    for directory in (stale, orphaned):
        directory.mkdir()
        (directory / "slot-0").touch()
        (directory / "slot-1").touch()
    held = worker_slots.take_slot(orphaned)  # stands for the orphaned worker
    assert held is not None and held[0] == 0
    live = base / f"parent-{os.getppid()}"
    live.mkdir()
    (live / "slot-0").touch()
    mine = worker_slots.take_slot(base / f"parent-{os.getpid()}")
    assert mine is not None
    os.close(mine[1])
    os.close(held[1])
    assert not stale.exists()
    assert sorted(path.name for path in orphaned.iterdir()) == ["slot-0"]
    assert (live / "slot-0").exists()


def test_a_shared_slot_directory_is_refused(tmp_path: Path) -> None:
    base = tmp_path / "shared"
    base.mkdir()
    base.chmod(0o777)
    with pytest.raises(OSError, match="not a private directory"):
        worker_slots.take_slot(base / "parent-1")


def test_a_forked_child_takes_its_own_slot(make_app: AppFactory, udp: UdpReceiver) -> None:
    figures_of(make_app(**udp_config(udp, OBSERVE_PROCESS_METRICS=True)))
    assert worker_slots.worker_slot() is not None
    parent_fd = worker_slots._slot[1]  # type: ignore[index]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            inherited_closed = worker_slots._slot is None
            try:
                os.fstat(parent_fd)
                closed = False
            except OSError:
                closed = True
            directory = worker_slots.slot_directory().name
            report = f"{inherited_closed} {closed} {directory}"
            os.write(write_end, report.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        report = pipe.read()
    os.waitpid(pid, 0)
    assert report == f"True True parent-{os.getpid()}"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param({"OBSERVE_PROCESS_METRICS": "yes"}, "expected True or False", id="not-bool"),
        pytest.param(
            {"OBSERVE_PROCESS_METRICS": True}, "set OBSERVE_STATSD_HOST too", id="no-host"
        ),
    ],
)
def test_bad_settings_are_refused_naming_the_key(
    config: dict[str, object], message: str, make_app: AppFactory
) -> None:
    with pytest.raises(ConfigError, match=message) as error:
        make_app(**config)
    assert error.value.key == "OBSERVE_PROCESS_METRICS"


def test_on_by_default_with_a_statsd_host_only(make_app: AppFactory, udp: UdpReceiver) -> None:
    with_host = make_app(OBSERVE_STATSD_HOST="127.0.0.1", OBSERVE_STATSD_PORT=udp.port)
    assert get_state(with_host).part(ProcessFigures) is not None
    assert get_state(make_app()).part(ProcessFigures) is None
