"""The scrubber on its own: which keys and strings are filtered, and what is kept."""

from __future__ import annotations

import typing as t

import pytest

from flask_observe.scrub import FILTERED
from flask_observe.scrub import make_before_send
from flask_observe.scrub import scrub_event
from flask_observe.scrub import Scrubber


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("postgres://user:pw1@db/x", "postgres://[Filtered]@db/x", id="url-creds"),
        pytest.param("see https://tok@host/p", "see https://[Filtered]@host/p", id="url-user"),
        pytest.param("api_key=abc&page=2", "api_key=[Filtered]&page=2", id="query"),
        pytest.param("x-auth-token: abc", "x-auth-token: [Filtered]", id="header-line"),
        pytest.param("Authorization: Bearer abc.def", "Authorization: [Filtered]", id="bearer"),
        pytest.param(
            "{'password': 'hunter2', 'x': 1}", "{'password': '[Filtered]', 'x': 1}", id="repr"
        ),
        pytest.param('{"client_secret": "s3"}', '{"client_secret": "[Filtered]"}', id="json-text"),
        pytest.param("token=[Filtered]", "token=[Filtered]", id="idempotent"),
        pytest.param("mail ann@example.com", "mail ann@example.com", id="email-kept"),
        pytest.param("page=2&sort=name", "page=2&sort=name", id="harmless-kept"),
    ],
)
def test_scrub_text(text: str, expected: str) -> None:
    assert Scrubber().scrub_text(text) == expected


@pytest.mark.parametrize(
    "key",
    [
        "Authorization",
        "Proxy-Authorization",
        "Cookie",
        "Set-Cookie",
        "X-Api-Key",
        "X-Auth-Token",
        "HTTP_X_AUTH_TOKEN",
        "password",
        "new_password",
        "client_secret",
        "apiKey",
        "card",
        "card_number",
    ],
)
def test_sensitive_keys(key: str) -> None:
    assert Scrubber().is_sensitive(key)


@pytest.mark.parametrize("key", ["user", "page", "Content-Type", "Host", "name"])
def test_harmless_keys(key: str) -> None:
    assert not Scrubber().is_sensitive(key)


def test_nested_structures_and_extra_keys() -> None:
    event: dict[str, t.Any] = {
        "request": {"data": {"user": "ann", "card": {"number": "4111"}, "list": [{"pin": "1"}]}},
        "extra": {"headers": [["X-Api-Key", "k"], ["Accept", "*/*"]]},
    }
    scrubbed = scrub_event(event, ["pin"])
    assert scrubbed["request"]["data"] == {
        "user": "ann",
        "card": FILTERED,
        "list": [{"pin": FILTERED}],
    }
    assert scrubbed["extra"]["headers"] == [["X-Api-Key", FILTERED], ["Accept", "*/*"]]
    assert event["request"]["data"]["card"] == {"number": "4111"}  # a copy, not in place


def test_before_send_chains_and_drops_on_failure() -> None:
    seen: list[t.Any] = []

    def mine(event: t.Any, hint: t.Any) -> t.Any:
        seen.append(event)
        return None

    assert make_before_send(mine)({"extra": {"token": "t"}}, {}) is None
    assert seen == [{"extra": {"token": FILTERED}}]

    class Exploding(dict[str, t.Any]):
        def __iter__(self) -> t.Any:
            raise RuntimeError("boom")

    assert make_before_send()(Exploding(a=1), {}) is None
