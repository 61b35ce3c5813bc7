"""Sending one message in fragments, a frame per chunk, as its chunks come (RFC 6455 5.4)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["Chunk", "OutgoingFragments", "frame_fragments"]

#: One fragment of an outgoing message: text or bytes-like data.
Chunk = str | bytes | bytearray | memoryview


class OutgoingFragments:
    """One fragmented message being sent on ``connection``.

    Each chunk is framed when the next one arrives, so the last chunk's frame
    carries FIN: a message of n chunks is n frames, with no empty final
    frame, and :meth:`end` frames the last. One rule for every ws4py stack:

    - The message is binary when ``binary`` is true, text when it is false
      (``bytes`` chunks are then taken as UTF-8), and when ``binary`` is
      ``None`` the first chunk decides (``str``: text, bytes-like: binary)
      and every later chunk must be of the same kind (``TypeError``).
    - No chunk at all is one empty message (text unless ``binary``).
    - Until :meth:`end`, the connection refuses other data messages
      (:class:`~ws4py.exc.InvalidState`); control frames may go in between.
    """

    __slots__ = ("_binary", "_by_type", "_connection", "_held", "_started")

    def __init__(self, connection: Connection, binary: bool | None = None) -> None:
        self._connection = connection
        self._binary = binary
        self._by_type = binary is None
        self._held: Chunk | None = None
        self._started = False

    def add(self, chunk: Chunk) -> bytes:
        """Take the next chunk; return the frame of the one before it (``b""`` for the first)."""
        if not isinstance(chunk, (str, bytes, bytearray, memoryview)):
            raise TypeError(f"a message fragment is str or bytes, not {type(chunk).__name__}")
        if self._by_type:
            is_binary = not isinstance(chunk, str)
            if self._binary is None:
                self._binary = is_binary
            elif is_binary is not self._binary:
                raise TypeError("the fragments of one message are all str or all bytes")
        held, self._held = self._held, chunk
        return b"" if held is None else self._frame(held, False)

    def end(self) -> bytes:
        """The final frame: the last chunk with FIN, or an empty message if there was none."""
        held, self._held = self._held, None
        return self._frame(b"" if held is None else held, True)

    def _frame(self, chunk: Chunk, fin: bool) -> bytes:
        connection = self._connection
        if self._started:
            return connection.send_continuation(chunk, fin)
        self._started = True
        if self._binary:
            return connection.send_binary(chunk.encode() if isinstance(chunk, str) else chunk, fin)
        return connection.send_text(chunk, fin)


def frame_fragments(connection: Connection, chunks: Iterable[Chunk], binary: bool | None = None) -> Iterator[bytes]:
    """The frames of ``chunks`` sent as one message (see :class:`OutgoingFragments`), as they are made."""
    message = OutgoingFragments(connection, binary)
    for chunk in chunks:
        frame = message.add(chunk)
        if frame:
            yield frame
    yield message.end()
