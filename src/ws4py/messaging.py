"""WebSocket messages as objects: what ``received_message`` gets and ``send`` takes.

A received text message keeps the text the core already decoded and encodes it
to ``data`` only when asked, so a handler that only reads ``str(message)``
never pays for the bytes.
"""

from __future__ import annotations

import os

from .protocol import frames as _frames
from .protocol.frames import Opcode

__all__ = [
    "CloseReason",
    "Message",
    "TextMessage",
    "BinaryMessage",
    "CloseControlMessage",
    "PingControlMessage",
    "PongControlMessage",
]

_Data = str | bytes | bytearray | memoryview | None
_TEXT = Opcode.TEXT  # a module name: received_text runs per message, and Opcode.TEXT costs 90 ns


def _to_bytes(data: _Data, encoding: str | None) -> bytes:
    if data is None:
        return b""
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        if encoding is None:
            raise TypeError("a str payload needs an encoding")
        return data.encode(encoding)
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"message data must be str or bytes, not {type(data).__name__}")


class Message:
    """A WebSocket message: ``opcode`` and its payload ``data`` (bytes).

    ``str(message)`` is the text (decoded with ``encoding``); ``bytes(message)``
    the payload; ``len(message)`` counts characters for text and bytes otherwise.
    """

    __slots__ = ("_data", "_text", "completed", "encoding", "opcode")

    is_text = False
    is_binary = False

    def __init__(self, opcode: int, data: _Data = b"", encoding: str | None = "utf-8") -> None:
        self.opcode = opcode
        self.encoding = encoding
        self._data: bytes | None = _to_bytes(data, encoding)
        self._text: str | None = None
        self.completed = False

    @classmethod
    def received_text(cls, text: str | None, raw: bytes | None = None) -> Message:
        """A received text message: its text, its bytes, or both (one may be ``None``, not both).

        Nothing is checked or copied: the core validated the text.
        """
        message = cls.__new__(cls)
        message.opcode = _TEXT
        message.encoding = "utf-8"
        message._data = raw
        message._text = text
        message.completed = True
        return message

    @classmethod
    def received_bytes(cls, opcode: int, data: bytes) -> Message:
        """A received message of ``opcode`` with payload ``data``, taken as it is."""
        message = cls.__new__(cls)
        message.opcode = opcode
        message.encoding = None
        message._data = data
        message._text = None
        message.completed = True
        return message

    @property
    def content(self) -> str | bytes:
        """The payload as held: its bytes when it has them (a received message), else its text.

        What a send of this message frames, with no encoding when the bytes are there.
        """
        data = self._data
        if data is None:
            assert self._text is not None
            return self._text
        return data

    @property
    def data(self) -> bytes:
        if self._data is None:
            assert self._text is not None
            self._data = self._text.encode(self.encoding or "utf-8")
        return self._data

    @data.setter
    def data(self, value: _Data) -> None:
        self._data = _to_bytes(value, self.encoding)
        self._text = None

    def single(self, mask: bool = False) -> bytes:
        """The message as one complete frame (masked with a random key when ``mask``)."""
        return _frames.build_frame(_frames.FIN | self.opcode, self.data, os.urandom(4) if mask else None)

    def fragment(self, first: bool = False, last: bool = False, mask: bool = False) -> bytes:
        """The message as one fragment: the opcode only on the ``first``, FIN only on the ``last``."""
        b0 = (self.opcode if first else 0) | (_frames.FIN if last else 0)
        return _frames.build_frame(b0, self.data, os.urandom(4) if mask else None)

    def extend(self, data: _Data) -> None:
        """Append ``data`` (str is encoded with the message's encoding)."""
        self.data = self.data + _to_bytes(data, self.encoding)

    def __str__(self) -> str:
        text = self._text
        if text is None:
            text = self.data.decode(self.encoding or "utf-8")
            if self.opcode == Opcode.TEXT:
                self._text = text  # kept: len() and str() of a large message decode it once
        return text

    def __bytes__(self) -> bytes:
        return self.data

    def __len__(self) -> int:
        if self.is_text:
            return len(str(self))
        return len(self.data)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {len(self)} {'chars' if self.is_text else 'bytes'}>"


class TextMessage(Message):
    """A text message; ``str()`` gives its text."""

    __slots__ = ()
    is_text = True

    def __init__(self, text: _Data = None) -> None:
        super().__init__(Opcode.TEXT, text, encoding="utf-8")


class BinaryMessage(Message):
    """A binary message."""

    __slots__ = ()
    is_binary = True

    def __init__(self, bytes: _Data = None) -> None:
        super().__init__(Opcode.BINARY, bytes, encoding=None)

    def __str__(self) -> str:
        return self.data.decode("utf-8", "replace")


class CloseReason(str):
    """A close frame's reason: its text, a ``str``, that also answers ws4py 0.6's ``bytes`` API.

    ws4py 0.6 gave the reason as the frame's UTF-8 bytes, so its users wrote
    ``reason.decode()``; this project gives the text. A ``CloseReason`` is both:
    ``decode()`` returns the text, and it equals its UTF-8 bytes as well as its
    text (``reason == b"bye"`` and ``reason == "bye"``). ``bytes(reason, "utf-8")``
    or :meth:`str.encode` give the bytes.
    """

    __slots__ = ()

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """The text, as ``bytes.decode`` gave it in 0.6 (it is UTF-8 by RFC 6455, whatever ``encoding`` says)."""
        return str(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (bytes, bytearray, memoryview)):
            return self.encode() == bytes(other)
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    # Equal to its bytes, hashed as its text: a dict or set holds reasons of one kind only.
    __hash__ = str.__hash__


class CloseControlMessage(Message):
    """A close frame's content: ``code`` and ``reason`` (a :class:`CloseReason`: the text, with 0.6's
    ``decode()``)."""

    __slots__ = ("code", "reason")

    def __init__(self, code: int | None = 1000, reason: str | bytes | None = "") -> None:
        if reason is None:  # 0.6 took it for no reason
            reason = ""
        elif isinstance(reason, (bytes, bytearray)):
            reason = bytes(reason).decode("utf-8")
        payload = b"" if not code else code.to_bytes(2, "big") + reason.encode()
        super().__init__(Opcode.CLOSE, payload, encoding="utf-8")
        self.code = code or 1005
        self.reason = CloseReason(reason)

    def __str__(self) -> str:
        return str(self.reason)


class PingControlMessage(Message):
    """A ping and its payload."""

    __slots__ = ()

    def __init__(self, data: _Data = None) -> None:
        super().__init__(Opcode.PING, data)


class PongControlMessage(Message):
    """A pong and its payload; ``ponged()`` receives one."""

    __slots__ = ()

    def __init__(self, data: _Data = None) -> None:
        super().__init__(Opcode.PONG, data)
