"""Sphinx configuration for the Flask-Observe docs (built with -W in make test)."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "_ext"))
sys.path.insert(0, str(HERE.parent))

from flask_observe import __version__  # noqa: E402 (after the sys.path insert)

project = "Flask-Observe"
#: The one version, ``flask_observe.__version__`` (flit reads the same line for the wheel).
release = __version__
version = ".".join(__version__.split(".")[:2])
author = "Flask-Observe contributors"
copyright = "2026, Flask-Observe contributors"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.doctest",
    "observe_config",
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
nitpicky = False
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path: list[str] = []
