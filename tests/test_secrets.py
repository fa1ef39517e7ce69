"""The secret rules: which keys and which parts of a text are secret, and what is kept."""

from __future__ import annotations

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
