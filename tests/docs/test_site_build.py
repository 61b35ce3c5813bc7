"""The site builds with warnings as errors, its doctests pass, and a broken reference fails it."""

from __future__ import annotations

from pathlib import Path

from docs_support import DOCS, Site, sphinx_build


def test_the_site_builds_with_warnings_as_errors(site: Site) -> None:
    assert site.html.returncode == 0, site.html.output
    assert (site.root / "index.html").is_file()


def test_the_doctests_of_the_pages_pass(site: Site) -> None:
    assert site.doctest.returncode == 0, site.doctest.output
    results = (site.root.parent / "doctest" / "output.txt").read_text(encoding="utf-8")
    assert " 0 failures in tests" in results and "0 failures in setup code" in results, results


def test_a_reference_to_a_ws4py_name_that_does_not_exist_fails_the_build(tmp_path: Path) -> None:
    # The site's own configuration (nitpicky, -W) on a one-page site with one broken reference.
    source = tmp_path / "source"
    source.mkdir()
    (source / "conf.py").write_text(
        f"import runpy\nglobals().update(runpy.run_path({str(DOCS / 'conf.py')!r}))\n",
        encoding="utf-8",
    )
    (source / "index.md").write_text("# Broken\n\nSee {py:class}`ws4py.websocket.NoSuchWebSocket`.\n", encoding="utf-8")
    build = sphinx_build(source, tmp_path / "html", tmp_path / "doctrees")
    assert build.returncode != 0
    assert "ws4py.websocket.NoSuchWebSocket" in build.output, build.output
