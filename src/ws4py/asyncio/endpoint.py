"""One WebSocket over an asyncio transport: handshake, core, flow control, keepalive and close.

:class:`Endpoint` is the part shared by both asyncio APIs of ws4py: the
awaitable :class:`ws4py.asyncio.Connection` and the callback-style
:class:`ws4py.async_websocket.WebSocketProtocol`. It is an
:class:`asyncio.BufferedProtocol`, so bytes reach the core with no task or
stream in between; subclasses only decide what becomes of the core's events.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
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
)
from ..protocol import (
    Connection as CoreConnection,
)
from ..protocol.connection import DEFAULT_MAX_MESSAGE_SIZE
from ..protocol.headers import Headers
from ..protocol.http11 import REASONS, serialize_request, serialize_response

__all__ = ["Endpoint", "Options", "ProcessRequest"]

_OK_CODES = frozenset((1000, 1001, 1005))
#: At most this many frames wait in a cork before they are written.
_CORK_LIMIT = 64

#: Bytes read from a socket at once, into a buffer shared by the endpoints of a thread.
READ_SIZE = 256 * 1024
_thread_buffers = threading.local()

# asyncio's writelines sends a list with one sendmsg from Python 3.12; before, it joins. Before
# 3.13.2 it also never paused the protocol at the high-water mark (CPython gh-127655), so send()
# did not wait for a peer that does not read: 3.12 takes the writev path below too.
_VECTORED_WRITELINES = sys.version_info >= (3, 13, 2)
#: Below this, a large frame's header and payload are joined into one write (no vectored writelines).
_JOIN_LIMIT = 256 * 1024
# The plain socket transport (no vectored writelines), whose socket a large frame may be written to directly.
_SELECTOR_TRANSPORT: type | None = None
if not _VECTORED_WRITELINES and hasattr(os, "writev"):
    import asyncio.selector_events

    _SELECTOR_TRANSPORT = getattr(asyncio.selector_events, "_SelectorSocketTransport", None)


def _writev_fd(transport: asyncio.BaseTransport) -> int:
    """The descriptor a large frame may be written to with ``os.writev``, or -1.

    Only for the plain (not TLS) socket transport, when its writelines is not
    used (before Python 3.13.2): without a vectored write a large frame costs a copy of its payload
    (header and payload joined) or a second system call (and a packet of its
    own for the header, TCP_NODELAY being set).
    """
    if _SELECTOR_TRANSPORT is None or type(transport) is not _SELECTOR_TRANSPORT:
        return -1
    sock = transport.get_extra_info("socket")
    return -1 if sock is None else int(sock.fileno())


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


@dataclass(frozen=True)
class Options:
    """Settings shared by every connection of one server or one ``connect`` (one object, not one per connection).

    ``max_size`` bounds a message (bytes, after decompression; ``None``: no
    bound), ``max_queue`` the received messages waiting for ``recv`` (reading
    pauses at that many) and ``max_queue_bytes`` the bytes they hold (reading
    pauses at that many too, with two messages or more; ``None``: no bound),
    ``write_limit`` the bytes waiting in the transport before ``send`` waits.
    ``ping_interval``/``ping_timeout`` drive the keepalive (``None`` turns it
    off); ``open_timeout`` bounds the opening handshake and ``close_timeout``
    the closing one.

    ``max_queue_bytes`` is small by default because the socket's kernel buffer
    reads ahead already: large messages queued beyond it would only leave the
    CPU cache before the handler sends them on (16 queued 64 KiB messages per
    connection made an echo server a third slower), and what a slow consumer
    holds stays near ``max_size`` instead of ``max_queue`` times it.
    """

    max_size: int | None = DEFAULT_MAX_MESSAGE_SIZE
    max_queue: int = 16
    max_queue_bytes: int | None = 64 * 1024
    write_limit: int = 32 * 1024
    ping_interval: float | None = 20.0
    ping_timeout: float | None = 20.0
    open_timeout: float | None = 10.0
    close_timeout: float | None = 10.0
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("ws4py.asyncio"))

    def __post_init__(self) -> None:
        if self.max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        if self.max_queue_bytes is not None and self.max_queue_bytes < 0:
            raise ValueError("max_queue_bytes must not be negative")
        if self.write_limit < 0:
            raise ValueError("write_limit must not be negative")


class Endpoint(asyncio.BufferedProtocol):
    """The transport side of a WebSocket; see the module docstring.

    Subclasses implement :meth:`_events` (the core's events of one read),
    :meth:`_opened` (the handshake succeeded) and :meth:`_lost` (the
    transport is gone).
    """

    __slots__ = (
        "__weakref__",
        "_close_timer",
        "_closed",
        "_core",
        "_drain_waiters",
        "_handshake",
        "_id",
        "_keepalive_timer",
        "_loop",
        "_open_timer",
        "_options",
        "_pending",
        "_pings",
        "_pong_timer",
        "_process_request",
        "_read_view",
        "_reading_frame",
        "_response",
        "_transport",
        "_write_paused",
        "_writev_fd",
        "request",
    )

    def __init__(
        self,
        options: Options,
        handshake: ServerHandshake | ClientHandshake,
        process_request: ProcessRequest | None = None,
    ) -> None:
        self._options = options
        self._handshake: ServerHandshake | ClientHandshake | None = handshake
        self._process_request = process_request
        self._loop = asyncio.get_running_loop()
        self._read_view = _read_buffer()
        self._reading_frame = False  # get_buffer handed out the core's large-frame buffer
        self._transport: asyncio.Transport | None = None
        self._writev_fd = -1  # see _writev_fd
        self._core: CoreConnection | None = None
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._write_paused = False
        # Frames held back to go out in one write (see _write); None when not corking.
        self._pending: list[bytes] | None = None
        self._drain_waiters: list[asyncio.Future[None]] = []
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

    def _lost(self) -> None:
        """The transport is closed; the outcome is in :attr:`close_code`."""

    def _handshake_failed(self, exc: BaseException) -> None:
        """The opening handshake failed or was refused (the transport is closing)."""

    # -- public state ----------------------------------------------------

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
        self._writev_fd = _writev_fd(transport)
        options = self._options
        transport.set_write_buffer_limits(high=options.write_limit)
        if options.open_timeout is not None:
            self._open_timer = self._loop.call_later(options.open_timeout, self._open_timed_out)
        handshake = self._handshake
        if isinstance(handshake, ClientHandshake):
            headers = handshake.request_headers()
            self.request = Request("GET", handshake.resource, Headers(headers))
            transport.write(serialize_request("GET", handshake.resource, headers))

    def get_buffer(self, sizehint: int) -> memoryview:
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
        if self._reading_frame:
            self._reading_frame = False
            core = self._core
            assert core is not None
            self._events(core.received_into(nbytes))
            self._flush_core(core)
            return
        self.data_received(self._read_view[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        core = self._core
        if core is None:
            self._handshake_data(data)
            return
        self._events(core.receive_data(data))
        self._flush_core(core)

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
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
        if self._handshake is not None:
            handshake_exc = HandshakeError("the connection closed during the opening handshake", 0)
            self._handshake = None
            self._handshake_failed(exc or handshake_exc)
        self._lost()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drainers()

    # -- writing ---------------------------------------------------------

    def _write(self, data: bytes) -> None:
        """Write ``data`` now, or after the frames being gathered when corked."""
        pending = self._pending
        if pending is not None:
            pending.append(data)
            return
        transport = self._transport
        assert transport is not None
        transport.write(data)

    def _write_soon(self, data: bytes) -> None:
        """Write ``data`` when the running callback or task yields, with whatever else is sent until then.

        Many small frames then cost one system call. The gathered frames are
        written at once past ``_CORK_LIMIT`` of them, so the wait stays short.
        """
        pending = self._pending
        if pending is None:
            self._pending = [data]
            self._loop.call_soon(self._flush_pending)
        else:
            pending.append(data)
            if len(pending) >= _CORK_LIMIT:
                self._flush_pending()

    def _write_large(self, header: bytes, payload: bytes) -> None:
        """A large frame's header and payload, in one system call when that costs no copy of the payload."""
        corked = self._pending is not None
        self._flush_pending()
        transport = self._transport
        assert transport is not None
        if not payload:
            transport.write(header)
        elif _VECTORED_WRITELINES or type(transport).__module__.startswith("uvloop"):
            transport.writelines((header, payload))  # sendmsg/writev: no copy
        elif self._writev_fd >= 0:
            self._writev(transport, header, payload)
        elif len(payload) <= _JOIN_LIMIT:
            transport.write(header + payload)  # a copy costs less than a second system call
        else:
            transport.write(header)
            transport.write(payload)
        if corked:
            self._pending = []

    def _writev(self, transport: asyncio.Transport, header: bytes, payload: bytes) -> None:
        """Header and payload in one ``writev`` on the socket; what it did not take, to the transport."""
        sent = 0
        # With bytes queued before these (or the transport going), only the
        # transport may write: it appends both to its buffer, one copy either way.
        if not transport.get_write_buffer_size() and not transport.is_closing():
            # Full (BlockingIOError), or broken: the transport meets the same
            # condition on its own write and handles it its own way. (Not
            # contextlib.suppress: three Python calls per large frame.)
            try:  # noqa: SIM105
                sent = os.writev(self._writev_fd, (header, payload))
            except OSError:
                pass
        if sent < len(header):
            transport.write(header[sent:])
            transport.write(payload)
        elif sent < len(header) + len(payload):
            transport.write(memoryview(payload)[sent - len(header) :])

    def _flush_pending(self) -> None:
        """Uncork: one write (one system call) for every frame gathered."""
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        transport = self._transport
        if pending and transport is not None and not transport.is_closing():
            transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def _wake_drainers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _drain(self) -> None:
        """Wait until the transport's buffer is under ``write_limit`` again (or the connection is gone)."""
        while self._write_paused and not self._closed.done():
            waiter = self._loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter

    def _flush_core(self, core: CoreConnection) -> None:
        """Write what the core owes (pongs, a close) and close the transport when the close is done."""
        out = core.data_to_send()
        transport = self._transport
        assert transport is not None
        if out:
            self._flush_pending()  # pongs and a close go after the frames gathered before them
            transport.write(out)
        if core.state is State.CLOSED and not transport.is_closing():
            self._after_close(core)

    def _after_close(self, core: CoreConnection) -> None:
        """Both close frames crossed, or the connection failed: end TCP as RFC 6455 7.1.1 says."""
        transport = self._transport
        assert transport is not None
        if core.failure is not None or not core.is_client:
            # The server closes TCP first. After a failure the peer may still be
            # sending: half-close, so our close frame is not lost to a reset, and
            # let the close timer abort if the peer never closes its side.
            if core.failure is not None and transport.can_write_eof():
                transport.write_eof()
                self._arm_close_timer()
                return
            transport.close()
            return
        # A client waits for the server to close TCP, but not for ever.
        self._arm_close_timer()

    def _arm_close_timer(self) -> None:
        timeout = self._options.close_timeout
        if self._close_timer is None and timeout is not None:
            self._close_timer = self._loop.call_later(timeout, self._abort)

    def _abort(self) -> None:
        transport = self._transport
        if transport is not None:
            transport.abort()

    def _start_close(self, code: int | None, reason: str) -> None:
        """Send a close frame (once) and bound the wait for the peer's."""
        core = self._core
        transport = self._transport
        if core is None:
            # Still in the opening handshake: there is no WebSocket to close.
            if transport is not None:
                transport.abort()
            return
        if transport is None or transport.is_closing():
            return
        self._flush_pending()  # the close frame goes after every data frame
        frame = core.send_close(code, reason)
        if frame:
            transport.write(frame)
        if core.state is State.CLOSED:
            self._after_close(core)
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
        self._write(frame)
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
            self._start_close(1011, "keepalive ping timeout")

    # -- the opening handshake --------------------------------------------

    def _open_timed_out(self) -> None:
        self._open_timer = None
        if self._core is None and self._transport is not None:
            self._options.logger.info("opening handshake timed out after %ss", self._options.open_timeout)
            self._transport.abort()

    def _handshake_data(self, data: bytes | memoryview) -> None:
        handshake = self._handshake
        if handshake is None:
            return  # refused, or a process_request hook is running: ignore what comes
        if isinstance(handshake, ServerHandshake):
            self._request_data(handshake, data)
        else:
            self._response_data(handshake, data)

    def _request_data(self, handshake: ServerHandshake, data: bytes | memoryview) -> None:
        try:
            request = handshake.receive_data(data)
        except HandshakeError as exc:
            self._refuse(ServerHandshake.reject(exc), exc)
            return
        if request is None:
            return
        self.request = request
        hook = self._process_request
        if hook is None:
            self._accept(handshake, request)
            return
        assert self._transport is not None
        self._transport.pause_reading()
        self._handshake = None  # what arrives meanwhile waits in the kernel
        try:
            answer = hook(self, request)
        except Exception as exc:
            self._hook_failed(exc)
            return
        if isinstance(answer, Awaitable):
            task = asyncio.ensure_future(answer)
            task.add_done_callback(lambda done: self._hook_done(handshake, request, done))
        else:
            self._answer(handshake, request, answer)

    def _hook_done(self, handshake: ServerHandshake, request: Request, done: asyncio.Future[Any]) -> None:
        if done.cancelled():
            self._abort()
            return
        exc = done.exception()
        if exc is not None:
            self._hook_failed(exc)
            return
        self._answer(handshake, request, done.result())

    def _hook_failed(self, exc: BaseException) -> None:
        self._options.logger.error("process_request failed", exc_info=exc)
        self._refuse(ServerHandshake.reject(500, "Internal Server Error"), exc)

    def _answer(self, handshake: ServerHandshake, request: Request, answer: Response | None) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if answer is None:
            self._handshake = handshake
            transport.resume_reading()
            self._accept(handshake, request)
            return
        if not isinstance(answer, Response):
            self._hook_failed(TypeError(f"process_request must return a Response or None, not {answer!r}"))
            return
        self._response = answer
        exc = HandshakeError(f"refused by process_request: {answer.status}", answer.status)
        self._refuse(ServerHandshake.respond(answer), exc)

    def _accept(self, handshake: ServerHandshake, request: Request) -> None:
        try:
            headers = handshake.negotiate(request)
        except HandshakeError as exc:
            self._refuse(ServerHandshake.reject(exc), exc)
            return
        assert self._transport is not None
        self._response = headers
        self._transport.write(serialize_response(101, headers))
        self._established(handshake.connection(max_message_size=self._options.max_size), handshake.leftover)

    def _refuse(self, answer: bytes, exc: BaseException) -> None:
        self._handshake = None
        transport = self._transport
        assert transport is not None
        transport.write(answer)
        transport.close()
        self._handshake_failed(exc)

    def _response_data(self, handshake: ClientHandshake, data: bytes | memoryview) -> None:
        try:
            response = handshake.receive_data(data)
        except HandshakeError as exc:
            self._response = handshake.response
            self._handshake = None
            assert self._transport is not None
            self._transport.close()
            self._handshake_failed(exc)
            return
        if response is None:
            return
        self._response = response
        self._established(handshake.connection(max_message_size=self._options.max_size), handshake.leftover)

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
