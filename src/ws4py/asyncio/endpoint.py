"""One WebSocket over an asyncio transport: the core, its events, keepalive and close.

:class:`Endpoint` is the part shared by both asyncio APIs of ws4py: the
awaitable :class:`ws4py.asyncio.Connection` and the callback-style
:class:`ws4py.async_websocket.WebSocketProtocol`. It is an
:class:`asyncio.BufferedProtocol`, so bytes reach the core with no task or
stream in between. The pieces that stand alone are in their own modules:
the write side (:mod:`.writing`), the two sides of the opening handshake
(:mod:`.handshake`), the settings (:mod:`.options`). Subclasses only decide
what becomes of the core's events.

The core decides what happens to TCP once the WebSocket is closed
(:attr:`ws4py.protocol.Connection.transport_action`); this module only obeys,
bounding every wait with ``close_timeout``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

from ..exc import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK, HandshakeError
from ..protocol import (
    ClientHandshake,
    Event,
    PongReceived,
    Request,
    Response,
    ServerHandshake,
    State,
    TransportAction,
)
from ..protocol import (
    Connection as CoreConnection,
)
from ..protocol.fragments import OutgoingFragments
from ..protocol.headers import Headers
from ..protocol.http11 import REASONS
from .options import Options
from .writing import WriteSide, direct_socket_fd, writev_fd

__all__ = ["READ_SIZE", "Endpoint", "Options", "ProcessRequest"]

_OK_CODES = frozenset((1000, 1001, 1005))
_CLOSE = TransportAction.CLOSE
_HALF_CLOSE = TransportAction.HALF_CLOSE
_AWAIT_CLOSE = TransportAction.AWAIT_CLOSE

#: Bytes read from a socket at once, into a buffer shared by the endpoints of a thread.
READ_SIZE = 256 * 1024
_thread_buffers = threading.local()


def _read_buffer() -> memoryview:
    """This thread's read buffer.

    Every endpoint of a loop reads into the same buffer and hands it to its
    core, which copies what it keeps before returning: no allocation per
    read, and no buffer per idle connection. (Reading into a fresh 256 KiB
    ``bytes`` per read, as ``asyncio.Protocol`` does, costs glibc an mmap,
    an mremap and an munmap each time.)
    """
    view: memoryview | None = getattr(_thread_buffers, "view", None)
    if view is None:
        view = _thread_buffers.view = memoryview(bytearray(READ_SIZE))
    return view


#: ``process_request(connection, request)``: ``None`` to go on with the handshake, or a
#: :class:`~ws4py.protocol.Response` to answer with instead (plain HTTP, or a refusal).
ProcessRequest = Callable[[Any, Request], "Response | Awaitable[Response | None] | None"]


class Endpoint(WriteSide):
    """The transport side of a WebSocket; see the module docstring.

    Subclasses implement :meth:`_events` (the core's events of one read),
    :meth:`_opened` (the handshake succeeded) and :meth:`_lost` (the
    transport is gone); a handshake side (:class:`~.handshake.ServerSide` or
    :class:`~.handshake.ClientSide`) implements :meth:`_handshake_started`
    and :meth:`_handshake_data`.
    """

    __slots__ = (
        "__weakref__",
        "_close_timer",
        "_core",
        "_fragments",
        "_handshake",
        "_hook_task",
        "_id",
        "_keepalive_timer",
        "_open_timer",
        "_options",
        "_pings",
        "_pong_timer",
        "_process_request",
        "_read_view",
        "_reading_frame",
        "_response",
        "request",
    )

    def __init__(
        self,
        options: Options,
        handshake: ServerHandshake | ClientHandshake,
        process_request: ProcessRequest | None = None,
    ) -> None:
        super().__init__()
        self._options = options
        # The opening handshake in progress (None once done, refused, or while a hook runs).
        self._handshake: ServerHandshake | ClientHandshake | None = handshake
        self._process_request = process_request
        # An async process_request still running: cancelled if the connection goes first.
        self._hook_task: asyncio.Future[Any] | None = None
        self._read_view = _read_buffer()
        self._reading_frame = False  # get_buffer handed out the core's large-frame buffer
        self._core: CoreConnection | None = None
        # The fragmented message being sent, if any: other data messages wait for it.
        self._fragments: OutgoingFragments | None = None
        self._pings: dict[bytes, tuple[asyncio.Future[float], float]] = {}
        self._open_timer: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self._keepalive_timer: asyncio.TimerHandle | None = None  # the next keepalive ping
        self._pong_timer: asyncio.TimerHandle | None = None  # the deadline of the last one's pong
        self._id: uuid.UUID | None = None
        #: The opening handshake's request and response (``None`` until known).
        self.request: Request | None = None
        # The response, or the 101's header fields until someone asks (a Response
        # with its Headers costs about a kilobyte per idle connection).
        self._response: Response | list[tuple[str, str]] | None = None

    # -- what subclasses provide -----------------------------------------

    def _events(self, events: list[Event]) -> None:
        raise NotImplementedError

    def _opened(self) -> None:
        raise NotImplementedError

    def _lost(self, exc: Exception | None) -> None:
        """The transport is closed (``exc``: the error that closed it); the outcome is in :attr:`close_code`."""

    def _handshake_failed(self, exc: BaseException) -> None:
        """The opening handshake failed or was refused (the transport is closing)."""

    def _handshake_started(self, transport: asyncio.Transport) -> None:
        """The transport is there: the client sends its request."""
        raise NotImplementedError

    def _handshake_data(self, data: bytes | memoryview) -> None:
        """Bytes of the opening handshake."""
        raise NotImplementedError

    # -- public state ----------------------------------------------------

    @property
    def core(self) -> CoreConnection | None:
        """The protocol core, once the opening handshake is done (``None`` before)."""
        return self._core

    @property
    def options(self) -> Options:
        """The settings of this connection (shared with the others of its server or ``connect``)."""
        return self._options

    @property
    def response(self) -> Response | None:
        """The opening handshake's response (``None`` until known)."""
        response = self._response
        if isinstance(response, list):
            response = self._response = Response(101, REASONS[101], Headers(response))
        return response

    @property
    def id(self) -> uuid.UUID:
        """A unique identifier of this connection (made when first asked for)."""
        if self._id is None:
            self._id = uuid.uuid4()
        return self._id

    @property
    def state(self) -> State:
        """``CONNECTING`` during the opening handshake, then the core's state."""
        core = self._core
        if core is not None:
            return core.state
        return State.CLOSED if self._closed.done() else State.CONNECTING

    @property
    def open(self) -> bool:
        """Whether messages can be sent: the handshake is done and no close has started."""
        core = self._core
        return core is not None and core.state is State.OPEN

    @property
    def close_code(self) -> int | None:
        """The code of the peer's close frame (1005: none in it; 1006: no close frame); ``None`` while open."""
        core = self._core
        if core is None:
            return 1006 if self._closed.done() else None
        return core.close_code

    @property
    def close_reason(self) -> str | None:
        """The reason in the peer's close frame (``""`` if none); ``None`` while open."""
        core = self._core
        if core is None:
            return "" if self._closed.done() else None
        return core.close_reason if core.close_code is not None else None

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol agreed on in the handshake, if any."""
        core = self._core
        return None if core is None else core.subprotocol

    @property
    def remote_address(self) -> Any:
        """The peer's address (``(host, port)``, or a path for a Unix socket); ``None`` before connecting."""
        transport = self._transport
        return None if transport is None else transport.get_extra_info("peername")

    @property
    def local_address(self) -> Any:
        """This side's address (``(host, port)``, or a path for a Unix socket); ``None`` before connecting."""
        transport = self._transport
        return None if transport is None else transport.get_extra_info("sockname")

    @property
    def transport(self) -> asyncio.Transport | None:
        """The asyncio transport, once connected."""
        return self._transport

    @property
    def sending_fragments(self) -> bool:
        """Whether a fragmented message is being sent: other data messages wait for it."""
        return self._fragments is not None

    def broadcast_core(self) -> CoreConnection | str:
        """For :func:`~ws4py.asyncio.broadcast`: the core to frame a message with now, or why not.

        The reason is ``"closed"`` (not open), ``"slow"`` (the transport
        holds more than ``write_limit``) or ``"busy"`` (a fragmented message
        is being sent). What is framed goes out with :meth:`write_frame_soon`.
        """
        core = self._core
        transport = self._transport
        if core is None or transport is None or core.state is not State.OPEN or transport.is_closing():
            return "closed"
        if transport.get_write_buffer_size() > self._options.write_limit:
            return "slow"
        if self._fragments is not None:
            return "busy"
        return core

    def arm_outlet(self) -> bool:
        """For :func:`~ws4py.asyncio.broadcast`: whether a shared frame may be sent on the socket straight now.

        If so, :attr:`outlet` is armed (its ``fd`` is the socket's) until
        anything might change that (see :attr:`outlet`). Only when
        :meth:`broadcast_core` would give a core whose frames are shareable
        and nothing would go before the frame: no frame corked, no fragmented
        message being sent, nothing in the transport's buffer, which is a
        plain socket one (not TLS: :func:`~.writing.direct_socket_fd`). What
        the socket does not take goes to :meth:`write_rest`. Not while a
        broadcast owes it frames (:func:`ws4py.fanout.owe`). Otherwise
        :meth:`broadcast_core` says what to do instead.
        """
        fd = self._direct_fd
        outlet = self.outlet
        if fd < 0 or outlet.owed is not None or self._pending is not None or self._fragments is not None:
            return False
        core = self._core
        transport = self._transport
        if (
            core is None
            or transport is None
            or not core.frames_shareable
            or transport.get_write_buffer_size()
            or transport.is_closing()
        ):
            return False
        outlet.fd = fd
        return True

    def _open_core(self) -> CoreConnection:
        """The core, to send on; raises unless the connection is open."""
        core = self._core
        if core is None:
            raise RuntimeError("the opening handshake is not complete")
        if core.state is not State.OPEN:
            raise self._closed_exception()
        return core

    def _closed_exception(self) -> ConnectionClosed:
        """The exception that says how the connection ended (or is ending)."""
        core = self._core
        if core is None:
            return ConnectionClosedError(1006, "the opening handshake did not complete")
        code = core.close_code
        if code is None:  # our close is out, the peer's is not in yet
            sent = core.close_sent
            code, reason = sent if sent is not None else (1006, "")
            return (ConnectionClosedOK if code in _OK_CODES else ConnectionClosedError)(code, reason)
        sent = core.close_sent
        if core.failure is None and sent is not None and code in _OK_CODES and sent[0] in _OK_CODES:
            return ConnectionClosedOK(code, core.close_reason)
        return ConnectionClosedError(code, core.close_reason)

    # -- asyncio.Protocol ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have the interface but not the class.
        transport = self._transport = cast(asyncio.Transport, transport)
        self._writev_fd = writev_fd(transport)
        self._direct_fd = direct_socket_fd(transport)
        options = self._options
        transport.set_write_buffer_limits(high=options.write_limit)
        if options.open_timeout is not None:
            self._open_timer = self._loop.call_later(options.open_timeout, self._open_timed_out)
        self._handshake_started(transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        """Where asyncio reads next (``BufferedProtocol``): a large frame's own buffer, or the shared one."""
        core = self._core
        if core is not None:
            # The rest of a large frame goes straight into the frame's own buffer,
            # when that is no smaller a read than the usual one.
            view = core.receive_buffer()
            if view is not None and len(view) >= READ_SIZE:
                self._reading_frame = True
                return view
        return self._read_view

    def buffer_updated(self, nbytes: int) -> None:
        self._disarm()  # what arrives may change the core's state (a close, a ping to answer)
        if self._reading_frame:
            self._reading_frame = False
            core = self._core
            assert core is not None
            self._events(core.received_into(nbytes))
            self._flush_core(core)
            return
        self.data_received(self._read_view[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        self._disarm()  # what arrives may change the core's state (a close, a ping to answer)
        core = self._core
        if core is None:
            self._handshake_data(data)
            return
        self._events(core.receive_data(data))
        self._flush_core(core)

    def eof_received(self) -> bool | None:
        self._disarm()
        core = self._core
        if core is not None:
            core.receive_eof()
            self._end_transport(core)
        return None  # the transport closes itself (the core says CLOSE after an EOF)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()  # the transport closes the socket after this returns: its number may be reused
        for timer in (self._open_timer, self._close_timer, self._keepalive_timer, self._pong_timer):
            if timer is not None:
                timer.cancel()
        self._open_timer = self._close_timer = self._keepalive_timer = self._pong_timer = None
        core = self._core
        if core is not None:
            core.receive_eof()
        if not self._closed.done():
            self._closed.set_result(None)
        closed = self._closed_exception()
        for waiter, _ in self._pings.values():
            if not waiter.done():
                waiter.set_exception(closed)
                waiter.exception()  # retrieved: an unawaited ping must not log an error
        self._pings.clear()
        self._wake_drainers()
        hook = self._hook_task
        if hook is not None:
            self._hook_task = None
            hook.cancel()  # open_timeout, or the peer left: no one waits for its answer
        if self._handshake is not None:
            handshake_exc = HandshakeError("the connection closed during the opening handshake", None)
            # No answer at all: a server restarting or shedding load, which connect()'s reconnection retries.
            handshake_exc.__cause__ = EOFError("the peer closed the connection")
            self._handshake = None
            self._handshake_failed(exc or handshake_exc)
        self._lost(exc)

    # -- closing -----------------------------------------------------------

    def _flush_core(self, core: CoreConnection) -> None:
        """Write what the core owes (pongs, a close) and do with TCP what the core says once it is closed.

        While the transport holds more than ``write_limit`` (the peer does not
        read), pongs wait in the core, which keeps only the last few (RFC 6455
        5.5.3), until :meth:`resume_writing`: a peer that sends pings and never
        reads cannot grow our buffer. Reading goes on meanwhile (stopping it
        would deadlock two peers that both send more than the other reads).
        """
        if self._write_paused and core.close_code is None:
            return
        out = core.data_to_send()
        transport = self._transport
        assert transport is not None
        if out:
            self._disarm()
            self.flush_frames()  # pongs and a close go after the frames gathered before them
            transport.write(out)
        if core.state is State.CLOSED and not transport.is_closing():
            self._end_transport(core)

    def resume_writing(self) -> None:
        super().resume_writing()
        core = self._core
        transport = self._transport
        if core is not None and transport is not None and not transport.is_closing():
            self._flush_core(core)  # the pongs held while paused (asyncio lets a protocol write here)

    def _end_transport(self, core: CoreConnection) -> None:
        """Obey the core's ``transport_action``, bounding every wait with ``close_timeout``."""
        self._disarm()
        transport = self._transport
        assert transport is not None
        action = core.transport_action
        if action is _CLOSE:
            transport.close()
            # close() flushes the buffer first, which a peer that reads nothing never lets happen.
            self._arm_close_timer()
        elif action is _HALF_CLOSE:
            # Our close frame goes out, then EOF; what the peer still sends is
            # read and dropped until it closes, or the close timer aborts.
            if transport.can_write_eof():
                transport.write_eof()
            else:
                transport.close()
            self._arm_close_timer()
        elif action is _AWAIT_CLOSE:
            self._arm_close_timer()

    def _arm_close_timer(self) -> None:
        timeout = self._options.close_timeout
        if self._close_timer is None and timeout is not None:
            self._close_timer = self._loop.call_later(timeout, self.abort)

    def abort(self) -> None:
        """Drop the connection now, without a closing handshake."""
        self._disarm()
        transport = self._transport
        if transport is not None:
            transport.abort()

    def start_close(self, code: int | None = 1000, reason: str = "") -> None:
        """Send a close frame (once) and bound the wait for the peer's with ``close_timeout``.

        During the opening handshake there is no WebSocket to close: the
        connection is dropped.
        """
        self._disarm()
        core = self._core
        transport = self._transport
        if core is None:
            if transport is not None:
                transport.abort()
            return
        if transport is None or transport.is_closing():
            return
        self.flush_frames()  # the close frame goes after every data frame
        frame = core.send_close(code, reason)
        if frame:
            transport.write(frame)
        if core.state is State.CLOSED:
            self._end_transport(core)
        else:
            self._arm_close_timer()

    # -- pings and keepalive ---------------------------------------------

    def _send_ping(self, payload: bytes | None) -> asyncio.Future[float]:
        """Send a ping; the future resolves with the round trip in seconds when its pong arrives."""
        core = self._open_core()
        if payload is None:
            payload = os.urandom(4)
            while payload in self._pings:
                payload = os.urandom(4)
        frame = core.send_ping(payload)
        waiter: asyncio.Future[float] = self._loop.create_future()
        self._pings[payload] = (waiter, self._loop.time())
        self.write_frame(frame)
        return waiter

    def _pong_received(self, event: PongReceived) -> None:
        now = self._loop.time()
        for payload in event.acknowledged:
            entry = self._pings.pop(payload, None)
            if entry is not None and not entry[0].done():
                entry[0].set_result(now - entry[1])

    def _start_keepalive(self) -> None:
        interval = self._options.ping_interval
        if interval is not None:
            self._keepalive_timer = self._loop.call_later(interval, self._keepalive)

    def _keepalive(self) -> None:
        """Ping every ``ping_interval``; no pong within ``ping_timeout`` of a ping closes with 1011."""
        self._keepalive_timer = None
        if not self.open:
            return
        waiter = self._send_ping(None)
        self._start_keepalive()
        timeout = self._options.ping_timeout
        if timeout is not None and self._pong_timer is None:
            self._pong_timer = self._loop.call_later(timeout, self._pong_overdue, waiter)

    def _pong_overdue(self, waiter: asyncio.Future[float]) -> None:
        self._pong_timer = None
        if not waiter.done():
            self._options.logger.info("%s: no pong within %ss, closing", self, self._options.ping_timeout)
            self.start_close(1011, "keepalive ping timeout")

    # -- the end of the opening handshake ------------------------------------

    def _open_timed_out(self) -> None:
        self._open_timer = None
        if self._core is None and self._transport is not None:
            self._options.logger.info("opening handshake timed out after %ss", self._options.open_timeout)
            self._transport.abort()

    def _established(self, core: CoreConnection, leftover: bytes) -> None:
        self._handshake = None
        self._core = core
        if self._open_timer is not None:
            self._open_timer.cancel()
            self._open_timer = None
        self._start_keepalive()
        self._opened()
        if leftover and self._transport is not None and not self._transport.is_closing():
            self.data_received(leftover)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.state.name} {self.remote_address}>"
