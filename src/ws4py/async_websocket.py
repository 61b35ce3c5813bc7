"""ws4py's callback-style WebSocket on asyncio, server and client: ``received_message`` and friends, no task each.

The documented snippet::

    from ws4py.async_websocket import EchoWebSocket
    from ws4py.server.tulipserver import WebSocketProtocol

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(
        loop.create_server(lambda: WebSocketProtocol(EchoWebSocket), "", 9007))
    loop.run_forever()

and its client twin::

    from ws4py.async_websocket import WebSocket, connect

    class Feed(WebSocket):
        def received_message(self, message):
            print(message)

    ws = await connect("wss://example.com/feed", Feed)
    ws.send("subscribe")
    await ws.wait_closed()

:class:`WebSocketProtocol` (server) and :class:`WebSocketClientProtocol`
(client) are :class:`asyncio.Protocol` objects that do the opening handshake
with the same core and limits as :mod:`ws4py.asyncio`, then call the
handler's callbacks straight from ``data_received``; both sides' callbacks
come in the same order with the same close codes. What the callbacks send
while they run, to their own connection or any other of the same thread's
loop (a broadcast written as ``for ws in clients: ws.send(m)``), is held
and written when they return: one write per connection, in order. Sends
made outside a callback (a task, a timer) are written when it yields (or
every :data:`~ws4py.asyncio.writing.CORK_LIMIT` frames): a task that sends
many messages pays one system call for them.
"""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
import weakref
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar, cast

from .asyncio.client import connect as _ClientSettings
from .asyncio.endpoint import Endpoint, Options
from .asyncio.handshake import ClientSide, ServerSide
from .asyncio.options import deflate_options
from .asyncio.writing import CORK_LIMIT
from .classic import ClassicCallbacks, ClassicTermination, Payload, close_outcome, deliver, dispatch, sendable
from .messaging import Message
from .protocol import ClientHandshake, Connection, Event, ServerHandshake, State
from .protocol.deflate import EXTENSION_NAME
from .protocol.fragments import OutgoingFragments
from .protocol.frames import LARGE_PAYLOAD, Opcode

__all__ = [
    "CallbacksProtocol",
    "EchoWebSocket",
    "WebSocket",
    "WebSocketClientProtocol",
    "WebSocketProtocol",
    "connect",
]

logger = logging.getLogger("ws4py")


class _LoopCork:
    """While callbacks run on one event loop: the other connections they sent to.

    Each of those holds its frames in its ``_pending`` until the outermost
    callback returns (:meth:`CallbacksProtocol._end_callbacks`). One per loop,
    so it is only ever used from the loop's thread.
    """

    __slots__ = ("corked", "running")

    def __init__(self) -> None:
        self.running = False
        self.corked: list[CallbacksProtocol] = []

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
    """A WebSocket with ws4py's callbacks, driven by a :class:`CallbacksProtocol` (server or client side).

    Override :meth:`opened`, :meth:`received_message`, :meth:`ponged`,
    :meth:`closed` and :meth:`unhandled_error` (their meaning is
    :class:`ws4py.classic.ClassicCallbacks`'). :meth:`send`, :meth:`ping`
    and :meth:`close` do not block: bytes go to the transport's buffer.
    Callers that produce a lot should ``await websocket.drain()`` between
    sends to respect ``write_limit``. A callback that raises closes the
    connection with 1011.
    """

    def __init__(self, proto: CallbacksProtocol) -> None:
        self.proto = proto
        #: The protocol's :attr:`~ws4py.asyncio.writing.WriteSide.outlet`, for :func:`ws4py.asyncio.broadcast`.
        self.outlet = proto.outlet

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
        kind = type(payload)
        if kind is str or kind is bytes:  # the usual case, without sendable's checks
            self.proto.send_message(payload, binary and kind is bytes)  # type: ignore[arg-type]
            return
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

    async def wait_closed(self) -> None:
        """Wait until the connection is over (``closed()`` has been called by then)."""
        await self.proto.wait_closed()

    # -- for ws4py.asyncio.broadcast, which takes these websockets themselves ----

    def broadcast_core(self) -> Connection | str:
        """See :meth:`ws4py.asyncio.endpoint.Endpoint.broadcast_core`."""
        return self.proto.broadcast_core()

    def write_frame_soon(self, data: bytes) -> None:
        """See :meth:`CallbacksProtocol.write_frame_soon`."""
        self.proto.write_frame_soon(data)

    def arm_outlet(self) -> bool:
        """See :meth:`ws4py.asyncio.endpoint.Endpoint.arm_outlet`."""
        return self.proto.arm_outlet()

    def cork_frame(self, data: bytes) -> bool:
        """See :meth:`CallbacksProtocol.cork_frame`."""
        return self.proto.cork_frame(data)

    def take_frames(self) -> bytes | None:
        """See :meth:`ws4py.asyncio.writing.WriteSide.take_frames`."""
        return self.proto.take_frames()

    def write_rest(self, data: bytes, sent: int) -> None:
        """See :meth:`ws4py.asyncio.writing.WriteSide.write_rest`."""
        self.proto.write_rest(data, sent)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.peer_address}>"


