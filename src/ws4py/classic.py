"""The classic ws4py API's glue: one meaning for its callbacks and its ``send()``, for every stack.

ws4py's original API is a class with callbacks (``opened``,
``received_message``, ``ponged``, ``closed``, ``unhandled_error``) and a
``send()`` that takes text, bytes, a :class:`~ws4py.messaging.Message` or an
iterable of chunks. The threaded :class:`ws4py.websocket.WebSocket` and the
asyncio :class:`ws4py.async_websocket.WebSocket` both offer it; this module is
what they share, so that the two behave the same and the next stack (gevent,
CherryPy) gets it for free.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from .messaging import BinaryMessage, CloseReason, Message, PongControlMessage, TextMessage
from .protocol.events import BinaryReceived, Event, PingReceived, PongReceived, TextReceived
from .protocol.frames import WHOLE_TEXT, Opcode

if TYPE_CHECKING:
    from .protocol.connection import Connection

__all__ = [
    "ABNORMAL_CLOSE_REASON",
    "ClassicCallbacks",
    "ClassicTermination",
    "close_outcome",
    "Payload",
    "deliver",
    "dispatch",
    "sendable",
]

#: What ``send()`` takes as one message: text, bytes-like data or a :class:`~ws4py.messaging.Message`.
Payload = str | bytes | bytearray | memoryview | Message

_BINARY = Opcode.BINARY  # a module global: an enum class attribute costs 40 ns per look-up (3.11)

#: The reason ``closed()`` gets with 1006 (no close frame came), ws4py 0.6's text.
ABNORMAL_CLOSE_REASON = "Going away"


class ClassicCallbacks:
    """The callbacks of the classic API, with their one meaning on every stack.

    Override the ones you need; each default does nothing but
    :meth:`unhandled_error`, which is the stack's to define (it logs).
    """

    __slots__ = ()

    def opened(self) -> None:
        """Called once the opening handshake is done, before any other callback."""

    def received_message(self, message: Message) -> None:
        """Called with each complete :class:`~ws4py.messaging.TextMessage` or ``BinaryMessage``."""

    def ponged(self, pong: PongControlMessage) -> None:
        """Called with each pong received."""

    def closed(self, code: int, reason: str | None = None) -> None:
        """Called once when the connection is over.

        ``code`` is the peer's close code (1005 if its close frame had none),
        the code this side failed the connection with, or 1006 when the
        connection ended without a close frame (then ``reason`` is
        ``"Going away"``, as in ws4py 0.6). ``reason`` is a
        :class:`~ws4py.messaging.CloseReason`: the text, which also has 0.6's
        ``decode()``.
        """

    def unhandled_error(self, error: BaseException) -> None:
        """Called with an error that ends the connection: an exception one of
        this websocket's callbacks raised (the connection then closes with 1011),
        or an error of the socket while reading (it then ends as it stands)."""


class ClassicTermination:
    """ws4py 0.6's two termination flags, read from the core's closing handshake.

    ``server_terminated`` is true once the server's side of the closing
    handshake is done (its close frame went out), ``client_terminated`` once
    the client's is; both are true when the connection is over. Setting one
    to true (0.6 code did) marks that side done; :attr:`terminated` keeps its
    meaning (the connection is over). A class using it gives
    :meth:`_termination_core` and has a ``terminated`` property.
    """

    # Sides marked done by hand: 1 the client, 2 the server (unset: none).
    __slots__ = ("_terminated_marks",)

    @property
    def terminated(self) -> bool:
        """Whether the connection is over (the class using this says)."""
        raise NotImplementedError

    def _termination_core(self) -> Connection | None:
        """The core of the connection, ``None`` before there is one."""
        raise NotImplementedError

    def _marks(self) -> int:
        try:
            return self._terminated_marks
        except AttributeError:  # the slot is set by the first mark only
            return 0

    def _side_done(self, server: bool) -> bool:
        if self._marks() & (2 if server else 1) or self.terminated:
            return True
        core = self._termination_core()
        if core is None:
            return False
        own = server is (not core.is_client)
        return (core.close_sent if own else core.close_received) is not None

    def _mark(self, server: bool, value: bool) -> None:
        bit = 2 if server else 1
        marks = self._marks()
        self._terminated_marks = (marks | bit) if value else (marks & ~bit)

    @property
    def client_terminated(self) -> bool:
        """Whether the client's side of the closing handshake is done (or the connection over)."""
        return self._side_done(server=False)

    @client_terminated.setter
    def client_terminated(self, value: bool) -> None:
        self._mark(server=False, value=value)

    @property
    def server_terminated(self) -> bool:
        """Whether the server's side of the closing handshake is done (or the connection over)."""
        return self._side_done(server=True)

    @server_terminated.setter
    def server_terminated(self, value: bool) -> None:
        self._mark(server=True, value=value)


