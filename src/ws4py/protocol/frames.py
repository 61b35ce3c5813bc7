"""Opcodes and the frame codec, compiled or pure Python.

The codec functions (``parse_frames``, ``build_frame``, ``apply_mask``,
``utf8_check``, ``utf8_view``) come
from the C module ``ws4py._speedups`` when it is built, else from the
pure-Python twin ``ws4py.protocol._frames_py``; ``WS4PY_PURE_PYTHON=1`` forces
the twin. Callers look them up on this module at call time, so :func:`use`
switches every connection at once (the tests run both this way).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from . import _frames_py

__all__ = [
    "using",
    "Opcode",
    "FIN",
    "RSV1",
    "WHOLE_TEXT",
    "WHOLE_BINARY",
    "LARGE_PAYLOAD",
    "frame_header",
    "header_length",
    "frame_length",
    "apply_mask",
    "utf8_check",
    "build_frame",
    "parse_frames",
    "utf8_view",
    "implementation",
    "available_implementations",
    "use",
]

#: The FIN bit of a frame's first byte: the last frame of a message.
FIN = 0x80
#: The RSV1 bit of a frame's first byte: a compressed message (RFC 7692).
RSV1 = 0x40
#: The first byte of a whole uncompressed text or binary message in one frame (FIN and the opcode).
WHOLE_TEXT = 0x81
#: The first byte of a whole uncompressed binary message in one frame.
WHOLE_BINARY = 0x82
#: Payloads from this size on are worth writing after their header rather than
#: copied into one frame, and an incomplete frame this long gets a receive
#: buffer of its full size.
LARGE_PAYLOAD = 64 * 1024


class Opcode(enum.IntEnum):
    """Frame opcodes of RFC 6455 section 5.2."""

    CONTINUATION = 0x0
    TEXT = 0x1
    BINARY = 0x2
    CLOSE = 0x8
    PING = 0x9
    PONG = 0xA


def frame_header(first_byte: int, length: int) -> bytes:
    """The header of an unmasked frame of ``length`` payload bytes (RFC 6455 5.2)."""
    if length < 126:
        return bytes((first_byte, length))
    if length < 65536:
        return bytes((first_byte, 126)) + length.to_bytes(2, "big")
    return bytes((first_byte, 127)) + length.to_bytes(8, "big")


def header_length(second_byte: int) -> int:
    """The length of a frame's header, masking key included, from its second byte."""
    length = second_byte & 0x7F
    return (2 if length < 126 else (4 if length == 126 else 10)) + (4 if second_byte & 0x80 else 0)


def frame_length(buf: bytes | bytearray | memoryview) -> int:
    """The whole length of the frame starting ``buf``, or 0 while its header is incomplete."""
    if len(buf) < 2:
        return 0
    header = header_length(buf[1])
    if len(buf) < header:
        return 0
    length = buf[1] & 0x7F
    if length == 126:
        length = int.from_bytes(buf[2:4], "big")
    elif length == 127:
        length = int.from_bytes(buf[2:10], "big")
    return header + length


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

#: The frame codec in use: ``"c"`` or ``"python"`` (:func:`use` switches it).
implementation = ""
parse_frames = _frames_py.parse_frames
build_frame = _frames_py.build_frame
apply_mask = _frames_py.apply_mask
utf8_check = _frames_py.utf8_check
utf8_view = _frames_py.utf8_view


def available_implementations() -> list[str]:
    """Names of the codecs this installation has: ``"c"`` (if built) and ``"python"``."""
    return sorted(_IMPLEMENTATIONS)


def use(name: str) -> None:
    """Switch the frame codec of the whole process to ``"c"`` or ``"python"``."""
    global implementation, parse_frames, build_frame, apply_mask, utf8_check, utf8_view
    try:
        module = _IMPLEMENTATIONS[name]
    except KeyError:
        raise ValueError(f"no {name!r} frame codec here; available: {available_implementations()}") from None
    implementation = name
    parse_frames = module.parse_frames
    build_frame = module.build_frame
    apply_mask = module.apply_mask
    utf8_check = module.utf8_check
    utf8_view = module.utf8_view


@contextmanager
def using(name: str) -> Iterator[None]:
    """:func:`use` codec ``name`` for the block, then the one in use before (for tests
    that compare the codecs; the switch is process-wide, so not while other threads parse)."""
    previous = implementation
    use(name)
    try:
        yield
    finally:
        use(previous)


use("python" if os.environ.get("WS4PY_PURE_PYTHON") == "1" or _compiled is None else "c")
