"""What the documentation tests share: building the site, and reading its sources and its output.

The site is built by Sphinx in a subprocess (as ``scripts/docs`` builds it: warnings are errors),
into a temporary folder, once per session (``conftest.py``). Nothing here uses the network.
"""

from __future__ import annotations

import html.parser
import json
import os
import re
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
TESTS = ROOT / "tests"
#: A build that takes longer than this has hung: the test fails instead of waiting.
BUILD_TIMEOUT = 150.0


@dataclass(frozen=True)
class Build:
    """One ``sphinx-build`` run: its status and what it printed."""

    returncode: int
    output: str


@dataclass(frozen=True)
class Site:
    """The built site: the HTML build, its output folder, and the doctest run on the same sources."""

    html: Build
    root: Path
    doctest: Build


def _env() -> dict[str, str]:
    # The build is not measured by coverage (it would only slow Sphinx down: what autodoc
    # imports, the other tests cover).
    return {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}


def sphinx_build(source: Path, out: Path, doctrees: Path, builder: str = "html", *extra: str) -> Build:
    """``sphinx-build -W --keep-going -b BUILDER`` of ``source`` into ``out``, bounded in time."""
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", builder, "-d", str(doctrees)]
    proc = subprocess.run(
        [*command, *extra, str(source), str(out)],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        env=_env(),
        cwd=ROOT,
    )
    return Build(proc.returncode, proc.stdout + proc.stderr)


def public_surface() -> list[dict[str, object]]:
    """ws4py's public names, as ``public_surface.py`` finds them in a process of its own."""
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("public_surface.py"))],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
        cwd=ROOT,
        check=True,
    )
    result: list[dict[str, object]] = json.loads(proc.stdout)
    return result


# --- the sources -------------------------------------------------------------------------------

#: Languages (and Sphinx's directives naming one) that make a code block Python.
PYTHON_LANGUAGES = frozenset({"python", "py", "python3", "py3", "pycon", "ipython", "ipython3"})
CODE_DIRECTIVES = frozenset({"code-block", "code", "sourcecode", "code-cell"})
# A block with no language is highlighted as Python by Sphinx: it counts when it looks like Python.
_LOOKS_LIKE_PYTHON = re.compile(
    r"^\s*(>>>|import \w|from [\w.]+ import |def \w|async def \w|class \w+.*:\s*$|await )", re.M
)


@dataclass(frozen=True)
class CodeBlock:
    """A code block of a page: where it is, what it says it is, and its text."""

    page: Path
    line: int
    kind: str  # "python" (a pasted block), "include" (a literalinclude), or another language
    argument: str
    text: str


def _fence_blocks(page: Path, text: str) -> list[CodeBlock]:
    from markdown_it import MarkdownIt  # MyST-Parser's own Markdown parser

    blocks: list[CodeBlock] = []
    for token in MarkdownIt("commonmark").parse(text):
        if token.type not in ("fence", "code_block"):
            continue
        line = token.map[0] + 1 if token.map else 0
        info = token.info.strip() if token.type == "fence" else ""
        blocks.extend(_classify(page, line, info, token.content))
    # Colon fences (:::{directive} argument): MyST's extension, not CommonMark.
    for match in re.finditer(r"^(:{3,})\{([\w-]+)\}[ \t]*(.*)$", text, re.M):
        line = text.count("\n", 0, match.start()) + 1
        blocks.extend(_classify(page, line, f"{{{match[2]}}} {match[3]}", ""))
    return blocks


def _classify(page: Path, line: int, info: str, content: str) -> list[CodeBlock]:
    directive = re.fullmatch(r"\{([\w:-]+)\}\s*(.*)", info)
    if directive is None:
        language = info.split()[0].lower() if info else ""
        if language in PYTHON_LANGUAGES or (not language and _LOOKS_LIKE_PYTHON.search(content)):
            return [CodeBlock(page, line, "python", language, content)]
        return [CodeBlock(page, line, language or "text", "", content)]
    name, argument = directive[1], directive[2].strip()
    if name == "eval-rst":
        return [
            CodeBlock(page, line + block.line, block.kind, block.argument, block.text)
            for block in _rst_blocks(page, content)
        ]
    if name == "literalinclude":
        return [CodeBlock(page, line, "include", argument, content)]
    if name in CODE_DIRECTIVES:
        language = argument.split()[0].lower() if argument else ""
        body = _strip_options(content)
        if language in PYTHON_LANGUAGES or (not language and _LOOKS_LIKE_PYTHON.search(body)):
            return [CodeBlock(page, line, "python", language, body)]
        return [CodeBlock(page, line, language or "text", "", body)]
    return [CodeBlock(page, line, name, argument, content)]  # doctest, testcode, admonitions...


def _strip_options(content: str) -> str:
    return "\n".join(line for line in content.splitlines() if not re.match(r"\s*:[\w-]+:", line))


