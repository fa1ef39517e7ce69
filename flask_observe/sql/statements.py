"""What is kept of one SQL statement, and how statements are compared and grouped.

Used by the request capture (:mod:`flask_observe.sql.capture`), the SQL panel and the
test helper (:mod:`flask_observe.testing`). Imports nothing of SQLAlchemy: it reads the
arguments SQLAlchemy's cursor events hand over.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import sysconfig
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Iterable
    from types import FrameType

    from ..secrets import Scrubber

#: Literals and bound-parameter markers, each replaced by ``?`` in a normalised text:
#: quoted strings, numbers, ``%(name)s``, ``%s``, ``$1``, ``:name`` (not ``::cast``), ``?``.
_LITERALS = re.compile(
    r"'(?:[^']|'')*'"
    r"|(?<![\w.])\d+(?:\.\d+)?(?![\w.])"
    r"|%\(\w+\)s|%s"
    r"|\$\d+"
    r"|(?<![:\w]):(?!:)\w+"
    r"|\?"
)
#: A list of placeholders, as an expanded ``IN`` or a multi-row ``VALUES`` writes it.
_LISTS = re.compile(r"\(\s*\?(?:\s*,\s*\?)*\s*\)(?:\s*,\s*\(\s*\?(?:\s*,\s*\?)*\s*\))*")
_SPACE = re.compile(r"\s+")

#: The packages whose frames are never a statement's call site.
_LIBRARY_PACKAGES = (
    "flask_observe",
    "sqlalchemy",
    "flask_sqlalchemy",
    "flask",
    "werkzeug",
    "jinja2",
    "click",
    "greenlet",
    "aiosqlite",
    "asgiref",
    "psycopg",
    "_pytest",
    "pluggy",
)


def normalise(text: str) -> str:
    """*text* with its literals and parameter markers collapsed to ``?``, placeholder
    lists to ``(...)`` and runs of white space to one space: two runs of the same
    statement with other values give the same normalised text.

    :param text: a SQL statement, e.g. ``SELECT * FROM book WHERE id = 3``.
    """
    text = _LITERALS.sub("?", text)
    text = _LISTS.sub("(...)", text)
    return _SPACE.sub(" ", text).strip()


class CallSites:
    """Finds the call site of a statement: the innermost frame that belongs to the app,
    not to the standard library nor to SQLAlchemy, Flask, Werkzeug, Flask-Observe and
    the other libraries a statement passes through (an app installed in site-packages
    is still the app)."""

    def __init__(self) -> None:
        #: How many modules were imported when the prefixes were computed: a library
        #: imported later (Flask-SQLAlchemy after the first statement) is then added.
        self._modules = -1
        self._stdlib: tuple[str, ...] = ()
        self._site: tuple[str, ...] = ()
        self._packages: tuple[str, ...] = ()

    def _prepare(self) -> None:
        paths = sysconfig.get_paths()
        self._stdlib = tuple({os.path.join(paths[k], "") for k in ("stdlib", "platstdlib")})
        self._site = tuple({os.path.join(paths[k], "") for k in ("purelib", "platlib")})
        packages = []
        for name in _LIBRARY_PACKAGES:
            path = getattr(sys.modules.get(name), "__file__", None)
            if path:
                packages.append(os.path.join(os.path.dirname(path), ""))
        self._packages = tuple(packages)
        self._modules = len(sys.modules)

    def is_library(self, path: str) -> bool:
        """Whether a frame of the file *path* belongs to a library."""
        if path.startswith("<") or path.startswith(self._packages):
            return True
        return path.startswith(self._stdlib) and not path.startswith(self._site)

    def find(self, frame: FrameType | None) -> str | None:
        """``path:line in function`` of the first app frame from *frame* outwards, or
        ``None`` when every frame belongs to a library."""
        if len(sys.modules) != self._modules:  # the libraries imported so far
            self._prepare()
        while frame is not None:
            path = frame.f_code.co_filename
            if not self.is_library(path):
                return f"{_short(path)}:{frame.f_lineno} in {frame.f_code.co_name}"
            frame = frame.f_back
        return None


def _short(path: str) -> str:
    """*path* relative to the working directory when it lies below it."""
    cwd = os.path.join(os.getcwd(), "")
    return path[len(cwd) :] if path.startswith(cwd) else path


#: The one finder of the process (its prefixes are computed on first use).
call_sites = CallSites()


def find_call_site() -> str | None:
    """The call site of the statement being run: see :class:`CallSites`."""
    return call_sites.find(sys._getframe(1))


def mask_parameters(
    scrubber: Scrubber, parameters: object, names: t.Sequence[str] | None, many: bool
) -> str:
    """The parameters of a statement as text, with secrets masked by the secret rules
    (a value under a sensitive name, and secrets found inside text values).

    :param parameters: as the DB-API cursor gets them: a tuple, a dict, or for an
        ``executemany`` a list of them.
    :param names: the bound parameters' names, in order, for positional parameters.
    :param many: *parameters* is a list of parameter sets.
    """
    sets = list(parameters) if many and isinstance(parameters, (list, tuple)) else [parameters]
    shown = [_mask_one(scrubber, one, names) for one in sets[:10]]
    if len(sets) > 10:
        shown.append(f"... {len(sets) - 10} more")
    return shown[0] if not many else "[" + ", ".join(shown) + "]"


def _mask_one(scrubber: Scrubber, parameters: object, names: t.Sequence[str] | None) -> str:
    if isinstance(parameters, (list, tuple)) and names and len(names) == len(parameters):
        parameters = dict(zip(names, parameters, strict=True))
    if isinstance(parameters, dict):
        masked = scrubber.scrub({str(k): v for k, v in parameters.items()})
        return "{" + ", ".join(f"{k}: {v!r}" for k, v in masked.items()) + "}"
    if isinstance(parameters, (list, tuple)):
        return "(" + ", ".join(repr(v) for v in scrubber.scrub(list(parameters))) + ")"
    return repr(scrubber.scrub(parameters))


@dataclasses.dataclass(eq=False)
class Statement:
    """One statement a request ran, as the SQL panel shows it.

    .. versionadded:: 0.3.0
    """

    #: The SQL text sent to the database (capped in length).
    text: str
    #: How long the cursor ran it, in seconds.
    seconds: float
    #: When it started, in seconds after the request's start.
    offset: float
    #: Its parameters as text, secrets masked.
    parameters: str
    #: ``path:line in function`` of the app code that ran it, if found.
    call_site: str | None
    #: The engine's URL, password hidden.
    engine: str
    #: Whether it ran as an ``executemany``.
    many: bool = False
    #: The parameters as the driver got them, unmasked: kept in this process only, for
    #: EXPLAIN (:func:`~flask_observe.sql.explain.explain`), never shown.
    raw_parameters: object = dataclasses.field(default=None, repr=False)
    #: The engine that ran it (weakly: a disposed engine is gone), for EXPLAIN.
    engine_ref: t.Callable[[], object] | None = dataclasses.field(default=None, repr=False)

    @property
    def normalised(self) -> str:
        """The text with literals and parameters collapsed (:func:`normalise`)."""
        return normalise(self.text)


@dataclasses.dataclass(eq=False)
class StatementGroup:
    """The runs of one normalised statement in a request or a test block.

    .. versionadded:: 0.3.0
    """

    #: The normalised text.
    text: str
    #: The runs, in order.
    statements: list[Statement]
    #: Whether it ran at least ``OBSERVE_SQL_REPEATS`` times: an N+1 pattern, or
    #: duplicates.
    repeated: bool = False

    @property
    def count(self) -> int:
        """How many times it ran."""
        return len(self.statements)

    @property
    def seconds(self) -> float:
        """The total time of its runs."""
        return sum(statement.seconds for statement in self.statements)

    @property
    def duplicates(self) -> int:
        """Runs with the same parameters as an earlier run: the same work done again."""
        return len(self.statements) - len({s.parameters for s in self.statements})

    @property
    def call_sites(self) -> list[tuple[str, int]]:
        """Each distinct call site and how many runs came from it, most first."""
        counts: dict[str, int] = {}
        for statement in self.statements:
            site = statement.call_site or "(no app frame)"
            counts[site] = counts.get(site, 0) + 1
        return sorted(counts.items(), key=lambda item: -item[1])


def group_statements(statements: Iterable[Statement], repeats: int) -> list[StatementGroup]:
    """*statements* grouped by normalised text, in order of first run; a group with
    *repeats* runs or more is flagged :attr:`~StatementGroup.repeated`.

    :param repeats: ``OBSERVE_SQL_REPEATS``.
    """
    groups: dict[str, StatementGroup] = {}
    for statement in statements:
        key = statement.normalised
        group = groups.get(key)
        if group is None:
            group = groups[key] = StatementGroup(key, [])
        group.statements.append(statement)
    for group in groups.values():
        group.repeated = group.count >= repeats
    return list(groups.values())
