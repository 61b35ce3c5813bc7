"""Sphinx configuration of ws4py's documentation (built by scripts/docs; the suite builds it with -W)."""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent / "src"))

import ws4py  # noqa: E402

project = "ws4py"
author = "the ws4py developers"
copyright = "the ws4py developers"  # noqa: A001 (Sphinx's name)
release = ws4py.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.viewcode",
    "sphinxarg.ext",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
# No intersphinx: the build never touches the network. References to other projects' names
# are left as text; a broken reference to one of ws4py's own names fails the build.
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(?!ws4py\b).*"),  # anything outside ws4py (the standard library, CherryPy, gevent...)
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
html_theme = "furo"
html_title = f"ws4py {release}"
