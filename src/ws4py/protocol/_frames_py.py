"""Pure-Python frame codec: the twin of the C module ``ws4py._speedups``.

Both modules export the same five functions with the same behaviour, byte for
byte and error for error; ``tests/core`` runs every test against both. Keep
them in step: a change here is a change in ``src/ws4py/_speedups.c`` too.

``parse_frames(buf, pos, expect_mask, allowed_rsv, max_frame_size, ascii_text_as_str=False)``
    Parses every complete frame of ``buf`` from offset ``pos``. Returns
    ``(frames, pos, error)``: ``frames`` is a list of ``(first_byte, payload)``
    pairs with the payload unmasked, ``pos`` where the first incomplete frame
    starts, and ``error`` ``None`` or a ``(close_code, reason)`` pair for the
    frame at ``pos`` that broke a framing rule. Frames before a bad one are
    still returned, so no valid data is lost. A frame's length is checked
    against ``max_frame_size`` from its header alone, before its payload is
    waited for, so a header that claims 2**63-1 bytes never allocates.
    The payload of a whole uncompressed text frame (first byte ``0x81``) is
    validated UTF-8, checked in the pass that unmasks it (ASCII costs no other
    pass): a frame that is not is the error ``(1007, "invalid UTF-8 in a text
    message")``. With ``ascii_text_as_str`` such a payload that is all ASCII
    comes as ``str``, made by that same pass.

``build_frame(first_byte, payload, mask_key)``
    Serialises one frame; ``payload`` is bytes-like, or a ``str`` framed as
    its UTF-8 (the C codec frames an ASCII ``str`` from its own data, with no
    encoded copy); ``mask_key`` is 4 bytes or ``None``.

``utf8_view(text)``
    The UTF-8 of ``text``, to write after a frame header: the C codec gives
    an ASCII ``str``'s own data as a read-only ``memoryview`` (no copy; the
    view keeps the ``str`` alive), this twin ``text.encode()``.

``apply_mask(data, mask_key)``
    XORs ``data`` with the repeated 4-byte key (masking and unmasking).

``utf8_check(data, state, mask_key=None, phase=0)``
    Validates ``data`` as the continuation of UTF-8 text that left ``state``
    (0 at the start of a text), unmasked with ``mask_key`` rotated by
    ``phase`` when given. Returns the new state, 0 when ``data`` ends on a
    character boundary, or -1 as soon as no valid text can have these bytes.
    A state packs the incomplete sequence the text ended with: ``(count << 24)
    | first byte << 16 | second << 8 | third``.
"""

from __future__ import annotations

import codecs
from typing import Final, Literal

_BIG: Final[Literal["big"]] = "big"
_LITTLE: Final[Literal["little"]] = "little"
# _XOR_TABLES[k] maps every byte b to b ^ k, for bytes.translate.
_XOR_TABLES = [bytes(b ^ k for b in range(256)) for k in range(256)]
_TRANSLATE_FROM = 2048
#: The reason of the 1007 error for a whole text frame that is not UTF-8.
INVALID_TEXT = "invalid UTF-8 in a text message"


def apply_mask(data: bytes | bytearray | memoryview, mask_key: bytes) -> bytes:
    """Return ``data`` XORed with the repeated 4-byte ``mask_key``."""
    if len(mask_key) != 4:
        raise ValueError("mask_key must be 4 bytes")
    n = len(data)
    if n < _TRANSLATE_FROM:
        if n == 0:
            return b""
        # One big-integer XOR runs at C speed; a per-byte loop would not.
        key = (mask_key * ((n >> 2) + 1))[:n]
        return (int.from_bytes(data, _LITTLE) ^ int.from_bytes(key, _LITTLE)).to_bytes(n, _LITTLE)
    # Large payloads: each of the four byte lanes is a constant XOR, which
    # translate() does faster than big integers (whose conversions are slow).
    data = bytes(data)
    out = bytearray(data)
    for lane in range(4):
        out[lane::4] = data[lane::4].translate(_XOR_TABLES[mask_key[lane]])
    return bytes(out)


