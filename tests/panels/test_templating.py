"""How the panels show a configuration value: masked by the secret rules, the app's own
scrub keys included."""

from __future__ import annotations

import datetime
import json
import re
import typing as t

import pytest

from flask_observe.panels.templating import format_config_value
from flask_observe.secrets import default_scrubber
from flask_observe.secrets import Scrubber

if t.TYPE_CHECKING:
    pass


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        pytest.param("SECRET_KEY", "abc", "[Filtered]", id="secret-key"),
        pytest.param("OBSERVE_SENTRY_DSN", "https://k@o1.invalid/1", "[Filtered]", id="dsn"),
        pytest.param("GITHUB_TOKEN", "ghp_x", "[Filtered]", id="token"),
        pytest.param("MAIL_PASSWORD", "pw", "[Filtered]", id="password"),
        pytest.param("STRIPE_API_KEY", "sk", "[Filtered]", id="api-key"),
        pytest.param("PAYMENT_CARD", "4111", "[Filtered]", id="card"),
        pytest.param("JWT_PRIVATE_KEY_PATH", "/etc/jwt.pem", "[Filtered]", id="private"),
        pytest.param("DATABASE_URL", "mysql://root:pw@h/db", "mysql://[Filtered]@h/db", id="url"),
        pytest.param(
            "CACHE_OPTIONS",
            {"password": "hunter2", "ttl": 60},
            "{'password': [Filtered], 'ttl': 60}",
            id="pair-inside",
        ),
        pytest.param("SECRET_KEY", None, "None", id="unset-secret"),
        pytest.param("DEBUG", True, "True", id="plain"),
        pytest.param(
            "OBSERVE_SENTRY_CAPTURE_STATUSES",
            frozenset({504, 500, 1000, 502}),
            "{500, 502, 504, 1000}",
            id="set-sorted-no-frozenset",
        ),
        pytest.param("NAMES", {"b", "a"}, "{'a', 'b'}", id="set-of-strings"),
        pytest.param("OBSERVE_EXCLUDE_PATHS", ["/health"], "['/health']", id="list"),
        pytest.param("OBSERVE_SENTRY_ERROR_RATE", (10, 60.0), "[10, 60.0]", id="tuple"),
        pytest.param("OBSERVE_STATSD_PREFIX", "shop.web1", "shop.web1", id="string-unquoted"),
        pytest.param(
            "PERMANENT_SESSION_LIFETIME",
            datetime.timedelta(days=31),
            "31 days, 0:00:00",
            id="timedelta",
        ),
        pytest.param("PATTERN", re.compile(r"^/api/"), "^/api/", id="pattern"),
        pytest.param("HOOK", json.dumps, "json.dumps", id="function"),
        pytest.param("DEEP", [[[["x"]]]], "[[[...]]]", id="too-deep"),
    ],
)
def test_config_values_shown(key: str, value: object, shown: str) -> None:
    assert format_config_value(default_scrubber, key, value) == shown


def test_config_values_shown_with_the_apps_scrub_keys() -> None:
    scrubber = Scrubber(["ssn"])
    assert format_config_value(scrubber, "EXPORT_SSN", "078-05-1120") == "[Filtered]"
    assert format_config_value(scrubber, "EXPORT", "ssn=078-05-1120") == "ssn=[Filtered]"
    assert format_config_value(scrubber, "EXPORT", {"ssn": "1"}) == "{'ssn': [Filtered]}"
