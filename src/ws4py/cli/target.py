"""``MODULE:ATTR``: import the application ``serve`` runs, with a clear error for every way it goes wrong."""

from __future__ import annotations

import importlib
import sys
import traceback
from typing import Any

from .errors import CliError

__all__ = ["load"]


def load(spec: str) -> Any:
    """Import ``MODULE`` and return its attribute ``ATTR`` (dotted names allowed on both sides).

    The current directory is searched first, as ``python -m`` does, so
    ``examples.chat.app:ChatApp`` works from the repository's root. Raises
    :class:`CliError` naming what is missing: the colon, the module (or a module
    it imports), or the attribute; an application that fails while it is
    imported gets its traceback printed before the error.
    """
    module_name, colon, attr = spec.partition(":")
    if not colon or not module_name or not attr:
        raise CliError(f"expected MODULE:ATTR (such as myapp:handler), got {spec!r}")
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # the current directory, as `python -m` and `python -c` have it
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise CliError(
                f"cannot import {module_name!r}: no module named {exc.name!r} (run from the right directory?)"
            ) from None
        traceback.print_exc()
        raise CliError(f"importing {module_name!r} failed: {exc}") from None
    except Exception as exc:
        traceback.print_exc()
        raise CliError(f"importing {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    value: Any = module
    for part in attr.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise CliError(f"module {module_name!r} has no attribute {attr!r}") from None
    return value
