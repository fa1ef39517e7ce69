"""benchmarks/harness.py: instructions counted under valgrind, memory layouts applied
before Flask is imported, the statsd flush interval under the time scale, and serving
processes that end with their parent."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import types
import weakref
from pathlib import Path

import pytest
from flask import Flask

from benchmarks import harness
from tests.support.benchmarks import ratio_table
from tests.support.services import ROOT


def _python(
    code: str, *args: str, env: dict[str, str] | None = None, timeout: float | None = 120
) -> subprocess.CompletedProcess[str]:
    """*code* run by this interpreter in a child process, in the checkout, its output
    captured as text."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.services
def test_instruction_mode_counts_each_configuration_under_valgrind() -> None:
    """Instructions (valgrind, installed by make services): a row per configuration with
    its count and ratio; timing costs more than bare Flask, not much more."""
    code = (
        "from benchmarks import harness; r = harness.CONFIGURATIONS; "
        "counts = harness.instructions(r, ['bare', 'timing'], 20, 120, layouts=2); "
        "harness.print_instructions(r, counts, 20, 120)"
    )
    result = _python(code, timeout=None)
    result.check_returncode()
    out = result.stdout
    rows = ratio_table(out, ["bare", "timing"])
    assert 1.0 < rows["timing"][1] < 1.2, out  # the headers cost something, not much
    assert "median of 2 memory layout(s); 120 minus 20 requests each" in out


#: Recorded callgrind runs of ``serve('benchmarks.harness', 'production', 20)``: the
#: stderr and the per-thread files, cut down to their header and ``totals:`` line.
CALLGRIND_SAMPLES = Path(__file__).parent / "callgrind"


@pytest.mark.parametrize(
    ("valgrind", "pid", "expected"),
    [
        # Debian 12, Python 3.11: only the process itself reports.
        pytest.param("valgrind-3.19", 8292, (1178499288, 1150331545), id="3.19"),
        # trixie and forky (3.13, 3.14): the forked statsd drain reports first, as it
        # execs (9937: 687517520; 8160: 903357010), with files under its own pid.
        pytest.param("valgrind-3.24", 9550, (812824331, 790902914), id="3.24"),
        pytest.param("valgrind-3.27", 7572, (1045312138, 1023590532), id="3.27"),
    ],
)
def test_callgrind_reports_are_read_for_the_process_valgrind_started(
    valgrind: str, pid: int, expected: tuple[int, int]
) -> None:
    """The total and the main thread's count are those of the process valgrind ran, not
    of a child it forked: reading the first report gave every configuration with a
    statsd drain the same total at 300 and at 1800 requests (0.0 k per request)."""
    directory = CALLGRIND_SAMPLES / valgrind
    stderr = (directory / "stderr").read_text()
    assert harness.read_callgrind(stderr, directory, pid) == expected


def test_a_callgrind_report_that_does_not_add_up_is_refused(tmp_path: Path) -> None:
    """A thread missing from the files (or a format not known) fails the run rather
    than printing a wrong figure."""
    sample = CALLGRIND_SAMPLES / "valgrind-3.27"
    for path in sample.iterdir():
        if not path.name.endswith("-04"):
            (tmp_path / path.name).write_text(path.read_text())
    stderr = (sample / "stderr").read_text()
    with pytest.raises(RuntimeError, match="add up to 1036927597 instructions"):
        harness.read_callgrind(stderr, tmp_path, 7572)
    with pytest.raises(RuntimeError, match="no callgrind report of process 7573"):
        harness.read_callgrind(stderr, tmp_path, 7573)


@pytest.mark.parametrize("layout", ["1", "2"])
def test_a_layout_is_applied_when_the_package_is_imported_before_flask(layout: str) -> None:
    """Each layout keeps its own seeded set of objects alive, allocated before Flask is
    imported: the harness imports only the standard library."""
    code = (
        "import sys; from benchmarks import harness; "
        "print(harness.shift_layout(), len(harness.layout_ballast), 'flask' in sys.modules)"
    )
    env = {**os.environ, harness.LAYOUT_KEY: layout}
    result = _python(code, env=env)
    number, kept, flask_imported = result.stdout.split()
    assert (number, flask_imported) == (layout, "False"), result.stderr
    # Seeded: a layout always keeps the same objects, another layout others.
    assert kept == {"1": "522", "2": "1972"}[layout]


def test_every_configuration_is_counted_with_the_app_in_one_state() -> None:
    """Production serves one error before it is counted, and Flask logs it through
    ``app.logger``, a cached property stored on the app. With the middleware stored as
    ``app.wsgi_app`` that is two attributes beyond Flask's own, past what Python 3.14
    keeps inline, and Flask's own reads of its attributes get dearer. The other
    configurations are built with the logger read too, so the gap to the floor is the
    middleware's, not the app's. In a child process: production initialises
    sentry-sdk, which is process-wide."""
    code = (
        "from benchmarks import harness\n"
        "for name in ('bare', 'floor', 'timing', 'production'):\n"
        "    print(name, 'logger' in vars(harness.CONFIGURATIONS.build(name)))\n"
        "harness.close_all()\n"
    )
    result = _python(code)
    assert result.stdout.split("\n")[:4] == [
        "bare True",
        "floor True",
        "timing True",
        "production True",
    ], result.stderr


