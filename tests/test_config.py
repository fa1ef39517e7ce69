"""Configuration is validated once, at init_app, with errors that name the key."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask

from flask_observe import ConfigError
from flask_observe import Observe
from flask_observe.config import ObserveConfig
from flask_observe.config import OPTIONS


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        pytest.param("OBSERVE_RUNTIME_HEADER", "yes", "expected True or False", id="bool-str"),
        pytest.param("OBSERVE_SERVER_TIMING", 1, "expected True or False", id="bool-int"),
        pytest.param("OBSERVE_EXCLUDE_PATHS", "/health", "list of paths", id="paths-str"),
        pytest.param("OBSERVE_EXCLUDE_PATHS", ["health"], "starting with '/'", id="path-slash"),
        pytest.param("OBSERVE_STATSD_PORT", 0, "between 1 and 65535", id="port-zero"),
        pytest.param("OBSERVE_STATSD_PORT", "8125", "expected an integer", id="port-str"),
        pytest.param("OBSERVE_STATSD_PORT", True, "expected an integer", id="port-bool"),
        pytest.param("OBSERVE_STATSD_SAMPLE_RATE", 0, "must be in (0.0, 1.0]", id="rate-zero"),
        pytest.param("OBSERVE_STATSD_SAMPLE_RATE", -0.5, "must be in", id="rate-negative"),
        pytest.param("OBSERVE_STATSD_SAMPLE_RATE", 1.5, "must be in", id="rate-above-one"),
        pytest.param("OBSERVE_STATSD_SAMPLE_RATE", float("nan"), "must be in", id="rate-nan"),
        pytest.param("OBSERVE_STATSD_PROTOCOL", "quic", "must be one of", id="protocol"),
        pytest.param("OBSERVE_STATSD_TAGS", "prometheus", "must be one of", id="dialect"),
        pytest.param("OBSERVE_STATSD_MAX_PACKET", 10, "between 64 and 65507", id="packet"),
        pytest.param("OBSERVE_STATSD_HOST", 127001, "expected a string", id="host-int"),
        pytest.param("OBSERVE_STATSD_FLUSH_INTERVAL", 0, "must be in", id="flush-zero"),
        pytest.param("OBSERVE_SENTRY_CAPTURE_STATUSES", [404], "between 500 and 599", id="4xx"),
        pytest.param("OBSERVE_SENTRY_CAPTURE_STATUSES", "500", "collection", id="statuses-str"),
        pytest.param("OBSERVE_ERROR_BODY", "json", "expected a callable", id="body"),
        pytest.param("OBSERVE_EVENT_ID_HEADER", "X Event", "not a valid header", id="header"),
        pytest.param("OBSERVE_SCRUB_KEYS", "password", "list of strings", id="scrub-str"),
        pytest.param("OBSERVE_TOOLBAR_PANELS", "on", "expected True or False", id="panels"),
        pytest.param("OBSERVE_MEMORY_BUDGET", -1, "must be in", id="budget"),
        pytest.param("OBSERVE_REPORT_STORE_SIZE", 0, "between 1 and", id="store"),
    ],
)
def test_bad_value_fails_at_init_naming_the_key(key: str, value: object, message: str) -> None:
    app = Flask(__name__)
    app.config[key] = value
    with pytest.raises(ConfigError) as info:
        Observe(app)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")
    assert message in str(info.value)


def test_unknown_key_is_rejected_with_a_suggestion() -> None:
    app = Flask(__name__)
    app.config["OBSERVE_RUNTIME_HEADERS"] = False
    with pytest.raises(ConfigError, match="Did you mean OBSERVE_RUNTIME_HEADER"):
        Observe(app)


def test_failed_init_leaves_the_app_untouched() -> None:
    app = Flask(__name__)
    wsgi_app = app.wsgi_app
    app.config["OBSERVE_STATSD_PORT"] = -1
    with pytest.raises(ConfigError):
        Observe(app)
    assert "observe" not in app.extensions
    assert app.wsgi_app == wsgi_app
    app.config["OBSERVE_STATSD_PORT"] = 8125
    Observe(app)  # a corrected config can then be applied
    assert "observe" in app.extensions


def test_defaults() -> None:
    config = ObserveConfig.from_mapping({})
    assert config.runtime_header is True
    assert config.server_timing is True
    assert config.exclude_paths == ()
    assert config.statsd_host is None
    assert config.statsd_port == 8125
    assert config.statsd_sample_rate == 1.0
    assert config.statsd_protocol == "udp"
    assert config.sentry_capture_statuses == frozenset({500, 502, 503, 504})


def test_values_are_normalised() -> None:
    config = ObserveConfig.from_mapping(
        {
            "OBSERVE_STATSD_TAGS": "DogStatsD",
            "OBSERVE_STATSD_SAMPLE_RATE": 1,
            "OBSERVE_EXCLUDE_PATHS": {"/b", "/a"},
            "OBSERVE_STATSD_HOST": "",
        }
    )
    assert config.statsd_tags == "dogstatsd"
    assert config.statsd_sample_rate == 1.0 and isinstance(config.statsd_sample_rate, float)
    assert config.exclude_paths == ("/a", "/b")
    assert config.statsd_host is None


def test_every_option_has_a_field_and_valid_default() -> None:
    fields = set(ObserveConfig.__dataclass_fields__)
    assert {option.field for option in OPTIONS} == fields
    for option in OPTIONS:
        assert option.key.startswith("OBSERVE_")
        assert option.doc and option.type_doc
        option.parse(option.key, option.default)  # the default passes its own check


def test_non_observe_keys_are_ignored() -> None:
    config: dict[str, t.Any] = {"SECRET_KEY": "x", "OBSERVER": 1, "DEBUG": True}
    parsed = ObserveConfig.from_mapping(config)
    assert parsed == ObserveConfig.from_mapping({})  # every setting at its default
    assert (parsed.statsd_port, parsed.runtime_header) == (8125, True)
    assert config == {"SECRET_KEY": "x", "OBSERVER": 1, "DEBUG": True}  # left as it was


def test_environment_variables_through_from_prefixed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """What docs/configuration.rst and the README say about FLASK_OBSERVE_* variables."""
    monkeypatch.setenv("FLASK_OBSERVE_STATSD_HOST", "statsd.internal")
    monkeypatch.setenv("FLASK_OBSERVE_STATSD_SAMPLE_RATE", "0.25")
    monkeypatch.setenv("FLASK_OBSERVE_EXCLUDE_PATHS", '["/health", "/static/*"]')
    monkeypatch.setenv("FLASK_OBSERVE_RUNTIME_HEADER", "false")
    monkeypatch.setenv("FLASK_OBSERVE_EVENT_ID_HEADER", "null")
    monkeypatch.setenv("MYAPP_OBSERVE_STATSD_PORT", "9125")
    app = Flask(__name__)
    app.config["OBSERVE_STATSD_PREFIX"] = "shop"  # a default the environment does not set
    app.config.from_prefixed_env()
    app.config.from_prefixed_env("MYAPP")
    Observe(app)
    config = app.extensions["observe"].config
    assert config.statsd_host == "statsd.internal"
    assert config.statsd_sample_rate == 0.25
    assert config.exclude_paths == ("/health", "/static/*")
    assert config.runtime_header is False
    assert config.event_id_header is None
    assert config.statsd_port == 9125
    assert config.statsd_prefix == "shop"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        pytest.param("OBSERVE_RUNTIME_HEADER", "False", id="python-bool"),
        pytest.param("OBSERVE_STATSD_PREFIX", "2024", id="number-for-a-string"),
    ],
)
def test_environment_values_that_are_not_the_json_expected_fail_at_init(
    key: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(f"FLASK_{key}", value)
    app = Flask(__name__)
    app.config.from_prefixed_env()
    with pytest.raises(ConfigError) as info:
        Observe(app)
    assert info.value.key == key
    monkeypatch.setenv("FLASK_OBSERVE_STATSD_PREFIX", '"2024"')  # quoted: a JSON string
    monkeypatch.setenv("FLASK_OBSERVE_RUNTIME_HEADER", "false")
    app.config.from_prefixed_env()
    Observe(app)
