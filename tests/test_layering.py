"""Layering rules of DESIGN.md that the import contracts (pyproject.toml, `lint-imports`) do not check.

Read from the source of src/ws4py with ``ast``; every import counts, at the top of a module,
inside a function or under ``if TYPE_CHECKING:``.

- No module uses another module's ``_private`` names: it does not import one
  (``from ws4py.x import _y``, ``from .x import _y``), reach one as an attribute of a module
  object (``frames._impl``, ``getattr(frames, "_impl")``), or touch a ``_private`` attribute
  that only other ws4py modules define (``websocket._out`` in the manager). Dunder names are
  public; a ``_private`` module may be imported inside the package that contains it
  (``ws4py.protocol._frames_py`` by ``ws4py.protocol.*``). The last rule is a heuristic: an
  attribute counts as a module's own when that module assigns it on ``self``/``cls`` or
  defines it in a class body, so a name that two modules both define is not caught.
- No import cycle between modules, a package's ``__init__`` included (import-linter's
  ``acyclic_siblings`` contract sees cycles between siblings, not those through a parent).
- ``import ws4py.protocol`` loads no socket, thread, event loop, logging or upper-layer module,
  counting what the package root ``ws4py/__init__.py`` loads on the way.

Today's violations are listed below as known; each list fails when an entry is no longer
found, so the seam refactor (issue 16) deletes entries as it removes them.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

# --- Known violations: none. An entry here needs a reason next to it; the tests fail on an
# entry that no longer matches, as on a use that is not listed. Each is (importing module, what
# it uses).

#: ``from <module> import _name`` of another module's private name.
KNOWN_PRIVATE_IMPORTS: frozenset[tuple[str, str]] = frozenset()
#: ``module._name`` or ``getattr(module, "_name")`` on another ws4py module object.
KNOWN_PRIVATE_MODULE_ATTRIBUTES: frozenset[tuple[str, str]] = frozenset()
#: ``obj._name`` where ``_name`` is defined by other ws4py modules only (not ``self``/``cls``).
KNOWN_PRIVATE_ATTRIBUTES: frozenset[tuple[str, str]] = frozenset(
    {
        # 0.6's get_connection(): the socket the standard library's socket.SocketIO keeps as
        # _sock (no public name has it), not the _sock of ws4py.server.wsgirefserver's class.
        ("ws4py.compat", "_sock"),
    }
)
#: Modules that ``import ws4py.protocol`` loads and should not (through the package root).
KNOWN_CORE_IMPORT_LOADS: frozenset[str] = frozenset()
# --- end of known violations ----------------------------------------------------------------

#: What the core must not load at import: I/O, threads, event loops, logging, upper layers.
FORBIDDEN_FOR_THE_CORE = (
    "socket",
    "ssl",
    "select",
    "selectors",
    "threading",
    "queue",
    "asyncio",
    "logging",
    "ws4py.messaging",
    "ws4py.classic",
    "ws4py.websocket",
    "ws4py.manager",
    "ws4py.client",
    "ws4py.channel",
    "ws4py.loop",
    "ws4py.pollers",
    "ws4py.sockio",
    "ws4py.asyncio",
    "ws4py.async_websocket",
    "ws4py.server",
)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@dataclass
class Module:
    name: str
    where: str  # the file, as src/ws4py/...
    is_package: bool
    tree: ast.Module | None  # None for a compiled module known by its .pyi stub


@dataclass
class Package:
    """Every module under one root package, parsed."""

    modules: dict[str, Module] = field(default_factory=dict)

    @classmethod
    def load(cls, src: Path, root: str) -> Package:
        package = cls()
        for path in sorted((src / root).rglob("*.py*")):
            if path.suffix not in (".py", ".pyi") or "__pycache__" in path.parts:
                continue
            parts = list(path.relative_to(src).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            name = ".".join(parts)
            where = str(path.relative_to(src.parent))
            if path.suffix == ".pyi":  # a compiled module (ws4py._speedups): a leaf
                package.modules.setdefault(name, Module(name, where, False, None))
            else:
                package.modules[name] = Module(name, where, is_package, ast.parse(path.read_text(), where))
        return package

    def parsed(self) -> Iterator[tuple[Module, ast.Module]]:
        for module in self.modules.values():
            if module.tree is not None:
                yield module, module.tree

    def base_of(self, module: Module, node: ast.ImportFrom) -> str:
        """The absolute name of what ``from <base> import ...`` names."""
        if not node.level:
            return node.module or ""
        parts = module.name.split(".")
        if not module.is_package:
            parts.pop()
        if node.level > 1:
            parts = parts[: len(parts) - (node.level - 1)]
        return ".".join([*parts, node.module] if node.module else parts)

    def imports(self, module: Module, tree: ast.Module) -> Iterator[tuple[ast.ImportFrom | ast.Import, str, str]]:
        """``(node, module imported, name imported from it or "")`` for every import of ours."""
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in self.modules:
                        yield node, alias.name, ""
            elif isinstance(node, ast.ImportFrom):
                base = self.base_of(module, node)
                if base not in self.modules:
                    continue
                for alias in node.names:
                    if f"{base}.{alias.name}" in self.modules:
                        yield node, f"{base}.{alias.name}", ""
                    else:
                        yield node, base, alias.name

    def module_bindings(self, module: Module, tree: ast.Module) -> dict[str, str]:
        """Names bound to one of our modules in ``module`` (any scope; shadowing ignored)."""
        bound: dict[str, str] = {}
        for node, imported, name in self.imports(module, tree):
            if name:
                continue
            for alias in node.names:
                if isinstance(node, ast.Import):
                    if alias.asname:
                        bound[alias.asname] = imported
                    else:
                        top = alias.name.split(".")[0]
                        bound[top] = top
                elif imported.endswith("." + alias.name):
                    bound[alias.asname or alias.name] = imported
        return bound


def _private_submodule_allowed(importer: str, imported: str) -> bool:
    """A ``_private`` module may be used inside the package that contains it."""
    parts = imported.split(".")
    for i, part in enumerate(parts):
        if _is_private(part):
            container = ".".join(parts[:i])
            if not (importer == container or importer.startswith(container + ".")):
                return False
    return True


def private_imports(package: Package) -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for module, tree in package.parsed():
        for node, imported, name in package.imports(module, tree):
            where = f"{module.where}:{node.lineno}"
            if name and _is_private(name):
                found.setdefault((module.name, f"{imported}.{name}"), []).append(where)
            elif not name and not _private_submodule_allowed(module.name, imported):
                found.setdefault((module.name, imported), []).append(where)
    return found


def _module_of(package: Package, bound: dict[str, str], node: ast.expr) -> str | None:
    """The module an expression such as ``ws4py.protocol.frames`` or ``_frames`` stands for."""
    if isinstance(node, ast.Name):
        return bound.get(node.id)
    if isinstance(node, ast.Attribute):
        parent = _module_of(package, bound, node.value)
        if parent is not None and f"{parent}.{node.attr}" in package.modules:
            return f"{parent}.{node.attr}"
    return None


def _attribute_uses(tree: ast.Module) -> Iterator[tuple[ast.expr, str, int]]:
    """``(object, attribute name, line)`` for ``obj.attr`` and ``getattr/setattr/hasattr/delattr(obj, "attr")``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            yield node.value, node.attr, node.lineno
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr", "delattr")
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            yield node.args[0], node.args[1].value, node.lineno


