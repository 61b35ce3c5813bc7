"""The exceptions of ws4py: one tree under :class:`WebSocketException`.

The names of the original ws4py are kept. Protocol errors carry the close code
the connection is failed with (RFC 6455 section 7.4.1), so an adapter never has
to map an exception to a code itself.
"""

from __future__ import annotations

__all__ = [
    "WebSocketException",
    "ProtocolException",
    "FrameTooLargeException",
    "UnsupportedFrameTypeException",
    "InvalidBytesError",
    "TextFrameEncodingException",
    "HandshakeError",
    "StreamClosed",
    "InvalidState",
    "ConnectionClosed",
    "ConnectionClosedOK",
    "ConnectionClosedError",
]


class WebSocketException(Exception):
    """Root of every exception ws4py raises on purpose."""


class ProtocolException(WebSocketException):
    """The peer broke RFC 6455 or RFC 7692; ``code`` is the close code to fail with.

    ``reason`` may be left out, as 0.6's code did (``raise ProtocolException()``).
    """

    code: int = 1002

    def __init__(self, reason: str = "", code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if code is not None:
            self.code = code


class FrameTooLargeException(ProtocolException):
    """A frame or message is larger than the configured limits (close code 1009)."""

    code = 1009


class UnsupportedFrameTypeException(ProtocolException):
    """A frame used a reserved opcode (close code 1002)."""


class InvalidBytesError(ProtocolException):
    """Payload that must be UTF-8 is not (close code 1007)."""

    code = 1007


class TextFrameEncodingException(InvalidBytesError):
    """A text message, or a close reason, is not valid UTF-8 (close code 1007)."""


class HandshakeError(WebSocketException):
    """The opening handshake failed.

    ``status`` is the HTTP status a server answers with (or, on the client, the
    status the server answered with), ``None`` when there is no HTTP status
    (the connection ended before a response, say); ``headers`` are extra
    response headers, such as ``Sec-WebSocket-Version`` for a 426.
    """

    def __init__(
        self,
        msg: str,
        status: int | None = 400,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(msg)
        self.msg = msg
        self.status = status
        self.headers = headers or []

    def __str__(self) -> str:
        return self.msg


class StreamClosed(WebSocketException, RuntimeError):
    """Data was sent on a connection that is closing or closed.

    Also a :class:`RuntimeError`, which is what the original ws4py raised.
    """


class InvalidState(StreamClosed):
    """The caller asked for what the connection's state does not allow.

    Sending on a connection that is closing or closed, a data message while a
    fragmented one is being sent, a continuation with no fragmented message
    to continue. A fault of the calling code, not of the peer (that is
    :class:`ProtocolException`); a :class:`StreamClosed`, so code that caught
    that keeps working.
    """


class ConnectionClosed(StreamClosed):
    """The connection is closed; ``code`` and ``reason`` say how."""

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(f"connection closed: {code} {reason}".rstrip())
        self.code = code
        self.reason = reason


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed normally (1000 or 1001 both ways)."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed abnormally or with an error code."""
