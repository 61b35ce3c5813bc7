"""Print ws4py's public surface as JSON: every public module, every public name of each.

Run in a process of its own (tests/docs imports nothing of gevent, CherryPy... into pytest's).
A module is public unless a part of its name starts with ``_``; its public names are its
``__all__``, or, without one, the classes and functions it defines whose names do not start
with ``_``. For each name: where it is defined (a re-export is documented where it is defined),
and its docstring (a class's or a function's own; for data, the ``#:`` comment or the string
after the assignment, as Sphinx's autodoc reads them).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import json
import pkgutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from sphinx.pycode import ModuleAnalyzer

import ws4py


def public_modules() -> list[str]:
    names = ["ws4py"]
    for info in pkgutil.walk_packages(ws4py.__path__, "ws4py."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def public_names(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isroutine(value))
        and getattr(value, "__module__", None) == module.__name__
    ]


def imported_from(module: ModuleType, name: str) -> str | None:
    """The ws4py module ``name`` is imported from in ``module``'s source, if it is."""
    source = Path(module.__file__ or "")
    if source.suffix != ".py":
        return None
    package = module.__name__ if source.name == "__init__.py" else module.__name__.rpartition(".")[0]
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            return target if target.startswith("ws4py") else None
    return None


def defined_in(module: ModuleType, name: str) -> str:
    """The module where ``module.name`` is defined (following re-exports within ws4py)."""
    origin = imported_from(module, name)
    while origin is not None:
        target = importlib.import_module(origin)
        if getattr(target, name, None) is not getattr(module, name):
            break  # imported under another name: documented here
        module, origin = target, imported_from(target, name)
    return module.__name__


def own_docstring(value: Any) -> str | None:
    if inspect.isclass(value):
        doc = value.__dict__.get("__doc__")
        generated = dataclasses.is_dataclass(value) or hasattr(value, "_fields")
        if generated and doc and doc.startswith(value.__name__ + "("):
            return None  # the signature dataclasses and namedtuples write in place of a missing docstring
        if doc in ("An enumeration.",):
            return None
        return doc if isinstance(doc, str) else None
    doc = getattr(value, "__doc__", None)
    return doc if isinstance(doc, str) else None


def attribute_doc(module_name: str, name: str) -> str | None:
    docs = ModuleAnalyzer.for_module(module_name).find_attr_docs()
    lines = docs.get(("", name))
    return "\n".join(lines) if lines else None


def main() -> None:
    surface: list[dict[str, object]] = []
    for module_name in public_modules():
        module = importlib.import_module(module_name)
        surface.append({"module": module_name, "name": None, "doc": module.__doc__, "documented_as": [module_name]})
        for name in public_names(module):
            value = getattr(module, name)
            home = defined_in(module, name)
            routine_or_class = inspect.isclass(value) or inspect.isroutine(value)
            if routine_or_class:
                doc = own_docstring(value)
            else:
                doc = attribute_doc(home, name) or attribute_doc(module_name, name)
            documented_as = [f"{module_name}.{name}", f"{home}.{name}"]
            qualified = f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', '')}"
            if routine_or_class and qualified.startswith("ws4py."):
                documented_as.append(qualified)
            surface.append({"module": module_name, "name": name, "doc": doc, "documented_as": documented_as})
    json.dump(surface, sys.stdout)


if __name__ == "__main__":
    main()
