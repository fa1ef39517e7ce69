"""What a profiled request keeps (plain values) and how the panel and the
``X-Observe-Report`` page show it: flame graphs, hottest functions, speedscope file.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import base64
import dataclasses
import re
import typing as t

from markupsafe import Markup

from .flame import build_tree
from .flame import collapser
from .flame import framework_dirs
from .flame import hottest
from .flame import render_svg
from .speedscope import speedscope_json

if t.TYPE_CHECKING:
    from .flame import Hot
    from .sampler import Frame
    from .sampler import Profile

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclasses.dataclass(frozen=True)
class RequestProfile:
    """One request's profile and how to show it.

    :param label: the request, e.g. ``GET /report``.
    :param profile: the samples.
    :param interval: the sampling interval, in seconds.
    """

    label: str
    profile: Profile
    interval: float

    @property
    def root(self) -> Frame:
        """The top box of the flame graphs: the request."""
        return (self.label, "", 0)

    def flame(self, collapsed: bool) -> Markup:
        """The icicle graph as inline SVG.

        :param collapsed: runs of framework frames shown as one box each.
        """
        transform = collapser(framework_dirs()) if collapsed else None
        tree = build_tree(self.profile.stacks, self.root, transform)
        element_id = "profiler-flame-collapsed" if collapsed else "profiler-flame-full"
        return Markup(render_svg(tree, tree.seconds, element_id))  # every text in it is escaped

    def hottest(self) -> list[Hot]:
        """The functions with the most self time."""
        return hottest(self.profile)

    @property
    def filename(self) -> str:
        """A file name for the speedscope download."""
        return (_UNSAFE.sub("-", self.label).strip("-") or "profile") + ".speedscope.json"

    def speedscope_href(self) -> str:
        """The speedscope file as a ``data:`` URL (no route, no server-side store)."""
        data = speedscope_json(self.profile, self.label).encode("utf-8")
        return "data:application/json;base64," + base64.b64encode(data).decode("ascii")
