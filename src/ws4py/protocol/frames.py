"""Opcodes and the frame codec, compiled or pure Python.

The codec functions (``parse_frames``, ``build_frame``, ``apply_mask``) come
from the C module ``ws4py._speedups`` when it is built, else from the
pure-Python twin ``ws4py.protocol._frames_py``; ``WS4PY_PURE_PYTHON=1`` forces
the twin. Callers look them up on this module at call time, so :func:`use`
switches every connection at once (the tests run both this way).
"""

from __future__ import annotations

import enum
import os
from types import ModuleType

from . import _frames_py

__all__ = [
    "Opcode",
    "FIN",
    "RSV1",
    "apply_mask",
    "utf8_check",
    "build_frame",
    "parse_frames",
    "implementation",
    "available_implementations",
    "use",
]

FIN = 0x80
RSV1 = 0x40


class Opcode(enum.IntEnum):
    """Frame opcodes of RFC 6455 section 5.2."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


def _load_compiled() -> ModuleType | None:
    try:
        from .. import _speedups
    except ImportError:
        return None
    return _speedups  # type: ignore[no-any-return]


_IMPLEMENTATIONS: dict[str, ModuleType] = {"python": _frames_py}
_compiled = _load_compiled()
if _compiled is not None:
    _IMPLEMENTATIONS["c"] = _compiled

implementation = ""
parse_frames = _frames_py.parse_frames
build_frame = _frames_py.build_frame
apply_mask = _frames_py.apply_mask
utf8_check = _frames_py.utf8_check


def available_implementations() -> list[str]:
    """Names of the codecs this installation has: ``"c"`` (if built) and ``"python"``."""
    return sorted(_IMPLEMENTATIONS)


def use(name: str) -> None:
    """Switch the frame codec of the whole process to ``"c"`` or ``"python"``."""
    global implementation, parse_frames, build_frame, apply_mask, utf8_check
    try:
        module = _IMPLEMENTATIONS[name]
    except KeyError:
        raise ValueError(f"no {name!r} frame codec here; available: {available_implementations()}") from None
    implementation = name
    parse_frames = module.parse_frames
    build_frame = module.build_frame
    apply_mask = module.apply_mask
    utf8_check = module.utf8_check


use("python" if os.environ.get("WS4PY_PURE_PYTHON") == "1" or _compiled is None else "c")
