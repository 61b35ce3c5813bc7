"""Events the core hands to an adapter for the bytes it was fed."""

from __future__ import annotations

__all__ = [
    "Event",
    "TextReceived",
    "BinaryReceived",
    "PingReceived",
    "PongReceived",
    "CloseReceived",
    "ConnectionFailed",
]


class Event:
    """Base of the core's events (plain slotted classes: they are made per message)."""

    __slots__ = ()

    def __repr__(self) -> str:
        names: tuple[str, ...] = self.__slots__
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other: object) -> bool:
        names: tuple[str, ...] = self.__slots__
        return type(other) is type(self) and all(getattr(self, name) == getattr(other, name) for name in names)

    __hash__ = None  # type: ignore[assignment]


class TextReceived(Event):
    """A complete text message, validated UTF-8; ``data`` is its text.

    ``raw`` is its UTF-8 bytes when the core had them whole (a message in one
    uncompressed or compressed frame), else ``None``: an adapter that needs
    the bytes (an echo) is spared encoding the text again. (With the core's
    ``decode_text``, an ASCII text in one uncompressed frame comes as the
    ``str`` alone: ``raw`` is ``None`` then too.) A large message
    is validated without decoding and decoded when ``data`` is first read,
    so an adapter that only forwards ``raw`` never makes the ``str``. ``raw``
    is not part of the event's identity (equality and repr use ``data``).
    """

    __slots__ = ("decoded", "raw")

    def __init__(self, data: str | None, raw: bytes | None = None) -> None:
        if data is None and raw is None:
            raise ValueError("a TextReceived needs its text or its bytes")
        #: The text if it was decoded already, else ``None`` (then ``raw`` has the bytes).
        self.decoded = data
        self.raw = raw

    @property
    def data(self) -> str:
        data = self.decoded
        if data is None:
            assert self.raw is not None
            data = self.decoded = self.raw.decode()  # validated by the core
        return data

    def __eq__(self, other: object) -> bool:
        return type(other) is TextReceived and other.data == self.data

    def __repr__(self) -> str:
        return f"TextReceived(data={self.data!r})"


class BinaryReceived(Event):
    """A complete binary message."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class PingReceived(Event):
    """A ping; the core has already queued its pong (see ``Connection.data_to_send``)."""

    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload


class PongReceived(Event):
    """A pong; ``acknowledged`` lists the payloads of the pings it answers, oldest first.

    A pong answers the ping with the same payload and every ping sent before
    it (RFC 6455 allows a peer to answer only the latest ping). An unsolicited
    pong acknowledges nothing.
    """

    __slots__ = ("acknowledged", "payload")

    def __init__(self, payload: bytes, acknowledged: tuple[bytes, ...] = ()) -> None:
        self.payload = payload
        self.acknowledged = acknowledged


class CloseReceived(Event):
    """The peer's close frame; ``code`` is 1005 when the frame carried none.

    If the peer started the closing handshake the core has queued the echo.
    """

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class ConnectionFailed(Event):
    """The peer broke the protocol; the core queued a close frame with ``code``.

    Nothing more is read: the adapter writes ``data_to_send()`` and closes the
    transport (RFC 6455 section 7.1.7, "Fail the WebSocket Connection").
    """

    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason
