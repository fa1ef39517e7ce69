"""The endpoint of a request answered 405 Method Not Allowed: the path matched a rule,
the method did not, so Flask leaves ``request.url_rule`` unset.

Werkzeug raises :class:`~werkzeug.exceptions.MethodNotAllowed` from the URL adapter's
``match`` and lists the methods the path allows; matching the path again with one of
them finds the rule. This runs only for such a request, when its response starts (the
request path reads ``request.url_rule`` first, and looks here only when it is
``None``), so a matched request costs nothing more::

    endpoint = rule.endpoint if rule is not None else endpoint_of_unmatched(request)

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import typing as t

from flask import current_app
from flask import has_app_context
from werkzeug.exceptions import MethodNotAllowed

if t.TYPE_CHECKING:
    from werkzeug.wrappers import Request


def endpoint_of_unmatched(request: Request) -> str | None:
    """The endpoint of the rule whose path *request* matched with a method it does not
    allow, or ``None`` (no rule matched the path: a 404, a slash redirect).

    When the path's allowed methods lead to different rules (``GET /items`` and
    ``POST /items`` on two views), the rule of the first allowed method in alphabetical
    order is the one named. Never raises.

    :param request: Flask's request, while its app context is active.
    """
    error = getattr(request, "routing_exception", None)
    if not isinstance(error, MethodNotAllowed) or not error.valid_methods:
        return None
    try:
        if not has_app_context():
            return None
        adapter = current_app.create_url_adapter(request)  # type: ignore[arg-type]
        if adapter is None:
            return None
        for method in sorted(error.valid_methods):
            try:
                rule, _ = adapter.match(method=method, return_rule=True)
            except Exception:
                continue
            endpoint = getattr(rule, "endpoint", None)
            return endpoint if isinstance(endpoint, str) else None
    except Exception:
        return None
    return None
