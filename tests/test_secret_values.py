"""Secrets masked whole: a value after a sensitive key up to its end (spaces included),
card numbers anywhere in text, and the ``OBSERVE_SCRUB_PATTERNS`` hook, the same in
Sentry events (through the real SDK), problem+json bodies (debug mode too) and the
panels' rules (:mod:`flask_observe.secrets`)."""

from __future__ import annotations

import json
import re
import typing as t

import pytest
from flask import Flask
from flask import request

from flask_observe import ConfigError
from flask_observe.panels.templating import format_config_value
from flask_observe.secrets import app_scrubber
from flask_observe.secrets import luhn_valid
from flask_observe.secrets import Scrubber
from tests.support.apps import make_app
from tests.support.sentry import flush

if t.TYPE_CHECKING:
    from tests.support.sentry import EnvelopeReceiver

CARD = "4111 1111 1111 1111"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "login failed: password=correct horse battery staple",
            "login failed: password=[Filtered]",
            id="issue-password",
        ),
        pytest.param(
            '{"card": "4111 1111 1111 1111"}', '{"card": "[Filtered]"}', id="issue-card-json"
        ),
        pytest.param("a=1&password=x y&b=2", "a=1&password=[Filtered]&b=2", id="query-like"),
        pytest.param("password=hunter2 user=bob", "password=[Filtered] user=bob", id="next-key"),
        pytest.param("token: a b c, next: 1", "token: [Filtered], next: 1", id="comma"),
        pytest.param("secret=a b; path=/", "secret=[Filtered]; path=/", id="semicolon"),
        pytest.param(
            "x=1\npassword=a b\nnext line", "x=1\npassword=[Filtered]\nnext line", id="eol"
        ),
        pytest.param(
            "{'password': 'x y', 'b': 1}", "{'password': '[Filtered]', 'b': 1}", id="repr-dict"
        ),
        pytest.param(
            '{"token": "a \\" b", "n": 1}', '{"token": "[Filtered]", "n": 1}', id="escaped-quote"
        ),
        pytest.param("api_key='never closed", "api_key='[Filtered]", id="unterminated"),
        pytest.param("Authorization: Bearer abc.def", "Authorization: [Filtered]", id="scheme"),
        pytest.param("password=[Filtered] x", "password=[Filtered] x", id="already-masked"),
        pytest.param('password: ""', 'password: ""', id="empty"),
        pytest.param("paid with 4111 1111 1111 1111.", "paid with [Filtered].", id="card-spaces"),
        pytest.param("4111-1111-1111-1111", "[Filtered]", id="card-dashes"),
        pytest.param("pan=5500005555555559;", "pan=[Filtered];", id="card-digits-mastercard"),
        pytest.param("amex 378282246310005 ok", "amex [Filtered] ok", id="card-15-digits"),
        pytest.param("order 4111111111111112 id", "order 4111111111111112 id", id="not-luhn"),
        pytest.param("call 555 1234 5678", "call 555 1234 5678", id="too-few-digits"),
        pytest.param("id A4111111111111111", "id A4111111111111111", id="inside-a-word"),
    ],
)
def test_values_are_masked_to_their_end(text: str, expected: str) -> None:
    assert Scrubber().scrub_text(text) == expected


def test_the_issue_examples_exactly() -> None:
    scrubber = Scrubber()
    assert (
        scrubber.scrub_text("login failed: password=correct horse battery staple")
        == "login failed: password=[Filtered]"
    )
    assert scrubber.scrub({"card": CARD}) == {"card": "[Filtered]"}
    assert scrubber.scrub_text(json.dumps({"card": CARD})) == '{"card": "[Filtered]"}'


@pytest.mark.parametrize(
    ("number", "valid"),
    [
        ("4111 1111 1111 1111", True),
        ("4111-1111-1111-1111", True),
        ("378282246310005", True),
        ("4111111111111112", False),
        ("79927398713", True),
        ("79927398710", False),
    ],
)
def test_luhn(number: str, valid: bool) -> None:
    assert luhn_valid(number) is valid


