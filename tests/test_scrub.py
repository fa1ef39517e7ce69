"""Scrubbing Sentry events: the secret rules applied through a whole event, as a copy,
and the ``before_send`` chain that drops an event it cannot scrub."""

from __future__ import annotations

import typing as t

from flask_observe.scrub import make_before_send
from flask_observe.scrub import scrub_event


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
        seen.append(event)
        return None

    assert make_before_send(mine)({"extra": {"token": "t"}}, {}) is None
    assert seen == [{"extra": {"token": "[Filtered]"}}]

    class Exploding(dict[str, t.Any]):
        def __iter__(self) -> t.Any:
            raise RuntimeError("boom")

    assert make_before_send()(Exploding(a=1), {}) is None
