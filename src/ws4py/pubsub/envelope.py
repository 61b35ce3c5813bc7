"""The wire format of a message on Redis: ws4py's own small binary envelope.

Every broker, and the one-shot :func:`ws4py.pubsub.publish`, sends this on
Redis; a subscriber process drops (with a log line) what does not parse.

======  =====  ====================================================
offset  bytes  meaning
======  =====  ====================================================
0       2      magic ``b"w4"``
2       1      version: 1
3       1      flags: bit 0 set for a binary message, clear for text
4       16     the publisher's id (random, one per broker or process)
20      8      the sequence number, big-endian, from 1 per (publisher, channel)
28      rest   the message: UTF-8 for text, as is for binary
======  =====  ====================================================
"""

from __future__ import annotations

import struct
from typing import NamedTuple

__all__ = ["HEADER_SIZE", "Envelope", "EnvelopeError", "decode", "encode"]

_HEADER = struct.Struct(">2sBB16sQ")
#: Bytes before the message.
HEADER_SIZE = _HEADER.size
_MAGIC = b"w4"
_VERSION = 1
_BINARY = 1


class EnvelopeError(ValueError):
    """Bytes that are not a ws4py envelope (another program publishing on the channel, or a newer format)."""


class Envelope(NamedTuple):
    """A decoded envelope: ``message`` is ``str`` for text, ``bytes`` for binary."""

    publisher: bytes
    seq: int
    message: str | bytes


def encode(publisher: bytes, seq: int, message: str | bytes) -> bytes:
    """The envelope of ``message``, published by ``publisher`` (16 bytes) as its ``seq``-th on the channel."""
    if isinstance(message, str):
        flags, payload = 0, message.encode()
    elif isinstance(message, (bytes, bytearray, memoryview)):
        flags, payload = _BINARY, bytes(message)
    else:
        raise TypeError(f"cannot publish {type(message).__name__}: use str or bytes")
    return _HEADER.pack(_MAGIC, _VERSION, flags, publisher, seq) + payload


def decode(data: bytes) -> Envelope:
    """The envelope in ``data``; raises :class:`EnvelopeError` if it is not one."""
    if len(data) < HEADER_SIZE:
        raise EnvelopeError(f"{len(data)} bytes: shorter than an envelope's header")
    magic, version, flags, publisher, seq = _HEADER.unpack_from(data)
    if magic != _MAGIC or version != _VERSION:
        raise EnvelopeError(f"not a ws4py envelope (version {version}) or an unknown version")
    payload = data[HEADER_SIZE:]
    if flags & _BINARY:
        return Envelope(publisher, seq, bytes(payload))
    try:
        return Envelope(publisher, seq, payload.decode())
    except UnicodeDecodeError as exc:
        raise EnvelopeError("a text message that is not UTF-8") from exc