def close_outcome(core: Connection | None) -> tuple[int, CloseReason]:
    """What ``closed()`` gets once ``core``'s connection is over: the close code (1006 without
    a close frame, or without a core) and its reason (0.6's ``"Going away"`` with 1006)."""
    if core is None or core.close_code is None:
        return 1006, CloseReason(ABNORMAL_CLOSE_REASON)
    code, reason = core.close_code, core.close_reason or ""
    if code == 1006 and not reason:
        reason = ABNORMAL_CLOSE_REASON
    return code, CloseReason(reason)


def deliver(ws: ClassicCallbacks, messages: Iterable[tuple[int, bytes | str]]) -> None:
    """Give ``ws`` the whole messages :meth:`~ws4py.protocol.Connection.receive_messages` returned
    as ``(first_byte, payload)`` pairs, in order; what a callback raises is the caller's.

    A text's payload is its validated bytes (the core's ``decode_text`` off): it
    is decoded only if the callback asks for the text, and an echo sends the
    bytes as they came.
    """
    for first_byte, payload in messages:
        if first_byte == WHOLE_TEXT:
            ws.received_message(TextMessage.received_text(None, payload))  # type: ignore[arg-type]
        else:
            ws.received_message(BinaryMessage.received_bytes(_BINARY, payload))  # type: ignore[arg-type]


def dispatch(
    ws: ClassicCallbacks,
    events: Iterable[Event],
    core: Connection,
    write: Callable[[bytes], object],
    pong_received: Callable[[PongReceived], object] | None = None,
) -> None:
    """Call ``ws``'s callbacks for ``events``, in order; what a callback raises is the caller's.

    A ping's pong is written with ``write`` as its event is met, before what
    the callbacks of later messages send (Autobahn 5.6), and never after our
    close (the core sees to that). ``pong_received`` sees each pong before
    :meth:`~ClassicCallbacks.ponged` does (a stack's heartbeat, its ping
    futures).
    """
    for event in events:
        kind = type(event)
        if kind is TextReceived:
            ws.received_message(TextMessage.received_text(event.decoded, event.raw))  # type: ignore[attr-defined]
        elif kind is BinaryReceived:
            ws.received_message(BinaryMessage.received_bytes(_BINARY, event.data))  # type: ignore[attr-defined]
        elif kind is PingReceived:
            pongs = core.pongs_to_send()
            if pongs:
                write(pongs)
        elif kind is PongReceived:
            if pong_received is not None:
                pong_received(event)  # type: ignore[arg-type]
            ws.ponged(PongControlMessage(event.payload))  # type: ignore[attr-defined]


def sendable(payload: Payload | Iterable[str | bytes], binary: bool) -> tuple[bool, Any]:
    """What ``send(payload, binary)`` sends: ``(is_binary, data)`` for one message, with ``data`` a
    ``str`` or bytes-like; ``(binary, iterator)`` for an iterable, sent as one fragmented message
    (see :class:`~ws4py.protocol.OutgoingFragments`).

    ``str`` is text; bytes-like is text taken as UTF-8 unless ``binary``; a
    :class:`~ws4py.messaging.Message` keeps its own kind (and its bytes when
    it has them: an echo is not encoded again). Anything else is a
    ``ValueError``, as in the original ws4py.
    """
    if isinstance(payload, str):
        return False, payload
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return binary, payload
    if isinstance(payload, Message):
        return payload.opcode == _BINARY, payload.content
    if isinstance(payload, Iterable):
        chunks: Iterator[str | bytes] = iter(payload)
        return binary, chunks
    raise ValueError(f"cannot send a {type(payload).__name__}: expected str, bytes, a Message or an iterable")