def test_start_up_garbage_is_collected_before_the_first_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reference cycle left behind by building the app is gone when the first request
    arrives: a counted run does not pay for collecting start-up (on 3.14 that one-off
    fell inside the counted requests and grew with everything the process imported)."""

    class Leftover:
        cycle: Leftover

    seen: list[bool] = []
    registry = harness.Registry("tests.benchmarks.startup_garbage", "/hello")

    @registry.add("bare", "bare Flask, a reference cycle left by its set-up")
    def _leftover() -> Flask:
        app = harness.trivial_app()
        leftover = Leftover()
        leftover.cycle = leftover
        alive = weakref.ref(leftover)
        del leftover
        app.before_request(lambda: seen.append(alive() is None))
        return app

    module = types.ModuleType(registry.module)
    module.CONFIGURATIONS = registry  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, registry.module, module)
    harness.serve(registry.module, "bare", 3)
    assert seen == [True, True, True]


def test_a_child_returns_its_result_or_fails_with_its_error() -> None:
    """What a function returns in a child process comes back as JSON; a failure there
    is an error here that shows the child's own."""
    assert harness.in_child("statistics", "median", [3, 1, 2]) == 2
    with pytest.raises(RuntimeError, match="KeyError: 'no-such'"):
        harness.in_child("benchmarks.harness", "build", "no-such")


@pytest.mark.parametrize("name", ["timing", "production"])
def test_flask_reads_its_attributes_as_in_the_floor(name: str) -> None:
    """After the same requests, Flask's own attribute reads are specialised the same
    way in a configuration as in the floor (on 3.14, production's used to read through
    a dictionary where the floor's read inline values). Each in a child process."""
    code = (
        "import dis, sys\n"
        "from flask import Flask\n"
        "from benchmarks import harness\n"
        "app = harness.CONFIGURATIONS.build(sys.argv[1])\n"
        "harness.run_once(app, harness.CONFIGURATIONS.environ(), 300)\n"
        "code = Flask.create_url_adapter.__code__\n"
        "print(sorted({i.opname for i in dis.get_instructions(code, adaptive=True)\n"
        "              if i.opname.startswith('LOAD_ATTR')}))\n"
        "harness.close_all()\n"
    )

    def reads(configuration: str) -> str:
        result = _python(code, configuration)
        assert result.returncode == 0, result.stderr
        return result.stdout

    floor = reads("floor")
    assert "LOAD_ATTR_" in floor  # specialised at all: the comparison means something
    assert reads(name) == floor


def test_statsd_flush_interval_is_stretched_under_the_time_scale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The flush interval and the sender's collection interval (process-wide, restored
    after this test) are both stretched."""
    from flask_observe import statsd_client

    monkeypatch.setattr(statsd_client, "COLLECT_INTERVAL", statsd_client.COLLECT_INTERVAL)
    assert harness.statsd_config(1)["OBSERVE_STATSD_FLUSH_INTERVAL"] == 0.5
    assert statsd_client.COLLECT_INTERVAL == 0.5
    monkeypatch.setenv(harness.TIME_SCALE_KEY, str(harness.VALGRIND_SLOWDOWN))
    assert harness.statsd_config(1)["OBSERVE_STATSD_FLUSH_INTERVAL"] == 50.0
    assert statsd_client.COLLECT_INTERVAL == 50.0


def test_a_serving_process_ends_with_the_process_that_started_it() -> None:
    """The helper processes (statsd drain, Sentry receiver) exit when their parent ends,
    even when it never closes them: a gunicorn worker stopped, a run interrupted."""
    code = (
        "from benchmarks import harness; "
        "print(harness.serving_process(harness.UDP_DRAIN_SCRIPT), flush=True)"
    )
    parent = _python(code, timeout=60)
    port = int(parent.stdout)
    deadline = time.monotonic() + 10
    while True:  # the port is free again once the drain has gone
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
                break
            except OSError:
                assert time.monotonic() < deadline, "the drain outlived its parent"
                time.sleep(0.05)


def test_bytecode_is_written_before_counting(tmp_path: Path) -> None:
    """Counted runs find the checkout compiled: none of a pair pays for compiling."""
    import importlib.util

    package = tmp_path / "package"
    (package / "inner").mkdir(parents=True)
    modules = [package / "__init__.py", package / "inner" / "module.py"]
    for module in modules:
        module.write_text("VALUE = 1\n")
    harness.write_bytecode([package])
    for module in modules:
        assert Path(importlib.util.cache_from_source(str(module))).is_file()
    (package / "broken.py").write_text("def (\n")
    with pytest.raises(RuntimeError, match="cannot compile"):
        harness.write_bytecode([package])