def test_extra_patterns_are_masked_whole() -> None:
    app = make_app(OBSERVE_SCRUB_PATTERNS=[r"EMP-\d{6}", re.compile(r"(?i)ssn \d{3}-\d{2}-\d{4}")])
    scrubber = app_scrubber(app)
    assert scrubber.scrub_text("badge EMP-123456 and SSN 078-05-1120.") == (
        "badge [Filtered] and [Filtered]."
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("EMP-.*", "OBSERVE_SCRUB_PATTERNS: expected a list of regular", id="str"),
        pytest.param(["("], "OBSERVE_SCRUB_PATTERNS: '(' is not a regular expression", id="bad"),
        pytest.param([""], "OBSERVE_SCRUB_PATTERNS: every entry must be a non-empty", id="empty"),
        pytest.param([re.compile(b"x")], "OBSERVE_SCRUB_PATTERNS: every entry must", id="bytes"),
    ],
)
def test_bad_patterns_are_refused(value: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_app(OBSERVE_SCRUB_PATTERNS=value)
    assert str(caught.value).startswith(message)


def test_the_panels_show_config_values_masked_whole() -> None:
    scrubber = Scrubber()
    shown = format_config_value(scrubber, "LDAP_OPTIONS", "bind_pw=x; password=a b c; tls=1")
    assert shown == "bind_pw=x; password=[Filtered]; tls=1"
    assert format_config_value(scrubber, "TEST_NUMBER", CARD) == "[Filtered]"


def add_routes(app: Flask) -> None:
    """``/login`` fails with the password in the message; ``/pay`` keeps the raw body,
    a card number under a neutral name and a secret under a name no rule knows."""

    @app.post("/login")
    def login() -> str:
        raise ValueError("login failed: password=correct horse battery staple")

    @app.post("/pay")
    def pay() -> str:
        raw = request.get_data(as_text=True)
        number = CARD
        pw = "open sesame"
        raise RuntimeError(f"payment refused for {raw} ({len(number)}, {len(pw)})")


def test_the_event_and_the_debug_detail_mask_the_same_words(receiver: EnvelopeReceiver) -> None:
    app = make_app(
        add_routes,
        TESTING=False,
        DEBUG=True,
        PROPAGATE_EXCEPTIONS=False,
        OBSERVE_SENTRY_DSN=receiver.dsn,
    )
    response = app.test_client().post("/login")
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.json is not None
    assert response.json["detail"] == "ValueError: login failed: password=[Filtered]"
    flush()
    (event,) = receiver.wait_for_events(1)
    (exception,) = event["exception"]["values"]
    assert exception["value"] == "login failed: password=[Filtered]"
    assert b"horse" not in receiver.raw


def test_card_numbers_and_json_bodies_never_reach_sentry(receiver: EnvelopeReceiver) -> None:
    app = make_app(add_routes, TESTING=False, OBSERVE_SENTRY_DSN=receiver.dsn)
    body = '{"card": "4111 1111 1111 1111", "amount": 12}'
    response = app.test_client().post("/pay", data=body, content_type="application/json")
    assert response.status_code == 500
    flush()
    (event,) = receiver.wait_for_events(1)
    assert event["request"]["data"] == {"card": "[Filtered]", "amount": 12}
    (exception,) = event["exception"]["values"]
    assert exception["value"] == 'payment refused for {"card": "[Filtered]", "amount": 12} (19, 11)'
    variables = exception["stacktrace"]["frames"][-1]["vars"]
    assert variables["number"] == "'[Filtered]'"
    assert variables["raw"] == '\'{"card": "[Filtered]", "amount": 12}\''
    # Neither the number (spaced or not) nor a group of its digits standing alone, as in
    # a last four. Not any "1111": an event id, a thread id, an address or a timestamp
    # holds those digits inside a longer run now and then (3 runs of 2,000 here).
    leaked = re.search(rb"4111[ -]?1111|(?<![0-9a-f])1111(?![0-9a-f])", receiver.raw)
    assert leaked is None, leaked
    # The documented limit: a secret under a name no rule knows is sent as it is...
    assert variables["pw"] == "'open sesame'"


def test_a_key_added_for_a_neutral_name_masks_it(receiver: EnvelopeReceiver) -> None:
    app = make_app(
        add_routes, TESTING=False, OBSERVE_SENTRY_DSN=receiver.dsn, OBSERVE_SCRUB_KEYS=["pw"]
    )
    app.test_client().post("/pay", json={"card": CARD})
    flush()
    (event,) = receiver.wait_for_events(1)
    variables = event["exception"]["values"][0]["stacktrace"]["frames"][-1]["vars"]
    assert variables["pw"] == "[Filtered]"
    assert b"sesame" not in receiver.raw
