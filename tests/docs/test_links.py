"""Every link inside the built site leads to a built file, and to an anchor that exists in it."""

from __future__ import annotations

from docs_support import Site, broken_links


def test_every_relative_link_of_the_site_resolves(site: Site) -> None:
    assert site.html.returncode == 0, site.html.output
    problems = broken_links(site.root)
    assert not problems, "\n".join(problems)
