"""The secret rules: which keys and which parts of a text are secret, and what is kept."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flask_observe.secrets import Scrubber


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
        # the keys the panels masked before the rules had one home
        "DB_PWD",
        "private_key",
        "SENTRY_DSN",
        "SECURITY_PASSWORD_SALT",
        "webhook_signature",
        "aws_credentials",
    ],
)
def test_sensitive_keys(key: str) -> None:
    assert Scrubber().is_sensitive(key)


@pytest.mark.parametrize("key", ["user", "page", "Content-Type", "Host", "name", "DEBUG"])
def test_harmless_keys(key: str) -> None:
    assert not Scrubber().is_sensitive(key)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("sentry_dsn=k-1 on", "sentry_dsn=[Filtered]", id="dsn-pair"),
        pytest.param("private_key: abc", "private_key: [Filtered]", id="private-pair"),
        pytest.param("salt=s4lt&n=1", "salt=[Filtered]&n=1", id="salt-pair"),
    ],
)
def test_scrub_text_with_the_panels_former_keys(text: str, expected: str) -> None:
    assert Scrubber().scrub_text(text) == expected


def test_empty_values_under_sensitive_keys_are_kept() -> None:
    assert Scrubber().scrub({"password": "", "token": None, "cookie": b""}) == {
        "password": "",
        "token": None,
        "cookie": "",
    }


def documented_keys() -> list[str]:
    """The sensitive keys and headers as the user guide lists them (the Scrubbing section
    of docs/errors.rst), read from the page rather than from the code's constant."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "errors.rst").read_text("utf-8")
    section = page.split("Scrubbing\n~~~~~~~~~\n", 1)[1]
    headers = section.split("- the headers ", 1)[1].split(";\n", 1)[0]
    keys = section.split("- the value of any key", 1)[1].split("plus the names in", 1)[0]
    found = re.findall(r"``([^`]+)``", headers + keys)
    names = [name for part in found for name in part.split("/")]
    assert len(names) >= 20 and "passwd" in names and "X-Auth-Token" in names, names
    return names


@pytest.mark.parametrize("key", documented_keys())
def test_every_documented_key_is_masked(key: str) -> None:
    scrubber = Scrubber()
    for name in (key, key.upper(), f"my_{key}_2"):
        assert scrubber.scrub({name: "v4lue", "page": "2"}) == {name: "[Filtered]", "page": "2"}
        assert scrubber.scrub([[name, "v4lue"], ["page", "2"]]) == [
            [name, "[Filtered]"],
            ["page", "2"],
        ]
        assert scrubber.scrub_text(f"a=1&{name}=v4lue&b=2") == f"a=1&{name}=[Filtered]&b=2"
        assert scrubber.scrub_text(f'{{"{name}": "v4lue"}}') == f'{{"{name}": "[Filtered]"}}'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Fehler für password=hunter2", "Fehler für password=[Filtered]", id="latin"),
        pytest.param("ошибка: TOKEN=abc, ok", "ошибка: TOKEN=[Filtered], ok", id="cyrillic-upper"),
        pytest.param("ключ Api-Key: k-1", "ключ Api-Key: [Filtered]", id="dash-key"),
        pytest.param("密码 secret='s 3'", "密码 secret='[Filtered]'", id="quoted"),
        pytest.param("日本語 page=2", "日本語 page=2", id="harmless-kept"),
    ],
)
def test_pairs_inside_non_ascii_text(text: str, expected: str) -> None:
    assert Scrubber().scrub_text(text) == expected


def nested(levels: int, leaf: object) -> object:
    """*leaf* inside *levels* dicts: ``{"a": {"a": ... leaf}}``."""
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def test_the_depth_limit() -> None:
    """Values are walked 32 levels deep; deeper, text is still scrubbed as text and
    anything else is replaced whole."""
    scrubber = Scrubber()
    assert scrubber.scrub(nested(32, "token=t0k")) == nested(32, "token=[Filtered]")
    assert scrubber.scrub(nested(32, {"x": 1})) == nested(32, "[Filtered]")
    assert scrubber.scrub(nested(30, [1, "s"])) == nested(30, [1, "s"])
    assert scrubber.scrub(nested(31, [1, "s"])) == nested(31, ["[Filtered]", "s"])
    assert scrubber.scrub(nested(31, {"pwd": "p"})) == nested(31, {"pwd": "[Filtered]"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(b"api_key=k3y&n=1", "api_key=[Filtered]&n=1", id="pair"),
        pytest.param(b"postgres://u:p@db/x", "postgres://[Filtered]@db/x", id="url"),
        pytest.param(b"caf\xc3\xa9 \xff token=t", "caf\u00e9 \ufffd token=[Filtered]", id="utf-8"),
        pytest.param(b"plain", "plain", id="plain"),
    ],
)
def test_bytes_values_become_scrubbed_text(value: bytes, expected: str) -> None:
    assert Scrubber().scrub({"body": value}) == {"body": expected}
    assert Scrubber().scrub([value]) == [expected]


def test_bytes_under_a_sensitive_key() -> None:
    assert Scrubber().scrub({"cookie": b"session=1", "x": (b"a", 1)}) == {
        "cookie": "[Filtered]",
        "x": ["a", 1],
    }


def test_hides_only_non_empty_values_under_sensitive_keys() -> None:
    scrubber = Scrubber()
    assert scrubber.hides("Password", "hunter2") is True
    assert [scrubber.hides("password", empty) for empty in (None, "", b"")] == [False] * 3
    assert scrubber.hides("page", "2") is False
    assert scrubber.hides(7, "2") is False


def test_an_app_without_flask_observe_gets_the_default_rules() -> None:
    from flask import Flask

    from flask_observe.secrets import app_scrubber

    scrubber = app_scrubber(Flask("bare"))
    assert scrubber.scrub({"api_key": "k", "pin": "1"}) == {"api_key": "[Filtered]", "pin": "1"}


@pytest.mark.parametrize("written", ["loyalty-number", "LOYALTY_NUMBER", "Loyalty-Number"])
def test_an_extra_key_matches_with_hyphen_or_underscore(written: str) -> None:
    """An app's extra key matches names written with either separator, in any case:
    ``loyalty-number`` given in OBSERVE_SCRUB_KEYS hides ``Loyalty-Number`` headers and
    ``loyalty_number`` fields alike (no default key is part of that name)."""
    scrubber = Scrubber(extra_keys=[written])
    assert scrubber.is_sensitive("Loyalty-Number")
    assert scrubber.is_sensitive("loyalty_number")
    assert not Scrubber().is_sensitive("loyalty_number")
    text = "loyalty-number=4512 loyalty_number=4512 next=1"
    assert scrubber.scrub_text(text) == (
        "loyalty-number=[Filtered] loyalty_number=[Filtered] next=1"
    )
