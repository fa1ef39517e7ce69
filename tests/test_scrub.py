"""Scrubbing Sentry events: the secret rules applied through a whole event, as a copy,
and the ``before_send`` chain that drops an event it cannot scrub."""

from __future__ import annotations

import logging
import typing as t

import pytest

from flask_observe.scrub import is_scrubbing
from flask_observe.scrub import make_before_send
from flask_observe.scrub import scrub_event
from tests.support.apps import AppFactory


def test_nested_structures_and_extra_keys() -> None:
    event: dict[str, t.Any] = {
        "request": {"data": {"user": "ann", "card": {"number": "4111"}, "list": [{"pin": "1"}]}},
        "extra": {"headers": [["X-Api-Key", "k"], ["Accept", "*/*"]]},
    }
    scrubbed = scrub_event(event, ["pin"])
    assert scrubbed["request"]["data"] == {
        "user": "ann",
        "card": "[Filtered]",
        "list": [{"pin": "[Filtered]"}],
    }
    assert scrubbed["extra"]["headers"] == [["X-Api-Key", "[Filtered]"], ["Accept", "*/*"]]
    assert event["request"]["data"]["card"] == {"number": "4111"}  # a copy, not in place


def test_before_send_chains_and_drops_on_failure() -> None:
    seen: list[t.Any] = []

    def mine(event: t.Any, hint: t.Any) -> t.Any:
        seen.append((event, hint))
        return None

    hint = {"exc_info": None}
    assert make_before_send(mine)({"extra": {"token": "t"}}, hint) is None
    assert seen == [({"extra": {"token": "[Filtered]"}}, {"exc_info": None})]

    class Exploding(dict[str, t.Any]):
        def __iter__(self) -> t.Any:
            raise RuntimeError("boom")

    assert make_before_send()(Exploding(a=1), {}) is None


def test_before_send_adds_the_scrub_keys_of_the_app_whose_context_it_runs_in(
    make_app: AppFactory,
) -> None:
    """Inside an app with Flask-Observe its OBSERVE_SCRUB_KEYS count too; outside any app,
    and inside an app without Flask-Observe, the default keys alone (the event is still
    scrubbed and sent, not dropped)."""
    before_send = make_before_send()
    event = {"extra": {"pin": "1234", "token": "t", "user": "ann"}}
    with make_app(OBSERVE_SCRUB_KEYS=["pin"]).app_context():
        assert before_send(event, {}) == {
            "extra": {"pin": "[Filtered]", "token": "[Filtered]", "user": "ann"}
        }
    default = {"extra": {"pin": "1234", "token": "[Filtered]", "user": "ann"}}
    assert before_send(event, {}) == default
    with make_app(observe=False).app_context():
        assert before_send(event, {}) == default


def test_only_a_before_send_built_here_counts_as_scrubbing() -> None:
    """What tells the Sentry set-up that a client's before_send scrubs already (it is
    then not wrapped twice)."""

    def mine(event: t.Any, hint: t.Any) -> t.Any:
        return event

    assert is_scrubbing(make_before_send())
    assert is_scrubbing(make_before_send(mine))
    assert not is_scrubbing(mine)
    assert not is_scrubbing(None)


def test_before_send_keys_add_to_the_apps_keys_and_patterns(make_app: AppFactory) -> None:
    """Keys given to make_before_send count everywhere; inside an app they count together
    with the app's OBSERVE_SCRUB_KEYS and OBSERVE_SCRUB_PATTERNS."""
    before_send = make_before_send(extra_keys=["pan"])
    event = {"extra": {"pin": "1234", "pan": "5678", "note": "for EMP-123456", "user": "ann"}}
    assert before_send(event, {}) == {
        "extra": {"pin": "1234", "pan": "[Filtered]", "note": "for EMP-123456", "user": "ann"}
    }
    app = make_app(OBSERVE_SCRUB_KEYS=["pin"], OBSERVE_SCRUB_PATTERNS=[r"EMP-\d{6}"])
    with app.app_context():
        assert before_send(event, {}) == {
            "extra": {
                "pin": "[Filtered]",
                "pan": "[Filtered]",
                "note": "for [Filtered]",
                "user": "ann",
            }
        }


def test_an_event_that_cannot_be_scrubbed_is_dropped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Exploding(dict[str, t.Any]):
        def __iter__(self) -> t.Any:
            raise RuntimeError("boom")

    caplog.set_level(logging.WARNING, logger="flask_observe")
    assert make_before_send()(Exploding(a=1), {}) is None
    assert [r.getMessage() for r in caplog.records] == [
        "Flask-Observe could not scrub an event; dropped it"
    ]
