"""``OBSERVE_EXCLUDE_PATHS``: one rule for the middleware and the metrics listing."""

from __future__ import annotations

import pytest

from flask_observe.paths import ExcludedPaths


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        pytest.param("/health", True, id="whole-path"),
        pytest.param("/health/deep", False, id="whole-path-is-not-a-prefix"),
        pytest.param("/healthz", False, id="no-partial-match"),
        pytest.param("/static/app.css", True, id="under-a-prefix"),
        pytest.param("/static/", True, id="the-prefix-itself"),
        pytest.param("/statics", False, id="prefix-stops-at-its-slash"),
        pytest.param("/", False, id="root"),
    ],
)
def test_a_request_path_is_excluded_whole_or_under_a_prefix(path: str, excluded: bool) -> None:
    paths = ExcludedPaths(["/health", "/static/*"])
    assert paths.match(path) is excluded


def test_no_pattern_excludes_nothing() -> None:
    paths = ExcludedPaths([])
    assert not paths
    assert paths.match("/anything") is False
    assert ExcludedPaths(["/x"])


@pytest.mark.parametrize(
    ("rule", "covered"),
    [
        pytest.param("/health", True, id="fixed-rule-listed"),
        pytest.param("/static/<path:filename>", True, id="variable-under-a-prefix"),
        pytest.param("/user/<int:id>", False, id="variable-not-under-a-prefix"),
        pytest.param("/health/<name>", False, id="whole-path-does-not-cover-below"),
    ],
)
def test_a_url_rule_is_covered_when_every_path_it_matches_is(rule: str, covered: bool) -> None:
    paths = ExcludedPaths(["/health", "/static/*"])
    assert paths.covers_rule(rule) is covered
