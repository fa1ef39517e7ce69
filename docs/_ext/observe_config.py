"""The ``observe-config`` directive: the configuration reference, rendered from
``flask_observe.config.OPTIONS`` so that the docs list exactly the keys the code reads."""

from __future__ import annotations

import typing as t

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

if t.TYPE_CHECKING:
    from sphinx.application import Sphinx


def _default(value: object) -> str:
    if isinstance(value, frozenset):
        value = sorted(value)
    if isinstance(value, tuple) and not value:
        return "``[]``"
    return f"``{value!r}``"


class ObserveConfigDirective(SphinxDirective):
    has_content = False

    def run(self) -> list[nodes.Node]:
        from flask_observe.config import OPTIONS

        lines: list[str] = []
        for option in OPTIONS:
            lines += [
                f".. data:: {option.key}",
                "",
                f"   :type: {option.type_doc}",
                f"   :value: {_default(option.default)}",
                "",
                f"   {option.doc}",
                "",
                f"   .. versionadded:: {option.since}",
                "",
            ]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="observe-config"), 0, container)
        return container.children


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("observe-config", ObserveConfigDirective)
    return {"parallel_read_safe": True, "version": "1"}
