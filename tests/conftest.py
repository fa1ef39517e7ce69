"""The fixtures shared by the test files, the Sentry isolation every test gets, and the
check that keeps the ``services`` marker honest.

The helpers behind these fixtures live in ``tests/support/`` (the app factory, the
receivers, the services); a test file imports helpers from there and asks for fixtures
by name, never by importing them.
"""

from __future__ import annotations

import typing as t

import pytest

from tests.support import apps
from tests.support.metrics import UdpReceiver
from tests.support.postgres import Postgres
from tests.support.postgres import run_postgres
from tests.support.sentry import EnvelopeReceiver
from tests.support.sentry import sentry_isolated
from tests.support.services import Pipeline
from tests.support.services import run_graphite_pipeline
from tests.support.services import starts_services
from tests.support.services import unmarked_service_users

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from flask import Flask
    from flask.testing import FlaskClient

#: ``pytester``, for the test of the ``services`` check (tests/test_support.py).
pytest_plugins = ["pytester"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse the run when a test uses a fixture that starts a service (declared with
    :func:`~tests.support.services.starts_services`) without ``@pytest.mark.services``:
    ``pytest -m "not services"`` would start it in the fast loop."""
    unmarked = unmarked_service_users(items)
    if unmarked:
        raise pytest.UsageError(
            "These tests start services but are not marked @pytest.mark.services:\n  "
            + "\n  ".join(unmarked)
        )


@pytest.fixture(autouse=True)
def isolated_sentry() -> Iterator[None]:
    """Every test starts in a fresh Sentry isolation scope with no sentry-sdk client bound,
    and ends by closing whatever client it bound (sentry-sdk is process-global, and any
    ``Observe(app)`` with a DSN binds one), so no event of one test reaches another's
    receiver."""
    yield from sentry_isolated()


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with no rate-limited warning logged yet: a warning logged by an
    earlier test in the same process (or an earlier run of the same test, as mutmut
    runs them) must not hide the one a test expects."""
    from flask_observe import containment

    monkeypatch.setattr(containment, "_last_warned", {})


@pytest.fixture
def make_app() -> Iterator[apps.AppFactory]:
    """:func:`tests.support.apps.make_app`, closing the statsd clients of the apps it made
    after the test."""
    made: list[Flask] = []

    def factory(*routes: apps.Routes, observe: bool = True, **config: t.Any) -> Flask:
        app = apps.make_app(*routes, observe=observe, **config)
        if observe:
            made.append(app)
        return app

    yield factory
    for app in made:
        apps.close_statsd(app)


@pytest.fixture
def app(make_app: apps.AppFactory) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def udp() -> Iterator[UdpReceiver]:
    """A UDP socket on 127.0.0.1 standing in for statsd."""
    receiver = UdpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def receiver() -> Iterator[EnvelopeReceiver]:
    """A Sentry envelope receiver on 127.0.0.1; its ``dsn`` is what to configure."""
    with EnvelopeReceiver() as server:
        yield server


@pytest.fixture(scope="session")
@starts_services
def graphite_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """Two real statsd daemons (two hosts' worth) -> carbon-cache -> graphite-web, for
    the whole session; tests that play one host send to the first daemon."""
    with run_graphite_pipeline(tmp_path_factory.mktemp("graphite"), daemons=2) as pipeline:
        yield pipeline


@pytest.fixture(scope="session")
@starts_services
def postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL server (Debian's) on a free loopback port, for the session."""
    with run_postgres() as server:
        yield server
