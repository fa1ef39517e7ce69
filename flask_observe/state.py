"""Per-app state: what Flask-Observe keeps for one app in ``app.extensions["observe"]``.

This module imports nothing else from the package, so every feature can read the state
without importing the extension that built it.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import dataclasses
import typing as t

from flask import current_app

if t.TYPE_CHECKING:
    from flask import Flask

    from .config import ObserveConfig
    from .errors import ErrorsState
    from .extension import Observe
    from .metrics import MetricsState
    from .record import RequestRecord
    from .sentry import SentryState
    from .timing import ObserveMiddleware

#: Key of the per-app state in ``app.extensions``.
EXTENSION_KEY = "observe"

#: A callable run with each finished :class:`~flask_observe.RequestRecord`.
FinishHook = t.Callable[["RequestRecord"], None]
#: A callable run once per finished request with its endpoint (``None`` when no route
#: matched), method, status line, duration in seconds and record (``None`` when the
#: request made none).
RequestHook = t.Callable[[str | None, str, str | None, float, "RequestRecord | None"], None]


@dataclasses.dataclass(eq=False)
class ObserveState:
    """Everything Flask-Observe keeps for one app, in ``app.extensions["observe"]``.

    Built by :meth:`~flask_observe.Observe.init_app`; each feature fills in its part.

    .. versionadded:: 0.1.0
    """

    #: The extension object that initialised the app.
    extension: Observe
    #: The validated configuration.
    config: ObserveConfig
    #: The WSGI middleware owning the request clock.
    middleware: ObserveMiddleware | None = None
    #: Metrics state (statsd client, recorder).
    metrics: MetricsState | None = None
    #: Error-response state (problem bodies, mapped classes).
    errors: ErrorsState | None = None
    #: Sentry capture state (scrubber, captured statuses).
    sentry: SentryState | None = None

    @property
    def finish_hooks(self) -> tuple[FinishHook, ...]:
        """The hooks the middleware runs with each finished record, in order."""
        return self.middleware.finish_hooks if self.middleware is not None else ()

    def add_finish_hook(self, hook: FinishHook) -> None:
        """Also call *hook* with each completed record, once the response body is closed.

        For integrations and tests; the features of Flask-Observe hand their hooks to
        the middleware when it is built. Hooks run after the request context is gone,
        so they read only the record; a hook that raises is logged (rate-limited) and
        the others still run.

        :param hook: called with the :class:`~flask_observe.RequestRecord`.
        """
        if self.middleware is None:  # pragma: no cover - init_app builds it
            raise RuntimeError("Flask-Observe's middleware is not built yet.")
        self.middleware.add_finish_hook(hook)


def find_state(app: Flask) -> ObserveState | None:
    """The Flask-Observe state of *app*, or ``None`` when it is not initialised there.

    .. versionadded:: 0.1.0
    """
    state = app.extensions.get(EXTENSION_KEY)
    return state if isinstance(state, ObserveState) else None


def get_state(app: Flask | None = None) -> ObserveState:
    """The Flask-Observe state of *app* (default: the current app).

    :raises RuntimeError: outside an app context, or Flask-Observe was not initialised.

    .. versionadded:: 0.1.0
    """
    if app is None:
        try:
            app = t.cast("Flask", current_app._get_current_object())  # type: ignore[attr-defined]
        except RuntimeError:
            raise RuntimeError(
                "Flask-Observe needs an application context here. Use it inside a "
                "request, or push one with 'with app.app_context():'."
            ) from None
    state = find_state(app)
    if state is None:
        raise RuntimeError(
            f"Flask-Observe is not initialised on the app {app.name!r}. Did you forget "
            "to call Observe.init_app(app)?"
        )
    return state
