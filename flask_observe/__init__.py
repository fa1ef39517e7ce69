"""Flask-Observe: timing headers, statsd metrics, JSON errors with Sentry capture, and
Flask-DebugToolbar panels for any Flask app, from one ``init_app(app)``.

Importing this package has no side effects and needs none of the optional extras.
"""

from __future__ import annotations

from . import metrics as metrics
from .config import ConfigError as ConfigError
from .errors import APIError as APIError
from .errors import event_id as event_id
from .extension import Observe as Observe
from .record import current_record as current_record
from .record import RequestRecord as RequestRecord
from .timing import timed as timed

__version__ = "0.3.0.dev0"