class EchoWebSocket(WebSocket):
    """Sends every message back."""

    def received_message(self, message: Message) -> None:
        self.send(message)


class CallbacksProtocol(Endpoint):
    """The asyncio protocol of one connection, either side, whose websocket is a ``handler_cls``.

    Runs the callbacks straight from ``data_received`` (no task, queue or
    future per message) and holds what they send until they return (see the
    module docstring). :class:`WebSocketProtocol` (server) and
    :class:`WebSocketClientProtocol` (client) add their side's handshake.
    """

    __slots__ = ("_held_pongs", "_loop_cork", "handler_cls", "ws")

    def __init__(
        self,
        handler_cls: type[WebSocket],
        options: Options,
        handshake: ServerHandshake | ClientHandshake,
    ) -> None:
        super().__init__(options, handshake)
        self._loop_cork = _cork_of(self._loop)
        self.handler_cls = handler_cls
        #: The websocket, made when the opening handshake succeeds (``None`` before, or if it failed).
        self.ws: WebSocket | None = None
        # The pongs owed while the transport is over write_limit (the last batch only, RFC 6455 5.5.3).
        self._held_pongs = b""

    async def wait_closed(self) -> None:
        """Wait until the transport is gone (the websocket's ``closed()`` has run by then)."""
        await asyncio.shield(self._closed)

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
        self._disarm()  # as Endpoint.data_received, which this one replaces
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
                dispatch(ws, events, core, self._write_pongs, self._pong_received)
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
            dispatch(ws, events, core, self._write_pongs, self._pong_received)
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
            self._disarm()
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

    def _write_pongs(self, pongs: bytes) -> None:
        """Write the pongs of a ping now, or, while the peer does not read, hold the last ones:
        a peer that sends pings and never reads cannot grow the buffer (as :meth:`_flush_core` has it)."""
        if self._write_paused:
            self._held_pongs = pongs  # answers the most recent ping: enough (RFC 6455 5.5.3)
        else:
            self.write_frame(pongs)

    def resume_writing(self) -> None:
        pongs, self._held_pongs = self._held_pongs, b""
        core = self._core
        if pongs and core is not None and core.close_sent is None:  # never a pong after our close
            self.write_frame(pongs)
        super().resume_writing()

    # Copies of an echoed payload byte, socket -> handler -> socket (issue 23), for
    # EchoWebSocket and a message in one frame from a client (masked), whole in one
    # read; the kernel's copies count. The message holds the received bytes (a text
    # is decoded only if the handler asks for its str), and an echo sends them.
    #
    #                      read  unmask  validate  frame  write   before -> now
    #   binary >= 64 KiB    1     1       -         0      1      3 -> 3
    #   binary < 64 KiB     1     1       -         1      1      4 -> 4
    #   text >= 64 KiB      1     1       1 -> 0    0      1      3 + 1 pass -> 3 (ASCII: checked in the
    #   text < 64 KiB       1     1       1 -> 0    1      1      4 + 1 pass -> 4  unmasking pass)
    #   A str sent: + encode 1 before; now 0 if ASCII (framed, or written, from its own data).
    #   Frames over several reads: the core's rows, protocol/connection.py.
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
            if pending is None:
                self.write_frame(frame)
            else:
                pending.append(frame)
                # Corked by a task that sends many without yielding: a write every CORK_LIMIT frames.
                if len(pending) >= CORK_LIMIT and not self._loop_cork.running:
                    self.flush_frames()
            return
        self.write_large_frame(*core.frame_parts(data, binary))

    def write_frame_soon(self, data: bytes) -> None:
        """Write ``data`` when the running callbacks return, or else when the running task yields."""
        if self._loop_cork.running:
            self.write_frame(data)
        else:
            super().write_frame_soon(data)

    def cork_frame(self, data: bytes) -> bool:
        """:meth:`write_frame_soon`: these connections flush their frames themselves (always False)."""
        self.write_frame_soon(data)
        return False

    def write_frame(self, data: bytes) -> None:
        """Write ``data`` when the running callbacks return, or else when the running task yields
        (see the module docstring)."""
        pending = self._pending
        if pending is None:
            cork = self._loop_cork
            if not cork.running:
                # A task or a timer: what it sends until it yields goes out in one write.
                super().write_frame_soon(data)
                return
            self._disarm()
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


class WebSocketProtocol(ServerSide, CallbacksProtocol):
    """The asyncio protocol for one server connection with a ``handler_cls`` websocket.

    ``loop.create_server(lambda: WebSocketProtocol(EchoWebSocket), host, port)``.
    The handshake accepts permessage-deflate unless ``compression=None``
    (another value is a ``ValueError``), offers ``subprotocols`` and checks
    ``origins`` like :func:`ws4py.asyncio.serve`; ``options`` sets the limits
    and timers (:class:`~ws4py.asyncio.endpoint.Options`).
    """

    __slots__ = ()

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
        super().__init__(handler_cls, options or _DEFAULT_OPTIONS, handshake)

    def pause_writing(self) -> None:
        # The peer does not read what the callbacks send: stop reading what it
        # sends too, so an echo waits in the kernel instead of in our buffers.
        # (Not on the client: a client that bursts to such a server would stop
        # reading its echoes while the server stops reading it, a deadlock.)
        super().pause_writing()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.pause_reading()

    def resume_writing(self) -> None:
        super().resume_writing()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()