def _rst_blocks(page: Path, text: str) -> list[CodeBlock]:
    blocks: list[CodeBlock] = []
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        directive = re.match(r"\s*\.\. ([\w:-]+)::\s*(.*)$", line)
        body = _indented_after(lines, number)
        if directive:
            name, argument = directive[1], directive[2].strip()
            if name == "literalinclude":
                blocks.append(CodeBlock(page, number, "include", argument, body))
            elif name in CODE_DIRECTIVES:
                language = argument.split()[0].lower() if argument else ""
                stripped = _strip_options(body)
                python = language in PYTHON_LANGUAGES or (not language and _LOOKS_LIKE_PYTHON.search(stripped))
                blocks.append(CodeBlock(page, number, "python" if python else language, language, stripped))
        elif line.rstrip().endswith("::") and _LOOKS_LIKE_PYTHON.search(body):
            # A literal block (highlighted as Python by default); ">>>" paragraphs outside one
            # are doctest blocks, which sphinx.ext.doctest runs.
            blocks.append(CodeBlock(page, number, "python", "", body))
    return blocks


def _indented_after(lines: list[str], number: int) -> str:
    """The indented block that follows line ``number`` (1-based), options included."""
    body: list[str] = []
    for line in lines[number:]:
        if line.strip() and not line.startswith((" ", "\t")):
            break
        body.append(line)
    return "\n".join(body)


def pages() -> list[Path]:
    """Every page of the site's sources (Markdown and reStructuredText)."""
    found = [p for p in DOCS.rglob("*") if p.suffix in (".md", ".rst") and "_build" not in p.parts]
    return sorted(found)


def code_blocks(page: Path) -> list[CodeBlock]:
    """The code blocks of one page."""
    text = page.read_text(encoding="utf-8")
    return _fence_blocks(page, text) if page.suffix == ".md" else _rst_blocks(page, text)


def included_path(block: CodeBlock) -> Path:
    """The file a literalinclude names (relative to its page, or to docs/ with a leading /)."""
    argument = block.argument
    base = DOCS if argument.startswith("/") else block.page.parent
    return (base / argument.lstrip("/")).resolve()


def run_by_a_test(example: Path) -> bool:
    """Whether a test under tests/ names the example file (its path, its module, or its parts)."""
    relative = example.relative_to(EXAMPLES)
    spellings = [relative.as_posix(), ".".join(("examples", *relative.with_suffix("").parts))]
    if len(relative.parts) == 1:
        spellings.append(f'"{relative.name}"')
    else:
        spellings.append(" / ".join(f'"{part}"' for part in relative.parts))
    for test in TESTS.rglob("*.py"):
        if test.is_relative_to(TESTS / "docs"):
            continue
        source = test.read_text(encoding="utf-8")
        if any(spelling in source for spelling in spellings):
            return True
    return False


# --- the built site ----------------------------------------------------------------------------


class _Page(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, str]] = []  # (attribute, value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (name == "name" and tag == "a"):
                self.ids.add(value)
            elif name in ("href", "src"):
                self.links.append((name, value))


def read_page(path: Path) -> _Page:
    """The ids and the links of one built HTML page."""
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def broken_links(html_root: Path) -> list[str]:
    """Every relative href or src of the built site that names no built file or no anchor in it."""
    parsed: dict[Path, _Page] = {}

    def page(path: Path) -> _Page:
        if path not in parsed:
            parsed[path] = read_page(path)
        return parsed[path]

    problems: list[str] = []
    for source in sorted(html_root.rglob("*.html")):
        for attribute, value in page(source).links:
            split = urlsplit(value)
            if split.scheme or split.netloc or value.startswith(("mailto:", "data:", "javascript:")):
                continue  # outside the site: not checked (no network)
            target_path, fragment = urldefrag(value)
            target_path = unquote(urlsplit(target_path).path)
            target = (source.parent / target_path).resolve() if target_path else source
            where = f"{source.relative_to(html_root)}: {attribute}={value!r}"
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                problems.append(f"{where}: no such file")
            elif fragment and target.suffix == ".html" and unquote(fragment) not in page(target).ids:
                problems.append(f"{where}: no anchor #{fragment} in {target.relative_to(html_root)}")
    return problems


def inventory(html_root: Path) -> dict[str, str]:
    """The names of objects.inv (Sphinx's inventory, version 2): name -> domain:role."""
    data = (html_root / "objects.inv").read_bytes()
    lines = data.split(b"\n", 4)
    assert lines[0].startswith(b"# Sphinx inventory version 2"), lines[0]
    body = zlib.decompress(lines[4]).decode("utf-8")
    entries: dict[str, str] = {}
    for line in body.splitlines():
        match = re.match(r"(.+?)\s+(\S+:\S+)\s+(-?\d+)\s+(\S*)\s+(.*)", line)
        if match:
            entries.setdefault(match[1], match[2])
    return entries