def private_module_attributes(package: Package) -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for module, tree in package.parsed():
        bound = package.module_bindings(module, tree)
        for obj, attr, line in _attribute_uses(tree):
            if not _is_private(attr):
                continue
            owner = _module_of(package, bound, obj)
            if owner is None or owner == module.name:
                continue
            if f"{owner}.{attr}" in package.modules and _private_submodule_allowed(module.name, f"{owner}.{attr}"):
                continue
            where = f"{module.where}:{line}"
            found.setdefault((module.name, f"{owner}.{attr}"), []).append(where)
    return found


def _own_attributes(tree: ast.Module) -> set[str]:
    """Attributes a module defines: assigned on ``self``/``cls``, or in a class body."""
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    own.add(item.name)
                elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                    targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                    own.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) and _is_self(node.value):
            own.add(node.attr)
    return own


def _is_self(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls")
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def private_attributes(package: Package) -> dict[tuple[str, str], list[str]]:
    own = {module.name: _own_attributes(tree) for module, tree in package.parsed()}
    found: dict[tuple[str, str], list[str]] = {}
    for module, tree in package.parsed():
        bound = package.module_bindings(module, tree)
        for obj, attr, line in _attribute_uses(tree):
            if not _is_private(attr) or attr in own[module.name] or _is_self(obj):
                continue
            if _module_of(package, bound, obj) is not None:
                continue  # an attribute of a module object: private_module_attributes
            owners = sorted(name for name, attributes in own.items() if attr in attributes)
            if owners:
                where = f"{module.where}:{line} (defined in {', '.join(owners)})"
                found.setdefault((module.name, attr), []).append(where)
    return found


def import_cycles(package: Package, ignored: set[tuple[str, str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), without the ``ignored`` edges."""
    edges: dict[str, set[str]] = {name: set() for name in package.modules}
    for module, tree in package.parsed():
        for _, imported, _ in package.imports(module, tree):
            if imported != module.name and (module.name, imported) not in ignored:
                edges[module.name].add(imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for name in sorted(edges):
        if name not in index:
            visit(name)
    return groups


def _known_cycle_edges() -> set[tuple[str, str]]:
    """The ``ignore_imports`` of the ``acyclic`` import contract: one list of known cycles for both checks."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["id"] == "acyclic"]
    edges = set()
    for expression in contract.get("ignore_imports", []):
        importer, imported = (part.strip() for part in expression.split("->"))
        edges.add((importer, imported))
    return edges


def _compare(found: dict[tuple[str, str], list[str]], known: frozenset[tuple[str, str]], what: str) -> None:
    new = {key: where for key, where in found.items() if key not in known}
    gone = sorted(known - set(found))
    message = []
    if new:
        message.append(f"{what}, not allowed (DESIGN: no module uses another module's _private names):")
        for (importer, used), where in sorted(new.items()):
            message.append(f"  {importer} uses {used}: {'; '.join(sorted(set(where)))}")
    if gone:
        message.append(f"{what}: no longer found, delete from the known list in tests/test_layering.py:")
        message += [f"  {entry}" for entry in gone]
    assert not message, "\n".join(message)


PACKAGE = Package.load(SRC, "ws4py")


def test_the_source_is_found() -> None:
    assert {"ws4py", "ws4py.protocol.connection", "ws4py._speedups", "ws4py.asyncio.endpoint"} <= set(PACKAGE.modules)


def test_no_module_imports_a_private_name_of_another_module() -> None:
    _compare(private_imports(PACKAGE), KNOWN_PRIVATE_IMPORTS, "private names imported from another module")


def test_no_module_reaches_a_private_attribute_of_another_module_object() -> None:
    found = private_module_attributes(PACKAGE)
    _compare(found, KNOWN_PRIVATE_MODULE_ATTRIBUTES, "private attributes of another module object")


def test_no_module_touches_private_attributes_that_only_other_modules_define() -> None:
    _compare(private_attributes(PACKAGE), KNOWN_PRIVATE_ATTRIBUTES, "private attributes of another module's objects")


def test_no_import_cycles_between_modules_packages_included() -> None:
    known = _known_cycle_edges()
    cycles = import_cycles(PACKAGE, known)
    assert not cycles, "import cycles, each group's modules import one another round:\n" + "\n".join(map(str, cycles))
    # Each known edge still closes a cycle: once one is gone, its line goes from pyproject.toml.
    for edge in sorted(known):
        assert import_cycles(PACKAGE, known - {edge}), f"{edge} no longer closes a cycle: delete it from ignore_imports"


def test_importing_the_core_loads_nothing_above_it() -> None:
    code = (
        "import sys; before = set(sys.modules); import ws4py.protocol\n"
        "print('\\n'.join(sorted(set(sys.modules) - before)))"
    )
    # Without coverage's start-up hook: measuring loads threading and more before the import.
    env = {key: value for key, value in os.environ.items() if not key.startswith("COVERAGE_")}
    out = subprocess.run([sys.executable, "-I", "-c", code], env=env, capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    forbidden = {m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN_FOR_THE_CORE)}
    assert "ws4py.protocol.connection" in loaded
    assert not forbidden - KNOWN_CORE_IMPORT_LOADS, f"import ws4py.protocol loads {sorted(forbidden)}"
    assert not KNOWN_CORE_IMPORT_LOADS - forbidden, (
        f"no longer loaded, delete from KNOWN_CORE_IMPORT_LOADS: {sorted(KNOWN_CORE_IMPORT_LOADS - forbidden)}"
    )


# -- the checks themselves, on a small made-up package ------------------------------------------

FIXTURE = {
    "pkg/__init__.py": "from .a import helper\n",
    "pkg/_compiled.pyi": "def f() -> None: ...\n",
    "pkg/a.py": (
        "from . import _compiled\n"  # a private module, inside its package: allowed
        "from .b import _SECRET, PUBLIC, __version__\n"
        "from . import b\n"
        "import pkg.b as bee\n"
        "def helper(x):\n"
        "    from .sub import _hidden\n"  # a lazy import counts
        "    x._state = 1\n"  # set on another object, defined only by b: a touch
        "    getattr(bee, '_impl')\n"
        "    return b._impl, b.PUBLIC, x._mine\n"
        "class A:\n"
        "    def __init__(self):\n"
        "        self._mine = 0\n"
    ),
    "pkg/b.py": (
        "_SECRET = 1\nPUBLIC = 2\n__version__ = '1'\n_impl = 3\n"
        "class B:\n"
        "    def __init__(self):\n"
        "        self._state = 0\n"
        "    def f(self):\n"
        "        from . import helper\n"  # a cycle through the package's __init__, in a function
        "        return self._state, super()._state\n"
    ),
    "pkg/sub/__init__.py": "",
    "pkg/sub/_hidden.py": "",
    "pkg/sub/c.py": "from pkg import helper\n",
}


def _fixture(tmp_path: Path) -> Package:
    for name, text in FIXTURE.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return Package.load(tmp_path, "pkg")


def test_the_checks_find_what_they_look_for(tmp_path: Path) -> None:
    package = _fixture(tmp_path)
    assert set(private_imports(package)) == {("pkg.a", "pkg.b._SECRET"), ("pkg.a", "pkg.sub._hidden")}
    assert set(private_module_attributes(package)) == {("pkg.a", "pkg.b._impl")}
    assert set(private_attributes(package)) == {("pkg.a", "_state")}
    assert import_cycles(package, set()) == [["pkg", "pkg.a", "pkg.b"]]
    assert import_cycles(package, {("pkg.b", "pkg")}) == []
