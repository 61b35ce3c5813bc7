"""ws4py's protocol core: RFC 6455 and RFC 7692 without I/O.

Bytes go in, events and bytes come out; no sockets, threads or clocks. Every
adapter of ws4py (threads, asyncio) drives this one core.
"""

from .close_codes import CloseCode, is_valid_on_wire
from .connection import DEFAULT_MAX_MESSAGE_SIZE, Connection, Role, State, TransportAction
from .deflate import DeflateOptions, PerMessageDeflate
from .events import (
    BinaryReceived,
    CloseReceived,
    ConnectionFailed,
    Event,
    PingReceived,
    PongReceived,
    TextReceived,
)
from .fragments import OutgoingFragments, frame_fragments
from .frames import Opcode
from .handshake import WS_KEY, WS_VERSION, ClientHandshake, ServerHandshake, accept_key
from .headers import Headers
from .http11 import Request, Response

__all__ = [
    "BinaryReceived",
    "ClientHandshake",
    "CloseCode",
    "CloseReceived",
    "Connection",
    "ConnectionFailed",
    "DEFAULT_MAX_MESSAGE_SIZE",
    "DeflateOptions",
    "Event",
    "Headers",
    "Opcode",
    "OutgoingFragments",
    "PerMessageDeflate",
    "PingReceived",
    "PongReceived",
    "Request",
    "Response",
    "Role",
    "ServerHandshake",
    "State",
    "TextReceived",
    "TransportAction",
    "WS_KEY",
    "WS_VERSION",
    "accept_key",
    "frame_fragments",
    "is_valid_on_wire",
]
