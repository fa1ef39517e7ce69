"""The pytest plugin of Flask-Observe, registered through the ``pytest11`` entry point:
the ``assert_max_statements`` fixture. Importing it imports no SQLAlchemy.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import typing as t

import pytest

if t.TYPE_CHECKING:
    from .testing import assert_max_statements as AssertMaxStatements


@pytest.fixture
def assert_max_statements() -> type[AssertMaxStatements]:
    """:class:`flask_observe.testing.assert_max_statements`, as a fixture::

    def test_authors(client, assert_max_statements):
        with assert_max_statements(2):
            client.get("/authors")
    """
    from .testing import assert_max_statements

    return assert_max_statements
