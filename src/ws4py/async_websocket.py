"""ws4py's callback-style WebSocket on asyncio: ``received_message`` and friends, with no task per connection.

The documented snippet::

    from ws4py.async_websocket import EchoWebSocket
    from ws4py.server.tulipserver import WebSocketProtocol

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(lambda: WebSocketProtocol(EchoWebSocket), "", 9007))
    loop.run_forever()

:class:`WebSocketProtocol` is an :class:`asyncio.Protocol` that does the
opening handshake with the same core and limits as :mod:`ws4py.asyncio`,
then calls the handler's callbacks straight from ``data_received``. What
the callbacks send during one read is written with one system call.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from .asyncio.endpoint import Endpoint, Options
from .messaging import BinaryMessage, Message, PongControlMessage, TextMessage
from .protocol import (
    BinaryReceived,
    DeflateOptions,
    Event,
    PingReceived,
    PongReceived,
    ServerHandshake,
    TextReceived,
)
from .protocol.connection import Connection as CoreConnection
from .protocol.frames import LARGE_PAYLOAD, WHOLE_TEXT, Opcode

__all__ = ["EchoWebSocket", "WebSocket", "WebSocketProtocol"]

logger = logging.getLogger("ws4py")


class WebSocket:
    """A WebSocket with ws4py's callbacks, driven by a :class:`WebSocketProtocol`.

    Override :meth:`opened`, :meth:`received_message`, :meth:`ponged`,
    :meth:`closed` and :meth:`unhandled_error`. :meth:`send`, :meth:`ping`
    and :meth:`close` do not block: bytes go to the transport's buffer.
    Callers that produce a lot should ``await websocket.drain()`` between
    sends to respect ``write_limit``. A callback that raises closes the
    connection with 1011.
    """

    def __init__(self, proto: WebSocketProtocol) -> None:
        self.proto = proto

    # -- callbacks ---------------------------------------------------------

    def opened(self) -> None:
        """Called once the handshake is done."""

    def received_message(self, message: Message) -> None:
        """Called with each complete :class:`~ws4py.messaging.TextMessage` or ``BinaryMessage``."""

    def ponged(self, pong: PongControlMessage) -> None:
        """Called with each pong received."""

    def closed(self, code: int, reason: str | None = None) -> None:
        """Called once when the connection is over (1006: it ended without a close frame)."""

    def unhandled_error(self, error: BaseException) -> None:
        """Called when a callback raised; the connection is then closed with 1011."""
        logger.error("Error in a callback of %r", self, exc_info=error)

    # -- properties --------------------------------------------------------

    @property
    def terminated(self) -> bool:
        """Whether the connection is over and its transport closed."""
        return self.proto._closed.done()

    @property
    def protocols(self) -> list[str]:
        """The subprotocol agreed on, as a list (empty when none)."""
        sub = self.proto.subprotocol
        return [sub] if sub else []

    @property
    def extensions(self) -> list[str]:
        """The extensions agreed on: ``["permessage-deflate"]`` or ``[]``."""
        core = self.proto._core
        return [] if core is None or core.deflate is None else ["permessage-deflate"]

    @property
    def environ(self) -> dict[str, Any]:
        """The request as a small WSGI-like environ: ``PATH_INFO``, ``QUERY_STRING``, ``HTTP_*``."""
        request = self.proto.request
        if request is None:
            return {}
        path, _, query = request.target.partition("?")
        environ: dict[str, Any] = {"REQUEST_METHOD": request.method, "PATH_INFO": path, "QUERY_STRING": query}
        for name, value in request.headers.items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        return environ

    @property
    def sock(self) -> Any:
        """The transport's socket (``None`` before connecting)."""
        transport = self.proto.transport
        return None if transport is None else transport.get_extra_info("socket")

    @property
    def local_address(self) -> Any:
        """This side's address."""
        return self.proto.local_address

    @property
    def peer_address(self) -> Any:
        """The peer's address."""
        return self.proto.remote_address

    # -- sending -----------------------------------------------------------

    def send(
        self, payload: str | bytes | bytearray | memoryview | Message | Iterable[str | bytes], binary: bool = False
    ) -> None:
        """Send a message: ``str`` (text), ``bytes`` (text taken as UTF-8, unless ``binary``),
        a :class:`~ws4py.messaging.Message`, or an iterable of chunks sent as one fragmented message.

        Raises :class:`~ws4py.exc.StreamClosed` once the connection is closing.
        """
        proto = self.proto
        if isinstance(payload, str):
            proto._send_data(payload, False)
        elif isinstance(payload, (bytes, bytearray, memoryview)):
            proto._send_data(payload, binary)
        elif isinstance(payload, Message):
            # A received message still has its bytes: no encoding again for an echo.
            data = payload._data
            proto._send_data(data if data is not None else str(payload), payload.is_binary)
        elif isinstance(payload, Iterable):
            proto._send_fragments(payload, binary)
        else:
            raise ValueError(f"cannot send a {type(payload).__name__}: expected str, bytes, a Message or an iterable")

    def ping(self, message: str | bytes = b"") -> None:
        """Send a ping; the pong comes to :meth:`ponged`."""
        core = self.proto._open_core()
        self.proto._write(
            core.send_ping(message.encode() if isinstance(message, str) else bytes(message), unique=False)
        )

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (once); the connection ends when the peer answers or after ``close_timeout``."""
        self.proto._start_close(code, reason)

    def terminate(self) -> None:
        """Drop the connection now, without a closing handshake."""
        self.proto._abort()

    async def drain(self) -> None:
        """Wait until the transport's buffer is under ``write_limit`` (or the connection is gone)."""
        self.proto._flush_pending()
        await self.proto._drain()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.peer_address}>"


