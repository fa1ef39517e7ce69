"""The secret rules: which keys and strings are filtered and what is kept, in Sentry
events (the scrubber on its own) and in problem+json bodies."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask

from flask_observe import APIError
from flask_observe import Observe
from flask_observe.scrub import make_before_send
from flask_observe.scrub import scrub_event
from flask_observe.secrets import FILTERED
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


# --- problem+json bodies ------------------------------------------------------------


class LookupFailed(Exception):
    """A domain exception mapped to 404."""


def body_app(**config: object) -> Flask:
    app = Flask("body_secrets")
    app.config.update(PROPAGATE_EXCEPTIONS=False, **config)
    observe = Observe()
    observe.register_error(LookupFailed, 404)
    observe.init_app(app)

    @app.get("/db")
    def db() -> str:
        raise RuntimeError("cannot reach postgres://app:hunter2@db/x (ssn=078-05-1120)")

    @app.get("/lookup")
    def lookup() -> str:
        raise LookupFailed("no user for api_key=k-4242 at https://admin:pw9@idp/x")

    @app.get("/api")
    def api() -> str:
        raise APIError("token: expected 32 characters", status=400)

    return app


def test_debug_detail_masks_the_exceptions_secrets() -> None:
    app = body_app(DEBUG=True, OBSERVE_SCRUB_KEYS=["ssn"])
    response = app.test_client().get("/db")
    assert response.status_code == 500
    assert response.json is not None
    assert response.json["detail"] == (
        "RuntimeError: cannot reach postgres://[Filtered]@db/x (ssn=[Filtered])"
    )


def test_mapped_exception_detail_masks_its_secrets() -> None:
    response = body_app().test_client().get("/lookup")
    assert response.status_code == 404
    assert response.json is not None
    assert response.json["detail"] == "no user for api_key=[Filtered] https://[Filtered]@idp/x"


def test_a_message_written_for_the_client_is_kept() -> None:
    response = body_app().test_client().get("/api")
    assert response.status_code == 400
    assert response.json is not None
    assert response.json["detail"] == "token: expected 32 characters"
