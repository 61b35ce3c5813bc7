"""The documentation site, built once per session into a temporary folder (HTML, then doctests)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from docs_support import DOCS, Site, public_surface, sphinx_build


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    base = tmp_path_factory.mktemp("docs")
    doctrees = base / "doctrees"
    html = sphinx_build(DOCS, base / "html", doctrees, "html")
    # The doctest builder reuses the doctrees the HTML build left: it only runs the examples.
    doctest = sphinx_build(DOCS, base / "doctest", doctrees, "doctest")
    return Site(html, base / "html", doctest)


@pytest.fixture(scope="session")
def surface() -> list[dict[str, object]]:
    return public_surface()
