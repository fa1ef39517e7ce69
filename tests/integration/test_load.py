"""Load and faults on a real server (gunicorn + wrk + the statsd daemon + a Sentry
receiver): the short run of benchmarks/load.py, asserting outcomes, never timings.

The long run with the figures: ``python -m benchmarks.load``.
"""

from __future__ import annotations

import pytest

from benchmarks import load

pytestmark = pytest.mark.services

SECONDS = 2
CONNECTIONS = 8  # wrk's default in benchmarks/load.py


@pytest.mark.parametrize("preload", [False, True], ids=["no-preload", "preload"])
def test_every_worker_reaches_the_daemon(preload: bool) -> None:
    outcome = load.statsd_up(SECONDS, preload)
    wrk = outcome["wrk"]
    assert wrk.requests > 0
    assert wrk.non_2xx == 0 and wrk.socket_errors == 0
    # wrk stops counting at its deadline; the server may finish one more per connection.
    assert wrk.requests <= outcome["daemon_count"] <= wrk.requests + CONNECTIONS


def test_statsd_stopped_and_restarted_mid_run() -> None:
    outcome = load.statsd_restart(3)
    wrk = outcome["wrk"]
    assert wrk.requests > 0
    assert wrk.non_2xx == 0 and wrk.socket_errors == 0
    assert outcome["before_stop"] > 0
    assert outcome["after_restart"] > 0  # metrics resumed on the new daemon


def test_sentry_up_closed_and_hanging() -> None:
    outcome = load.sentry(SECONDS, rounds=1)
    for mode in ("up", "closed", "hanging"):
        wrk = outcome[mode]
        assert wrk.socket_errors == 0, mode
        assert wrk.requests > 0, mode
        # Only the one-in-ten raising route answers 500; nothing else failed.
        assert 0 < wrk.non_2xx <= wrk.requests // 10 + CONNECTIONS, mode
    assert outcome["duplicate_ids"] == 0
    # One error repeated: the throttle lets each of the 4 workers send its first ones.
    most = 4 * load.SENTRY_EVENTS_PER_WORKER
    assert min(outcome["raised"], load.SENTRY_EVENTS_PER_WORKER) <= outcome["events"] <= most


def test_threaded_workers_send_whole_lines() -> None:
    outcome = load.threads(SECONDS)
    wrk = outcome["wrk"]
    assert wrk.non_2xx == 0 and wrk.socket_errors == 0
    assert outcome["broken"] == []
    assert wrk.requests <= outcome["counted"] <= wrk.requests + 50
