"""What the timing and record tests share: the paths through the middleware a test runs
on, and a reader for the entries of a ``Server-Timing`` header."""

from __future__ import annotations

import typing as t

import pytest

# With TESTING metrics record every request's lines (the full-record path); without it,
# only timing headers are on (the lean path, where the record is made on demand); with a
# statsd host, metrics take each request without a record (the sink's add).
PATHS = [
    pytest.param({}, id="with-finish-hooks"),
    pytest.param({"TESTING": False}, id="timing-only"),
    pytest.param(
        {"TESTING": False, "OBSERVE_STATSD_HOST": "127.0.0.1", "OBSERVE_STATSD_PORT": 9},
        id="request-hook",
    ),
]


def entries(response: t.Any) -> list[str]:
    """The names of a response's ``Server-Timing`` entries, in order."""
    return [part.split(";")[0] for part in response.headers["Server-Timing"].split(", ")]