class EchoWebSocket(WebSocket):
    """Sends every message back."""

    def received_message(self, message: Message) -> None:
        self.send(message)


class WebSocketProtocol(Endpoint):
    """The asyncio protocol for one server connection with a ``handler_cls`` websocket.

    ``loop.create_server(lambda: WebSocketProtocol(EchoWebSocket), host, port)``.
    The handshake accepts permessage-deflate unless ``compression=None``,
    offers ``subprotocols`` and checks ``origins`` like :func:`ws4py.asyncio.serve`;
    ``options`` sets the limits and timers (:class:`~ws4py.asyncio.endpoint.Options`).
    """

    __slots__ = ("handler_cls", "ws")

    def __init__(
        self,
        handler_cls: type[WebSocket] = WebSocket,
        *,
        subprotocols: Sequence[str] | None = None,
        compression: str | None = "deflate",
        origins: Iterable[str | None] | None = None,
        options: Options | None = None,
    ) -> None:
        handshake = ServerHandshake(
            subprotocols=subprotocols,
            compression=_DEFLATE if compression == "deflate" else None,
            origins=origins,
        )
        super().__init__(options or _DEFAULT_OPTIONS, handshake)
        self.handler_cls = handler_cls
        self.ws: WebSocket | None = None

    # -- events to callbacks -------------------------------------------------

    def _opened(self) -> None:
        self.ws = ws = self.handler_cls(self)
        if self._pending is None:
            self._pending = []  # what the callbacks send goes out in one write
        try:
            ws.opened()
        except Exception as exc:
            self._callback_failed(exc)
        self._flush_pending()

    def data_received(self, data: bytes | memoryview) -> None:
        core = self._core
        if core is None:
            super().data_received(data)
            return
        # Most messages come as (first byte, payload) pairs: no event objects to make and sort.
        messages, events = core.receive_messages(data)
        ws = self.ws
        assert ws is not None
        if self._pending is None:
            self._pending = []  # what the callbacks send goes out in one write
        try:
            for first_byte, payload in messages:
                if first_byte == WHOLE_TEXT:
                    # Validated bytes (the core's decode_text is off): decoded if the callback asks.
                    ws.received_message(TextMessage.received_text(None, payload))  # type: ignore[attr-defined,arg-type]
                else:
                    ws.received_message(BinaryMessage.received_bytes(Opcode.BINARY, payload))  # type: ignore[attr-defined,arg-type]
            if events:
                self._dispatch(ws, events)
        except Exception as exc:
            self._callback_failed(exc)
        self._flush_pending()
        if events:
            self._flush_core(core)

    def _events(self, events: list[Event]) -> None:
        ws = self.ws
        assert ws is not None
        if self._pending is None:
            self._pending = []  # what the callbacks send goes out in one write
        try:
            self._dispatch(ws, events)
        except Exception as exc:
            self._callback_failed(exc)
        self._flush_pending()

    def _dispatch(self, ws: WebSocket, events: list[Event]) -> None:
        """Call ``ws``'s callbacks for ``events``, in order; what they raise is the caller's."""
        for event in events:
            kind = type(event)
            if kind is TextReceived:
                ws.received_message(TextMessage.received_text(event.decoded, event.raw))  # type: ignore[attr-defined]
            elif kind is BinaryReceived:
                ws.received_message(BinaryMessage.received_bytes(Opcode.BINARY, event.data))  # type: ignore[attr-defined]
            elif kind is PingReceived:
                # The pong goes before what later messages' callbacks send (Autobahn 5.6).
                assert self._core is not None
                pongs = self._core.pongs_to_send()
                if pongs:
                    self._write(pongs)
            elif kind is PongReceived:
                self._pong_received(event)  # type: ignore[arg-type]
                ws.ponged(PongControlMessage(event.payload))  # type: ignore[attr-defined]

    def _callback_failed(self, exc: Exception) -> None:
        ws = self.ws
        try:
            if ws is not None:
                ws.unhandled_error(exc)
        finally:
            self._start_close(1011, "internal error")

    def _lost(self) -> None:
        ws = self.ws
        if ws is None:
            return
        self._pending = None
        try:
            ws.closed(self.close_code or 1006, self.close_reason or "")
        except Exception:
            logger.exception("Error in closed() of %r", ws)

    # -- writing -------------------------------------------------------------

    def pause_writing(self) -> None:
        # The peer does not read what the callbacks send: stop reading what it
        # sends too, so an echo waits in the kernel instead of in our buffers.
        super().pause_writing()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    def _send_data(self, data: str | bytes | bytearray | memoryview, binary: bool) -> None:
        core = self._open_core()
        if binary and isinstance(data, str):
            data = data.encode()
        if len(data) < LARGE_PAYLOAD:
            self._write(_first_frame(core, data, binary, True))
            return
        self._write_large(*core.frame_parts(data, binary))

    def _send_fragments(self, chunks: Iterable[str | bytes], binary: bool) -> None:
        core = self._open_core()
        iterator = iter(chunks)
        chunk = next(iterator, None)
        first = True
        while True:
            following = next(iterator, None) if chunk is not None else None
            last = following is None
            data = b"" if chunk is None else chunk
            if first:
                frame = _first_frame(core, data, binary, last)
                first = False
            else:
                frame = core.send_continuation(data, last)
            self._write(frame)
            if last:
                return
            chunk = following


def _first_frame(core: CoreConnection, data: str | bytes | bytearray | memoryview, binary: bool, fin: bool) -> bytes:
    """A message's (first) frame: ``binary`` decides the opcode, whatever the type of ``data``."""
    if binary:
        return core.send_binary(data.encode() if isinstance(data, str) else data, fin)
    return core.send_text(data, fin)


_DEFLATE = DeflateOptions()  # settings only: shared by every connection
_DEFAULT_OPTIONS = Options(logger=logging.getLogger("ws4py.async_websocket"))