class WebSocketClientProtocol(ClientSide, CallbacksProtocol):
    """The asyncio protocol for one client connection with a ``handler_cls`` websocket.

    :func:`connect` makes one and connects it; for ``loop.create_connection``
    use, give it the opening handshake to send::

        handshake = ClientHandshake("example.com", "/feed", port=80)
        transport, proto = await loop.create_connection(
            lambda: WebSocketClientProtocol(MyWebSocket, handshake), "example.com", 80)
        await proto.opened  # proto.ws is the websocket, opened() has run

    ``options`` sets the limits and timers
    (:class:`~ws4py.asyncio.endpoint.Options`; ``max_queue`` and
    ``max_queue_bytes`` do not apply: nothing is queued). Unlike the server
    side, it goes on reading while the server does not read what it sends
    (pongs then wait in the core): stopping would deadlock it with a server
    that does the same. What its callbacks send meanwhile is for them to
    bound with ``await ws.drain()``.
    """

    __slots__ = ("_opened_waiter",)

    def __init__(
        self, handler_cls: type[WebSocket], handshake: ClientHandshake, *, options: Options | None = None
    ) -> None:
        super().__init__(handler_cls, options or _DEFAULT_CLIENT_OPTIONS, handshake)
        self._opened_waiter: asyncio.Future[None] = self._loop.create_future()

    @property
    def opened(self) -> asyncio.Future[None]:
        """Resolves once the opening handshake succeeded (and ``ws.opened()`` ran); raises what made it fail."""
        return self._opened_waiter

    def _opened(self) -> None:
        try:
            super()._opened()
        except Exception as exc:
            # handler_cls(proto) raised: no websocket, so no callback to tell; whoever
            # waits for the opening (connect) raises it, and the connection is dropped.
            if not self._opened_waiter.done():
                self._opened_waiter.set_exception(exc)
            self.abort()
            return
        if not self._opened_waiter.done():
            self._opened_waiter.set_result(None)

    def _handshake_failed(self, exc: BaseException) -> None:
        if not self._opened_waiter.done():
            self._opened_waiter.set_exception(exc)


_W = TypeVar("_W", bound=WebSocket)


async def connect(
    uri: str,
    handler_cls: type[_W] = WebSocket,  # type: ignore[assignment]
    *,
    additional_headers: Iterable[tuple[str, str]] | dict[str, str] | None = None,
    origin: str | None = None,
    subprotocols: Sequence[str] | None = None,
    compression: str | None = "deflate",
    ssl: ssl_module.SSLContext | None = None,
    server_hostname: str | None = None,
    proxy: str | None = None,
    unix: str | None = None,
    open_timeout: float | None = 10.0,
    close_timeout: float | None = 10.0,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    max_size: int | None = Options.max_size,
    write_limit: int = Options.write_limit,
    logger: logging.Logger | None = None,
) -> _W:
    """Connect to ``uri`` (``ws://`` or ``wss://``); the ``handler_cls`` websocket, once open.

    ``ws = await connect("wss://example.com/feed", MyWebSocket)``: its
    ``opened()`` has run when this returns, and its callbacks run from then on
    as the server's do (:class:`WebSocketProtocol`); ``closed()`` is called once
    the connection is over (``await ws.wait_closed()`` waits for that).
    The options mean what they mean for :class:`ws4py.asyncio.connect`:
    ``additional_headers``, ``origin``, ``subprotocols``, ``compression``,
    ``ssl``/``server_hostname``, ``proxy`` (``http://``, ``socks5://``,
    ``socks4://``), ``unix``, ``open_timeout`` (connecting plus the handshake),
    ``close_timeout``, ``ping_interval``/``ping_timeout``, ``max_size``,
    ``write_limit``. A failed handshake raises (:class:`~ws4py.exc.HandshakeError`,
    ``OSError``, ``TimeoutError``) and calls no callback.
    """
    settings = _ClientSettings(
        uri,
        additional_headers=additional_headers,
        origin=origin,
        subprotocols=subprotocols,
        compression=compression,
        ssl=ssl,
        server_hostname=server_hostname,
        proxy=proxy,
        unix=unix,
        open_timeout=open_timeout,
        close_timeout=close_timeout,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        max_size=max_size,
        write_limit=write_limit,
        logger=logger or _DEFAULT_CLIENT_OPTIONS.logger,
    )
    proto = WebSocketClientProtocol(handler_cls, settings.client_handshake(), options=settings.options)
    opening = settings.open_protocol(proto, proto.opened)
    if open_timeout is None:
        await opening
    else:
        await asyncio.wait_for(opening, open_timeout)
    return cast(_W, proto.ws)


_DEFAULT_OPTIONS = Options(logger=logging.getLogger("ws4py.async_websocket"))
_DEFAULT_CLIENT_OPTIONS = Options(logger=logging.getLogger("ws4py.async_websocket.client"))