def parse_frames(
    buf: bytes | bytearray | memoryview,
    pos: int,
    expect_mask: bool,
    allowed_rsv: int,
    max_frame_size: int,
    ascii_text_as_str: bool = False,
) -> tuple[list[tuple[int, bytes | str]], int, tuple[int, str] | None]:
    frames: list[tuple[int, bytes | str]] = []
    end = len(buf)
    if not 0 <= pos <= end:
        raise ValueError("pos out of range")  # as the C codec says it
    while end - pos >= 2:
        b0 = buf[pos]
        b1 = buf[pos + 1]
        if b0 & 0x70 & ~allowed_rsv:
            return frames, pos, (1002, "reserved bits must be 0")
        opcode = b0 & 0x0F
        if opcode > 0xA or 2 < opcode < 8:
            return frames, pos, (1002, f"reserved opcode {opcode:#x}")
        masked = b1 & 0x80
        if bool(masked) != bool(expect_mask):
            if expect_mask:
                return frames, pos, (1002, "a client must mask its frames")
            return frames, pos, (1002, "a server must not mask its frames")
        length = b1 & 0x7F
        header = 2
        if opcode & 0x08:
            if not b0 & 0x80:
                return frames, pos, (1002, "control frames must not be fragmented")
            if length > 125:
                return frames, pos, (1002, "control frame payload over 125 bytes")
        elif length == 126:
            if end - pos < 4:
                break
            length = (buf[pos + 2] << 8) | buf[pos + 3]
            header = 4
        elif length == 127:
            if end - pos < 10:
                break
            length = int.from_bytes(buf[pos + 2 : pos + 10], _BIG)
            if length >> 63:
                return frames, pos, (1002, "frame length has its most significant bit set")
            header = 10
        if length > max_frame_size:
            return frames, pos, (1009, f"frame of {length} bytes exceeds the limit of {max_frame_size}")
        if masked:
            start = pos + header + 4
            if end - start < length:
                break
            payload = bytes(buf[start : start + length])
            if length:
                payload = apply_mask(payload, bytes(buf[start - 4 : start]))
        else:
            start = pos + header
            if end - start < length:
                break
            payload = bytes(buf[start : start + length])
        if b0 == 0x81 and not payload.isascii():
            try:
                payload.decode()
            except UnicodeDecodeError:
                return frames, pos, (1007, INVALID_TEXT)
            frames.append((b0, payload))
        elif b0 == 0x81 and ascii_text_as_str:
            frames.append((b0, payload.decode("ascii")))
        else:
            frames.append((b0, payload))
        pos = start + length
    return frames, pos, None


def build_frame(first_byte: int, payload: str | bytes | bytearray | memoryview, mask_key: bytes | None) -> bytes:
    """Serialise one frame whose first header byte is ``first_byte`` (a ``str`` payload as its UTF-8)."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload)
    mask_bit = 0x80 if mask_key is not None else 0
    if n < 126:
        header = bytes((first_byte, mask_bit | n))
    elif n < 65536:
        header = bytes((first_byte, mask_bit | 126)) + n.to_bytes(2, _BIG)
    else:
        header = bytes((first_byte, mask_bit | 127)) + n.to_bytes(8, _BIG)
    if mask_key is None:
        return header + payload
    return header + mask_key + apply_mask(payload, mask_key)


def utf8_view(text: str) -> bytes | memoryview:
    """The UTF-8 of ``text``, to write (the C codec's is a view of an ASCII ``str``'s own data)."""
    if not isinstance(text, str):
        raise TypeError(f"utf8_view() takes a str, not {type(text).__name__}")
    return text.encode()


_UTF8Decoder = codecs.getincrementaldecoder("utf-8")


def utf8_check(data: bytes | bytearray | memoryview, state: int, mask_key: bytes | None = None, phase: int = 0) -> int:
    count = state >> 24
    if state < 0 or count > 3:
        raise ValueError("invalid UTF-8 state")
    pending = bytes((state >> (16 - 8 * i)) & 0xFF for i in range(count))
    if mask_key is not None:
        if len(mask_key) != 4:
            raise ValueError("mask_key must be 4 bytes")
        data = apply_mask(data, mask_key[phase & 3 :] + mask_key[: phase & 3])
    decoder = _UTF8Decoder()
    decoder.setstate((pending, 0))
    try:
        decoder.decode(data, False)
    except UnicodeDecodeError:
        return -1
    rest: bytes = decoder.getstate()[0]
    if len(rest) >= 2 and rest[0] == 0xED and rest[1] >= 0xA0:
        return -1  # a surrogate's prefix, which CPython's decoder holds back instead of rejecting
    return utf8_state(rest)


def utf8_state(pending: bytes) -> int:
    """The ``utf8_check`` state of a text that ended with the incomplete sequence ``pending``."""
    packed = len(pending) << 24
    for i, byte in enumerate(pending):
        packed |= byte << (16 - 8 * i)
    return packed
