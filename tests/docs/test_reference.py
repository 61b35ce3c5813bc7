"""Every public name of ws4py has a docstring and an entry in the built reference; 0.6's are marked."""

from __future__ import annotations

import re
import runpy

from docs_support import DOCS, Site, inventory


def _label(entry: dict[str, object]) -> str:
    return f"{entry['module']}.{entry['name']}" if entry["name"] else f"module {entry['module']}"


def test_every_public_name_has_a_docstring(surface: list[dict[str, object]]) -> None:
    assert len(surface) > 300  # the walk found the package (every module, every name)
    missing = [_label(entry) for entry in surface if not str(entry["doc"] or "").strip()]
    assert not missing, "public names without a docstring:\n" + "\n".join(missing)


def test_every_public_name_is_in_the_reference(site: Site, surface: list[dict[str, object]]) -> None:
    assert site.html.returncode == 0, site.html.output
    entries = inventory(site.root)
    missing = []
    for entry in surface:
        names = entry["documented_as"]
        assert isinstance(names, list)
        if entry["name"] is None:
            if entries.get(names[0]) != "py:module":
                missing.append(_label(entry))
        elif not any(name in entries for name in names):
            missing.append(_label(entry))
    assert not missing, "public names missing from docs/reference (automodule them):\n" + "\n".join(missing)


def test_each_ws4py_06_name_is_marked_as_such_in_the_reference(site: Site) -> None:
    conf = runpy.run_path(str(DOCS / "conf.py"))
    names, note = conf["COMPAT06_NAMES"], conf["COMPAT06_NOTE"]
    entries = inventory(site.root)
    pages = {path: path.read_text(encoding="utf-8") for path in (site.root / "reference").glob("*.html")}
    unmarked = []
    for name in sorted(names):
        if name not in entries:
            unmarked.append(f"{name}: not in the reference")
            continue
        # From the name's own entry to the next entry: its docstring, where the note comes first.
        marked = False
        for text in pages.values():
            start = text.find(f'id="{name}"')
            if start != -1:
                following = re.search(r'<dt[^>]*\bid="', text[start + 1 :])
                end = start + 1 + following.start() if following else len(text)
                marked = note in text[start:end]
                break
        if not marked:
            unmarked.append(f"{name}: no note")
    assert not unmarked, "\n".join(unmarked)


def test_the_reference_has_the_command_lines_help(site: Site) -> None:
    text = (site.root / "reference" / "cli.html").read_text(encoding="utf-8")
    for option in ("--log-level", "--workers", "--broker", "--threaded", "--reconnect", "--subprotocol", "--binary"):
        assert option in text, option
    for command in ("serve", "connect", "publish"):
        assert f'id="{command}"' in text or f">{command}<" in text, command
