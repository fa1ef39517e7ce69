"""A profile as an icicle graph (root on top, callees below, width = wall-clock time)
drawn as inline SVG on the server, and its hottest functions as table rows.

No script, no network: each box carries a ``<title>`` (function, ``file:line``, time
and share) that the browser shows on hover. Every text is escaped. Runs of frames of
Flask, Werkzeug, asgiref, Flask-DebugToolbar and Flask-Observe can be collapsed into
one box named after those packages.

.. versionadded:: 0.3.0
"""

from __future__ import annotations

import html
import os
import sys
import typing as t
import zlib

if t.TYPE_CHECKING:
    from collections.abc import Callable
    from collections.abc import Iterable

    from .sampler import Frame
    from .sampler import Profile

#: Width of the drawing in SVG user units (the SVG scales to the panel's width).
WIDTH = 800.0
#: Height of one row.
ROW = 18
#: Rows drawn at most (deeper frames are left out).
MAX_ROWS = 60
#: Boxes narrower than this (user units) are left out with their callees.
MIN_WIDTH = 0.6
#: Packages whose frames are collapsed by default, by import name.
FRAMEWORK = {
    "flask": "Flask",
    "werkzeug": "Werkzeug",
    "asgiref": "asgiref",
    "flask_debugtoolbar": "Flask-DebugToolbar",
    "flask_observe": "Flask-Observe",
}


class Node:
    """One box: a frame reached through one path, with the seconds spent below it."""

    __slots__ = ("frame", "seconds", "children")

    def __init__(self, frame: Frame) -> None:
        self.frame = frame
        self.seconds = 0.0
        self.children: dict[Frame, Node] = {}

    def child(self, frame: Frame) -> Node:
        node = self.children.get(frame)
        if node is None:
            node = self.children[frame] = Node(frame)
        return node


def framework_dirs() -> dict[str, str]:
    """Directory (with a trailing separator) of each imported framework package."""
    dirs = {}
    for module_name, label in FRAMEWORK.items():
        module = sys.modules.get(module_name)
        path = getattr(module, "__file__", None)
        if path:
            dirs[os.path.dirname(path) + os.sep] = label
    return dirs


def collapser(dirs: dict[str, str]) -> Callable[[tuple[Frame, ...]], tuple[Frame, ...]]:
    """A function replacing each run of framework frames in a stack by one frame
    named after the packages of the run (e.g. ``[Flask, Werkzeug]``).

    :param dirs: :func:`framework_dirs`.
    """

    def package(frame: Frame) -> str | None:
        for directory, label in dirs.items():
            if frame[1].startswith(directory):
                return label
        return None

    def collapse(stack: tuple[Frame, ...]) -> tuple[Frame, ...]:
        out: list[Frame] = []
        run: list[str] = []
        for frame in stack:
            label = package(frame)
            if label is None:
                if run:
                    out.append((f"[{', '.join(run)}]", "", 0))
                    run = []
                out.append(frame)
            elif label not in run:
                run.append(label)
        if run:
            out.append((f"[{', '.join(run)}]", "", 0))
        return tuple(out)

    return collapse


def build_tree(
    stacks: Iterable[tuple[tuple[Frame, ...], float]],
    root: Frame,
    transform: Callable[[tuple[Frame, ...]], tuple[Frame, ...]] | None = None,
) -> Node:
    """Merge stacks (root first) into a tree under a node for *root*.

    :param stacks: ``(frames, seconds)`` pairs.
    :param root: the frame of the top box (e.g. the view).
    :param transform: applied to each stack first (e.g. :func:`collapser`).
    """
    top = Node(root)
    for frames, seconds in stacks:
        if transform is not None:
            frames = transform(frames)
        top.seconds += seconds
        node = top
        for frame in frames:
            node = node.child(frame)
            node.seconds += seconds
    return top


def where(frame: Frame) -> str:
    """``file:line`` of *frame*, or an empty string for a made-up frame."""
    name, filename, line = frame
    return f"{filename}:{line}" if filename else ""


def _colour(frame: Frame) -> str:
    if not frame[1]:
        return "#c8ccd4"  # collapsed runs and [awaiting]
    hue = zlib.crc32(frame[0].encode("utf-8", "replace")) % 50  # red to yellow
    return f"hsl({hue},80%,{62 + hue % 8}%)"


def _label(text: str, width: float) -> str:
    fits = int((width - 6) / 6.6)  # about 6.6 user units per character at 11px
    if fits < 3:
        return ""
    return text if len(text) <= fits else text[: fits - 1] + "\u2026"


def render_svg(tree: Node, total: float, element_id: str) -> str:
    """The icicle graph of *tree* as one ``<svg>`` element.

    :param tree: from :func:`build_tree`.
    :param total: seconds that make the full width (the root's, usually).
    :param element_id: the ``id`` of the ``<svg>``.
    """
    boxes: list[str] = []
    depth = 0
    scale = WIDTH / total if total > 0 else 0.0

    def draw(node: Node, x: float, row: int) -> None:
        nonlocal depth
        width = node.seconds * scale
        if width < MIN_WIDTH or row >= MAX_ROWS:
            return
        depth = max(depth, row + 1)
        name = node.frame[0]
        location = where(node.frame)
        share = node.seconds / total * 100.0 if total else 0.0
        tip = "\n".join(
            part for part in (name, location, f"{node.seconds * 1000:.2f} ms, {share:.1f}%") if part
        )
        y = row * ROW
        boxes.append(
            f'<g class="observe-flame-frame"><title>{html.escape(tip)}</title>'
            f'<rect x="{x:.2f}" y="{y}" width="{width:.2f}" height="{ROW - 1}" '
            f'fill="{_colour(node.frame)}" rx="2"></rect>'
            f'<text x="{x + 3:.2f}" y="{y + ROW - 5}">{html.escape(_label(name, width))}</text>'
            "</g>"
        )
        child_x = x
        for child in sorted(node.children.values(), key=lambda n: n.seconds, reverse=True):
            draw(child, child_x, row + 1)
            child_x += child.seconds * scale

    draw(tree, 0.0, 0)
    height = max(depth, 1) * ROW
    return (
        f'<svg id="{html.escape(element_id)}" class="observe-flame" '
        f'xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH:.0f} {height}" '
        f'width="100%" font-family="monospace" font-size="11" role="img" '
        f'aria-label="Flame graph (icicle), wall-clock time">' + "".join(boxes) + "</svg>"
    )


class Hot(t.NamedTuple):
    """One row of the hottest functions: time in the function itself (self) and in
    it and its callees (total, counted once per stack under recursion)."""

    name: str
    location: str
    self_seconds: float
    total_seconds: float
    self_share: float
    total_share: float


def hottest(profile: Profile, limit: int = 25) -> list[Hot]:
    """The functions with the most self time, heaviest first.

    :param profile: a finished profile.
    :param limit: rows at most.
    """
    own: dict[Frame, float] = {}
    inclusive: dict[Frame, float] = {}
    for frames, seconds in profile.stacks:
        if not frames:
            continue
        own[frames[-1]] = own.get(frames[-1], 0.0) + seconds
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0.0) + seconds
    total = profile.sampled or 1.0
    rows = sorted(own.items(), key=lambda item: item[1], reverse=True)[:limit]
    return [
        Hot(
            frame[0],
            where(frame),
            seconds,
            inclusive[frame],
            seconds / total * 100.0,
            inclusive[frame] / total * 100.0,
        )
        for frame, seconds in rows
    ]
