"""The profile's renderers: the icicle SVG, the hottest functions and the speedscope
file, from a profile whose numbers are known."""

from __future__ import annotations

import base64
import json
import os
import xml.etree.ElementTree as ET

import flask
import werkzeug

from flask_observe.panels.profiler.flame import build_tree
from flask_observe.panels.profiler.flame import collapser
from flask_observe.panels.profiler.flame import framework_dirs
from flask_observe.panels.profiler.flame import hottest
from flask_observe.panels.profiler.flame import render_svg
from flask_observe.panels.profiler.report import RequestProfile
from flask_observe.panels.profiler.sampler import Profile
from flask_observe.panels.profiler.speedscope import speedscope

SVG = "{http://www.w3.org/2000/svg}"
VIEW = ("report_view", "/srv/app/views.py", 12)
QUERY = ("run_query", "/srv/app/db.py", 40)
RENDER = ("render <items> & co", "/srv/app/views.py", 30)
PROFILE = Profile(
    stacks=(
        ((VIEW, QUERY), 0.030),
        ((VIEW, RENDER), 0.008),
        ((VIEW,), 0.002),
    ),
    samples=20,
    duration=0.041,
)


def boxes(svg: str) -> list[tuple[str, float, float, str]]:
    """``(title, x, width, label)`` of each box of an SVG drawing."""
    root = ET.fromstring(svg)
    out = []
    for group in root.iter(f"{SVG}g"):
        title = group.find(f"{SVG}title")
        rect = group.find(f"{SVG}rect")
        text = group.find(f"{SVG}text")
        assert title is not None and rect is not None and text is not None
        out.append(
            (
                title.text or "",
                float(rect.get("x", 0)),
                float(rect.get("width", 0)),
                text.text or "",
            )
        )
    return out


def test_icicle_boxes_have_function_place_time_and_share() -> None:
    tree = build_tree(PROFILE.stacks, ("GET /report", "", 0))
    svg = render_svg(tree, tree.seconds, "flame")
    found = boxes(svg)
    titles = [title for title, _, _, _ in found]
    assert titles == [
        "GET /report\n40.00 ms, 100.0%",
        "report_view\n/srv/app/views.py:12\n40.00 ms, 100.0%",
        "run_query\n/srv/app/db.py:40\n30.00 ms, 75.0%",
        "render <items> & co\n/srv/app/views.py:30\n8.00 ms, 20.0%",
    ]
    widths = {title.split("\n")[0]: (x, width) for title, x, width, _ in found}
    assert widths["GET /report"] == (0.0, 800.0)
    assert widths["run_query"] == (0.0, 600.0)
    assert widths["render <items> & co"] == (600.0, 160.0)  # after its heavier sibling
    # The callees fill the caller's width but for its own time (2 ms of 40: 40 units).
    assert widths["run_query"][1] + widths["render <items> & co"][1] == 760.0


def test_every_text_is_escaped() -> None:
    hostile = ('</title><script>alert("x")</script>', '/srv/"quoted" & <dir>.py', 1)
    tree = build_tree([((hostile,), 0.01)], ('GET /<img src=x onerror="a()">', "", 0))
    svg = render_svg(tree, tree.seconds, 'id"><script>')
    assert "<script>" not in svg and "<img" not in svg
    assert "&lt;/title&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in svg
    assert "/srv/&quot;quoted&quot; &amp; &lt;dir&gt;.py:1" in svg
    ET.fromstring(svg)  # still well-formed


def test_framework_frames_collapse_into_one_box_per_run() -> None:
    flask_file = os.path.join(os.path.dirname(flask.__file__), "templating.py")
    werkzeug_file = os.path.join(os.path.dirname(werkzeug.__file__), "local.py")
    stack = (
        VIEW,
        ("render_template", flask_file, 139),
        ("LocalProxy.__getattr__", werkzeug_file, 300),
        ("template_body", "/srv/app/templates/page.html", 1),
    )
    collapse = collapser(framework_dirs())
    assert collapse(stack) == (
        VIEW,
        ("[Flask, Werkzeug]", "", 0),
        ("template_body", "/srv/app/templates/page.html", 1),
    )
    assert collapse((VIEW, QUERY)) == (VIEW, QUERY)


def test_hottest_functions_by_self_time() -> None:
    rows = hottest(PROFILE)
    assert [(row.name, row.location) for row in rows] == [
        ("run_query", "/srv/app/db.py:40"),
        ("render <items> & co", "/srv/app/views.py:30"),
        ("report_view", "/srv/app/views.py:12"),
    ]
    assert [round(row.self_share, 1) for row in rows] == [75.0, 20.0, 5.0]
    assert sum(row.self_seconds for row in rows) == PROFILE.sampled
    assert rows[2].total_seconds == PROFILE.sampled  # the view is in every stack


def test_speedscope_sampled_profile() -> None:
    document = speedscope(PROFILE, "GET /report")
    assert document["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    frames = document["shared"]["frames"]
    assert frames == [
        {"name": "report_view", "file": "/srv/app/views.py", "line": 12},
        {"name": "run_query", "file": "/srv/app/db.py", "line": 40},
        {"name": "render <items> & co", "file": "/srv/app/views.py", "line": 30},
    ]
    (profile,) = document["profiles"]
    assert profile["type"] == "sampled" and profile["unit"] == "milliseconds"
    assert profile["samples"] == [[0, 1], [0, 2], [0]]  # root first
    assert profile["weights"] == [30.0, 8.0, 2.0]
    assert profile["startValue"] == 0 and profile["endValue"] == 40.0
    json.dumps(document)


def test_request_profile_download_and_both_graphs() -> None:
    result = RequestProfile("GET /report?x=<1>", PROFILE, 0.001)
    assert result.filename == "GET-report-x-1.speedscope.json"
    href = result.speedscope_href()
    prefix = "data:application/json;base64,"
    assert href.startswith(prefix)
    document = json.loads(base64.b64decode(href[len(prefix) :]))
    assert document["name"] == "GET /report?x=<1>"
    assert 'id="profiler-flame-collapsed"' in result.flame(True)
    assert 'id="profiler-flame-full"' in result.flame(False)
