"""``OBSERVE_EXCLUDE_PATHS``: the paths whose requests bypass Flask-Observe.

One rule for the middleware (does this request bypass?) and the ``flask observe
metrics`` listing (does every path of this URL rule bypass?): a pattern is a path
compared whole, with or without its trailing slash, or, ending in ``*``, a prefix
(``*`` anywhere else is refused by the configuration)::

    excluded = ExcludedPaths(["/health/", "/static/*"])
    excluded.match("/static/app.css")  # True
    excluded.match("/health")  # True: /health and /health/ are one path here

.. versionchanged:: 0.3.0
    A path matches with or without its trailing slash.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import typing as t


class ExcludedPaths:
    """The excluded paths of one app.

    :param patterns: paths compared whole (with or without a trailing slash), or
        prefixes written with a trailing ``*``.
    """

    def __init__(self, patterns: t.Iterable[str]) -> None:
        patterns = tuple(patterns)
        # Both spellings of each path go in the set: matching stays one look-up.
        paths = [p.rstrip("/") or "/" for p in patterns if not p.endswith("*")]
        self._paths = frozenset((*paths, *(p + "/" for p in paths if p != "/")))
        self._prefixes = tuple(p[:-1] for p in patterns if p.endswith("*"))

    def __bool__(self) -> bool:
        """Whether any path is excluded at all."""
        return bool(self._paths or self._prefixes)

    def match(self, path: str) -> bool:
        """Whether a request for *path* bypasses Flask-Observe."""
        return path in self._paths or (bool(self._prefixes) and path.startswith(self._prefixes))

    def covers_rule(self, rule: str) -> bool:
        """Whether every path the URL *rule* matches is excluded: the rule itself when
        it has no variable, else the part before its first variable under a prefix.

        :param rule: a URL rule, e.g. ``/static/<path:filename>``.
        """
        fixed, variable, _ = rule.partition("<")
        if not variable and rule in self._paths:
            return True
        return any(fixed.startswith(prefix) for prefix in self._prefixes)
