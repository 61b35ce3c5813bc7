"""ws4py 0.6's incremental UTF-8 validator, as a thin layer over the core's check.

0.6 shipped Björn Höhrmann's DFA in pure Python (from Autobahn), one byte per
loop turn. :class:`Utf8Validator` keeps its interface and answers from the
codec's ``utf8_check`` (the C one when built), which every text message of
ws4py goes through: the same verdicts, byte for byte, at the codec's speed.
"""

from __future__ import annotations

from collections.abc import Iterable

from .protocol import frames as _frames

__all__ = ["Utf8Validator"]

_Data = bytes | bytearray | memoryview | Iterable[int]


def _pending(state: int) -> bytes:
    """The incomplete sequence a ``utf8_check`` state packs (its format: ``ws4py.protocol._frames_py``)."""
    return bytes((state >> (16 - 8 * i)) & 0xFF for i in range(state >> 24))


class Utf8Validator:
    """Incremental UTF-8 validation with constant memory.

    ``state`` is :attr:`UTF8_ACCEPT` on a character boundary,
    :attr:`UTF8_REJECT` once the bytes cannot be UTF-8 (it stays so until
    :meth:`reset`), another positive number inside a character.
    """

    UTF8_ACCEPT = 0
    UTF8_REJECT = 1

    def __init__(self) -> None:
        self.state = self.UTF8_ACCEPT
        self.codepoint = 0
        self.i = 0
        self.reset()

    def reset(self) -> None:
        """Start a new text."""
        self.state = self.UTF8_ACCEPT
        self.codepoint = 0
        self.i = 0

    def _check(self, data: bytes | bytearray | memoryview) -> int:
        """The codec's state after ``data``, from this validator's (-1: invalid)."""
        if self.state == self.UTF8_REJECT:
            return -1 if len(data) else self.state
        return _frames.utf8_check(data, self.state)

    def decode(self, b: int) -> int:
        """Take one octet; return the new ``state``.

        On :attr:`UTF8_ACCEPT`, ``codepoint`` is the character the octet completed.
        """
        state = self._check(bytes((b,)))
        if state < 0:
            self.state = self.UTF8_REJECT
        else:
            if state == self.UTF8_ACCEPT:
                self.codepoint = ord((_pending(self.state) + bytes((b,))).decode())
            self.state = state
        return self.state

    def validate(self, ba: _Data) -> tuple[bool, bool, int, int]:
        """Validate the next chunk of the text: ``(valid, ends_on_codepoint, current_index, total_index)``.

        Valid: ``current_index`` is ``len(ba)`` and ``total_index`` the bytes
        taken since :meth:`reset`. Invalid: both are the index of the first
        octet that cannot be UTF-8 (in the chunk, and since the reset).
        """
        data = ba if isinstance(ba, (bytes, bytearray, memoryview)) else bytes(ba)
        with memoryview(data) as view:
            state = self._check(view)
            if state >= 0:
                self.state = state
                self.i += len(view)
                return True, state == self.UTF8_ACCEPT, len(view), self.i
            # The first octet that fails: the check is monotone (a prefix that fails makes
            # every longer one fail), so a bisection over prefixes finds it.
            good, bad = 0, len(view)
            while bad - good > 1:
                middle = (good + bad) // 2
                if self._check(view[:middle]) < 0:
                    bad = middle
                else:
                    good = middle
        index = bad - 1
        total = self.i + index
        self.i += index
        self.state = self.UTF8_REJECT
        return False, False, index, total
