"""The per-request record: one record per request, finished however the request ends,
and the tokens of ``Server-Timing``."""

from __future__ import annotations

import threading
import time
import typing as t

import pytest
from flask import Flask

from flask_observe import current_record
from flask_observe import RequestRecord
from flask_observe import timed
from flask_observe.record import clean_token
from tests.support.timing import entries
from tests.support.timing import PATHS

if t.TYPE_CHECKING:
    from collections.abc import Callable


def test_propagated_exception_still_finishes_the_record(make_app: Callable[..., Flask]) -> None:
    app = make_app()  # TESTING: exceptions propagate to the caller
    finished: list[RequestRecord] = []
    app.extensions["observe"].add_finish_hook(finished.append)

    @app.get("/raise")
    def explode() -> str:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        app.test_client().get("/raise")
    assert len(finished) == 1
    assert finished[0].status == 500
    assert isinstance(finished[0].exception, KeyError)
    assert finished[0].end is not None


@pytest.mark.parametrize("config", PATHS)
def test_records_are_per_request_under_threads(
    make_app: Callable[..., Flask], config: dict[str, object]
) -> None:
    app = make_app(**config)
    records: dict[str, RequestRecord | None] = {}

    @app.get("/<name>")
    @timed("work")
    def work(name: str) -> str:
        time.sleep(0.01)
        records[name] = current_record()
        return name

    def call(name: str) -> None:
        response = app.test_client().get(f"/{name}")
        assert response.text == name
        assert entries(response) == ["app", "work"]

    threads = [threading.Thread(target=call, args=(f"t{n}",)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(record) for record in records.values()}) == 20


@pytest.mark.parametrize(
    ("name", "token"),
    [
        pytest.param("view", "view", id="plain"),
        pytest.param("db query", "db_query", id="space"),
        pytest.param("a,b;c=d", "a_b_c_d", id="separators"),
        pytest.param("", "_", id="empty"),
        pytest.param("é" * 100, "_" * 64, id="long-non-ascii"),
    ],
)
def test_server_timing_names_are_tokens(name: str, token: str) -> None:
    assert clean_token(name) == token
