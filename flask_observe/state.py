"""Per-app state: what Flask-Observe keeps for one app in ``app.extensions["observe"]``.

This module imports nothing else from the package and names no feature: each feature
keeps its own part under the part's class (:meth:`ObserveState.add_part`) and finds it
with :meth:`ObserveState.part`, so a new feature needs no change here.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import dataclasses
import typing as t

from flask import current_app

if t.TYPE_CHECKING:
    from flask import Flask

    from .config import ObserveConfig
    from .record import RequestRecord

#: Key of the per-app state in ``app.extensions``.
EXTENSION_KEY = "observe"

#: A callable run with each finished :class:`~flask_observe.RequestRecord`.
FinishHook = t.Callable[["RequestRecord"], None]
#: A callable run once per finished request with its endpoint (``None`` when no route
#: matched), method, status line, duration in seconds and record (``None`` when the
#: request made none).
RequestHook = t.Callable[[str | None, str, str | None, float, "RequestRecord | None"], None]

PartT = t.TypeVar("PartT")


class Extension(t.Protocol):
    """What the state offers of the :class:`~flask_observe.Observe` object that
    initialised the app.

    .. versionadded:: 0.3.0
    """

    #: Domain exception classes mapped to HTTP statuses by ``register_error``.
    error_map: dict[type[BaseException], int]


class RequestClock(t.Protocol):
    """What the state needs of the request middleware
    (:class:`~flask_observe.timing.ObserveMiddleware`): its finish hooks.

    .. versionadded:: 0.3.0
    """

    @property
    def finish_hooks(self) -> tuple[FinishHook, ...]:
        """The hooks run with each finished record, in order."""

    def add_finish_hook(self, hook: FinishHook) -> None:
        """Also run *hook* with each finished record."""


@dataclasses.dataclass(eq=False)
class ObserveState:
    """Everything Flask-Observe keeps for one app, in ``app.extensions["observe"]``.

    Built by :meth:`~flask_observe.Observe.init_app`; each feature adds its part.

    .. versionadded:: 0.1.0
    """

    #: The extension object that initialised the app.
    extension: Extension
    #: The validated configuration.
    config: ObserveConfig
    #: The WSGI middleware owning the request clock.
    middleware: RequestClock | None = None
    #: Each feature's part (metrics, errors, Sentry capture, panels...), under the
    #: part's class: see :meth:`part`.
    parts: dict[type[object], object] = dataclasses.field(default_factory=dict)

    def part(self, kind: type[PartT]) -> PartT | None:
        """The part of class *kind* a feature keeps here, or ``None`` when it has none
        (the feature is not set up on this app).

        :param kind: the class of the part, e.g. ``MetricsState``.

        .. versionadded:: 0.3.0
        """
        part = self.parts.get(kind)
        return part if isinstance(part, kind) else None

    def add_part(self, part: object) -> None:
        """Keep *part* under its class, replacing the part of that class, if any.

        :param part: a feature's state object.

        .. versionadded:: 0.3.0
        """
        self.parts[type(part)] = part

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
