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
the callbacks send while they run, to their own connection or any other of
the same thread's loop (a broadcast written as ``for ws in clients:
ws.send(m)``), is held and written when they return: one write per
connection, in order. Sends made outside a callback (a task, a timer) are
written at once.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

from .asyncio.endpoint import Options
from .asyncio.handshake import ServerSide
from .asyncio.options import deflate_options
from .classic import ClassicCallbacks, ClassicTermination, Payload, close_outcome, deliver, dispatch, sendable
from .messaging import Message
from .protocol import Connection, Event, ServerHandshake, State
from .protocol.deflate import EXTENSION_NAME
from .protocol.fragments import OutgoingFragments
from .protocol.frames import LARGE_PAYLOAD, Opcode

__all__ = ["EchoWebSocket", "WebSocket", "WebSocketProtocol"]

logger = logging.getLogger("ws4py")


class _LoopCork:
    """While callbacks run on one event loop: the other connections they sent to.

    Each of those holds its frames in its ``_pending`` until the outermost
    callback returns (:meth:`WebSocketProtocol._end_callbacks`). One per loop,
    so it is only ever used from the loop's thread.
    """

    __slots__ = ("corked", "running")

    def __init__(self) -> None:
        self.running = False
        self.corked: list[WebSocketProtocol] = []

    def flush(self) -> None:
        """One write for each connection corked (the list emptied first: a flush may cork none again)."""
        corked, self.corked = self.corked, []
        for proto in corked:
            proto.flush_frames()


_loop_corks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopCork] = weakref.WeakKeyDictionary()


def _cork_of(loop: asyncio.AbstractEventLoop) -> _LoopCork:
    cork = _loop_corks.get(loop)
    if cork is None:
        cork = _loop_corks[loop] = _LoopCork()
    return cork


_OPEN = State.OPEN
_BINARY = Opcode.BINARY  # module globals: an enum class attribute is a slow look-up (3.11)
_WHOLE = (str, bytes, bytearray, memoryview)


class WebSocket(ClassicTermination, ClassicCallbacks):
    """A WebSocket with ws4py's callbacks, driven by a :class:`WebSocketProtocol`.

    Override :meth:`opened`, :meth:`received_message`, :meth:`ponged`,
    :meth:`closed` and :meth:`unhandled_error` (their meaning is
    :class:`ws4py.classic.ClassicCallbacks`'). :meth:`send`, :meth:`ping`
    and :meth:`close` do not block: bytes go to the transport's buffer.
    Callers that produce a lot should ``await websocket.drain()`` between
    sends to respect ``write_limit``. A callback that raises closes the
    connection with 1011.
    """

    def __init__(self, proto: WebSocketProtocol) -> None:
        self.proto = proto

    def unhandled_error(self, error: BaseException) -> None:
        """Called with an exception a callback raised (the connection then closes with 1011),
        or the transport's error that ended the connection; logs it."""
        logger.error("Error in %r", self, exc_info=error)

    # -- properties --------------------------------------------------------

    @property
    def terminated(self) -> bool:
        """Whether the connection is over and its transport closed."""
        return self.proto.closed

    @property
    def protocols(self) -> list[str]:
        """The subprotocol agreed on, as a list (empty when none)."""
        sub = self.proto.subprotocol
        return [sub] if sub else []

    @property
    def extensions(self) -> list[str]:
        """The extensions agreed on: ``["permessage-deflate"]`` or ``[]``."""
        core = self.proto.core
        return [] if core is None or core.deflate is None else [EXTENSION_NAME]

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

    def send(self, payload: Payload | Iterable[str | bytes], binary: bool = False) -> None:
        """Send a message: ``str`` (text), ``bytes`` (text taken as UTF-8, unless ``binary``),
        a :class:`~ws4py.messaging.Message`, or an iterable of chunks sent as one fragmented message
        (FIN on the last chunk; an empty iterable sends one empty message).

        Raises :class:`~ws4py.exc.StreamClosed` once the connection is closing.
        """
        is_binary, data = sendable(payload, binary)
        if isinstance(data, _WHOLE):
            self.proto.send_message(data, is_binary)
        else:
            self.proto.send_fragments(data, is_binary)

    def ping(self, message: str | bytes = b"") -> None:
        """Send a ping; the pong comes to :meth:`ponged`."""
        self.proto.send_ping(message.encode() if isinstance(message, str) else bytes(message))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (once); the connection ends when the peer answers or after ``close_timeout``."""
        self.proto.start_close(code, reason)

    def terminate(self) -> None:
        """Drop the connection now, without a closing handshake."""
        self.proto.abort()

    def close_connection(self) -> None:
        """:meth:`terminate` (ws4py 0.6's name): drop the connection now."""
        self.proto.abort()

    def _termination_core(self) -> Connection | None:
        return self.proto.core

    async def drain(self) -> None:
        """Wait until the transport's buffer is under ``write_limit`` (or the connection is gone)."""
        self.proto.flush_frames()
        await self.proto.drain()

    # -- for ws4py.asyncio.broadcast, which takes these websockets themselves ----

    def broadcast_core(self) -> Connection | str:
        """See :meth:`ws4py.asyncio.endpoint.Endpoint.broadcast_core`."""
        return self.proto.broadcast_core()

    def write_frame_soon(self, data: bytes) -> None:
        """See :meth:`WebSocketProtocol.write_frame_soon`."""
        self.proto.write_frame_soon(data)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.peer_address}>"


class EchoWebSocket(WebSocket):
    """Sends every message back."""

    def received_message(self, message: Message) -> None:
        self.send(message)


