"""UTF-8 validation of text messages, whole, fragmented or still arriving (RFC 6455 8.1).

A text message is checked as early as its bytes allow, so a peer sending
invalid UTF-8 fails as soon as the first bad byte is in, not when the message
(or its frame) completes.
"""

from __future__ import annotations

from ..exc import TextFrameEncodingException
from . import frames as _frames

__all__ = ["INVALID_TEXT", "PartialTextCheck"]

#: The reason of the 1007 close for a text message that is not UTF-8.
INVALID_TEXT = "invalid UTF-8 in a text message"


class PartialTextCheck:
    """How much of the incomplete text frame at a buffer's start is validated, and the state it left.

    Nothing is decoded or kept: ``utf8_check`` walks the new bytes, unmasking
    them on the fly, so a large text frame costs one pass more.
    """

    __slots__ = ("checked", "state")

    def __init__(self) -> None:
        self.checked = 0
        self.state = 0

    def reset(self) -> None:
        self.checked = 0
        self.state = 0

    def advance(self, buf: bytearray | memoryview, initial: int) -> None:
        """Validate what arrived of the frame at ``buf``'s start, from ``initial`` (the state before the frame)."""
        if len(buf) < 2:
            return
        start = _frames.header_length(buf[1])
        checked = self.checked
        end = len(buf)
        if end <= start + checked:
            return
        key = bytes(buf[start - 4 : start]) if buf[1] & 0x80 else None
        with memoryview(buf) as view:
            state = _frames.utf8_check(
                view[start + checked : end], self.state if checked else initial, key, checked & 3
            )
        if state < 0:
            raise TextFrameEncodingException(INVALID_TEXT)
        self.state = state
        self.checked = end - start
