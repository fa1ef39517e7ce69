"""SQL per request: statements run through SQLAlchemy, counted, timed and attributed to
the request and app that ran them (:mod:`~flask_observe.sql.capture`), and what is kept
of each statement for the panels and the test helper
(:mod:`~flask_observe.sql.statements`).

Needs SQLAlchemy 2.0 or newer (``pip install 'Flask-Observe[sqlalchemy]'``); without
it, or with ``OBSERVE_SQL = False``, nothing of this runs. Importing this package
imports no SQLAlchemy.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

from .capture import install as install
from .capture import SqlSettings as SqlSettings
from .capture import SqlTally as SqlTally
from .statements import group_statements as group_statements
from .statements import normalise as normalise
from .statements import Statement as Statement
from .statements import StatementGroup as StatementGroup