class WebSocketProtocol(ServerSide):
    """The asyncio protocol for one server connection with a ``handler_cls`` websocket.

    ``loop.create_server(lambda: WebSocketProtocol(EchoWebSocket), host, port)``.
    The handshake accepts permessage-deflate unless ``compression=None``
    (another value is a ``ValueError``), offers ``subprotocols`` and checks
    ``origins`` like :func:`ws4py.asyncio.serve`; ``options`` sets the limits
    and timers (:class:`~ws4py.asyncio.endpoint.Options`).
    """

    __slots__ = ("_loop_cork", "handler_cls", "ws")

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
            compression=deflate_options(compression),
            origins=origins,
        )
        super().__init__(options or _DEFAULT_OPTIONS, handshake)
        self._loop_cork = _cork_of(self._loop)
        self.handler_cls = handler_cls
        self.ws: WebSocket | None = None

    # -- events to callbacks -------------------------------------------------

    def _opened(self) -> None:
        self.ws = ws = self.handler_cls(self)
        outermost = self._begin_callbacks()
        try:
            ws.opened()
        except Exception as exc:
            self._callback_failed(exc)
        finally:
            self._end_callbacks(outermost)

    def data_received(self, data: bytes | memoryview) -> None:
        core = self._core
        if core is None:
            super().data_received(data)
            return
        # Most messages come as (first byte, payload) pairs: no event objects to make and sort.
        messages, events = core.receive_messages(data)
        ws = self.ws
        assert ws is not None
        # _begin_callbacks and _end_callbacks, inline: this runs for every read.
        if self._pending is None:
            self._pending = []
        cork = self._loop_cork
        outermost = not cork.running
        cork.running = True
        try:
            if messages:
                deliver(ws, messages)
            if events:
                dispatch(ws, events, core, self.write_frame, self._pong_received)
        except Exception as exc:
            self._callback_failed(exc)
        finally:
            self.flush_frames()
            if outermost:
                cork.running = False
                if cork.corked:
                    cork.flush()
        if events:
            self._flush_core(core)

    def _events(self, events: list[Event]) -> None:
        ws = self.ws
        core = self._core
        assert ws is not None and core is not None
        outermost = self._begin_callbacks()
        try:
            dispatch(ws, events, core, self.write_frame, self._pong_received)
        except Exception as exc:
            self._callback_failed(exc)
        finally:
            self._end_callbacks(outermost)

    def _begin_callbacks(self) -> bool:
        """Callbacks are about to run: hold what they send, here and to the loop's other connections.

        Returns whether these are the outermost callbacks running on the loop
        (the ones whose end writes what the others were sent).
        """
        if self._pending is None:
            self._pending = []
        cork = self._loop_cork
        outermost = not cork.running
        cork.running = True
        return outermost

    def _end_callbacks(self, outermost: bool) -> None:
        """The callbacks returned: one write per connection sent to (this one first)."""
        self.flush_frames()
        if outermost:
            cork = self._loop_cork
            cork.running = False
            if cork.corked:
                cork.flush()

    def _callback_failed(self, exc: Exception) -> None:
        ws = self.ws
        try:
            if ws is not None:
                ws.unhandled_error(exc)
        finally:
            self.start_close(1011, "internal error")

    def _lost(self, exc: Exception | None) -> None:
        ws = self.ws
        if ws is None:
            return
        outermost = self._begin_callbacks()  # what closed() sends to the others goes out when it returns
        try:
            if exc is not None:
                ws.unhandled_error(exc)  # the transport failed: that ended the connection
        except Exception:
            logger.exception("Error in unhandled_error() of %r", ws)
        try:
            ws.closed(*close_outcome(self.core))
        except Exception:
            logger.exception("Error in closed() of %r", ws)
        finally:
            self._end_callbacks(outermost)

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

    def send_message(self, data: str | bytes | bytearray | memoryview, binary: bool) -> None:
        """Send one whole message: binary when ``binary`` (a ``str`` is then encoded), else text."""
        core = self._core
        if core is None or core.state is not _OPEN:
            core = self._open_core()  # raises
        if len(data) < LARGE_PAYLOAD:
            if binary:
                frame = core.send_binary(data.encode() if isinstance(data, str) else data)
            else:
                frame = core.send_text(data)
            pending = self._pending
            if pending is not None:
                pending.append(frame)
            else:
                self.write_frame(frame)
            return
        self.write_large_frame(*core.frame_parts(data, binary))

    def write_frame_soon(self, data: bytes) -> None:
        """Write ``data`` when the running callbacks return, or else when the running task yields."""
        if self._loop_cork.running:
            self.write_frame(data)
        else:
            super().write_frame_soon(data)

    def write_frame(self, data: bytes) -> None:
        """Write ``data`` now, or when the running callbacks return (see the module docstring)."""
        pending = self._pending
        if pending is None:
            cork = self._loop_cork
            if not cork.running:
                transport = self._transport
                assert transport is not None
                transport.write(data)
                return
            pending = self._pending = []
            cork.corked.append(self)
        pending.append(data)

    def send_fragments(self, chunks: Iterable[str | bytes], binary: bool) -> None:
        """Send ``chunks`` as one fragmented message, binary when ``binary`` (see :class:`OutgoingFragments`)."""
        message = self._fragments = OutgoingFragments(self._open_core(), binary)
        try:
            for chunk in chunks:
                frame = message.add(chunk)
                if frame:
                    self.write_frame(frame)
            self.write_frame(message.end())
        finally:
            self._fragments = None

    def send_ping(self, payload: bytes = b"") -> None:
        """Send a ping (a payload still waiting for its pong may be sent again)."""
        self.write_frame(self._open_core().send_ping(payload, unique=False))


_DEFAULT_OPTIONS = Options(logger=logging.getLogger("ws4py.async_websocket"))
