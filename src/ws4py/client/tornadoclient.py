"""ws4py 0.6's Tornado client on current Tornado (6.4+): its asyncio ``IOStream``, ws4py's core.

:class:`TornadoWebSocketClient` keeps 0.6's constructor, callbacks
(``opened``, ``received_message``, ``ponged``, ``closed``,
``unhandled_error``, ``handshake_ok``) and methods (``connect``, ``send``,
``ping``, ``close``, ``close_connection``); the opening handshake, the frames
and the closing handshake are the protocol core's
(:class:`~ws4py.protocol.ClientHandshake`, :class:`~ws4py.protocol.Connection`),
the bytes go through a :class:`tornado.iostream.IOStream`. 0.6's usage works as
it was::

    class MyClient(TornadoWebSocketClient):
        def opened(self):
            self.send("hello")

        def received_message(self, message):
            print(message)

        def closed(self, code, reason=None):
            ioloop.IOLoop.current().stop()

    ws = MyClient("ws://localhost:9000/echo", protocols=["chat"])
    ws.connect()
    ioloop.IOLoop.current().start()

Inside a coroutine, ``await ws.connect()`` waits for the handshake and raises
its failure (:class:`~ws4py.exc.HandshakeError`, ``OSError``,
``TimeoutError``); ``await ws.send(...)`` waits until the message is written.
Every callback runs on the IOLoop's thread; ``send``, ``ping``, ``close`` and
``close_connection`` called from another thread are handed to it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import socket
from collections import deque
from collections.abc import Iterable
from typing import Any

from tornado.ioloop import IOLoop
from tornado.iostream import IOStream, SSLIOStream, StreamClosedError
from tornado.tcpclient import TCPClient

from ..classic import ClassicCallbacks, ClassicTermination, Payload, close_outcome, deliver, dispatch, sendable
from ..exc import HandshakeError, StreamClosed
from ..messaging import CloseReason, Message
from ..protocol import ClientHandshake, Connection, DeflateOptions, Opcode, State, TransportAction
from ..protocol.deflate import EXTENSION_NAME
from ..protocol.fragments import OutgoingFragments
from ..protocol.uri import parse_uri
from ..sockio import address_of
from . import client_ssl_context

__all__ = ["TornadoWebSocketClient"]

logger = logging.getLogger("ws4py")


class TornadoWebSocketClient(ClassicTermination, ClassicCallbacks):
    """A WebSocket client on a Tornado IOLoop, with ws4py's callbacks (see the module docstring).

    ``url`` is ``ws://``, ``wss://`` or ``ws+unix:///path``; ``protocols``
    the subprotocols to offer; ``extensions`` may hold
    ``"permessage-deflate"``; ``io_loop`` the :class:`~tornado.ioloop.IOLoop`
    to run on (the current one at :meth:`connect` by default);
    ``ssl_options``, ``headers`` and ``exclude_headers`` mean what they mean
    for :class:`~ws4py.client.WebSocketBaseClient` (TLS verifies the server
    by default). After the handshake ``protocols`` and ``extensions`` hold
    what was agreed, ``io`` is the stream. One instance connects once.
    """

    #: Seconds for connecting plus the whole opening handshake.
    open_timeout = 10.0
    #: Seconds to wait for the server's part of the closing handshake.
    close_timeout = 5.0
    #: Largest message accepted, after reassembly and decompression (1009 above).
    max_message_size: int | None = 16 * 1024 * 1024
    #: Bytes waiting in the stream's buffer above which a ``send`` is refused
    #: (:class:`~ws4py.exc.StreamClosed`) and the server closed with 1008: it does not read.
    max_write_buffer = 4 * 1024 * 1024
    #: Most bytes read from the stream at a time.
    reading_buffer_size = 65536

    def __init__(
        self,
        url: str,
        protocols: list[str] | None = None,
        extensions: list[str] | None = None,
        io_loop: IOLoop | None = None,
        ssl_options: dict[str, Any] | None = None,
        headers: list[tuple[str, str]] | None = None,
        exclude_headers: list[str] | None = None,
    ) -> None:
        uri = parse_uri(url, unix=True)
        self.url = url
        self.scheme = ("wss" if uri.secure else "ws") + ("+unix" if uri.unix_path else "")
        self.secure = uri.secure
        self.unix_socket_path: str | None = uri.unix_path
        self.host = uri.host
        self.port: int | None = uri.port
        self.resource = uri.resource
        self.protocols = list(protocols or [])
        self.extensions = list(extensions or [])
        self.io_loop = io_loop
        self.ssl_options = dict(ssl_options or {})
        self.extra_headers = list(headers or [])
        self.exclude_headers = [name.lower() for name in exclude_headers or []]
        #: The handshake's ``Sec-WebSocket-Key`` (base64 bytes, as in 0.6; may be replaced before connect()).
        self.key = base64.b64encode(os.urandom(16))
        #: The stream, once the TCP connection is made.
        self.io: IOStream | None = None
        #: The handshake, once it succeeded.
        self.handshake: ClientHandshake | None = None
        #: The protocol core's connection, once the handshake succeeded.
        self.protocol: Connection | None = None
        self._started = False
        self._aborted = False  # close_connection() before the stream existed
        self._terminated = False
        # The writes handed to the stream and not known to be done, oldest first, and their bytes.
        self._writes: deque[tuple[asyncio.Future[None], int]] = deque()
        self._buffered = 0
        self._close_timer: object | None = None
        self._local_address: Any = None
        self._peer_address: Any = None

    # -- callbacks (opened, received_message, ponged, closed: ClassicCallbacks) ----

    def handshake_ok(self) -> None:
        """Called once the handshake succeeded; by default it calls :meth:`opened`."""
        self.opened()

    def unhandled_error(self, error: BaseException) -> None:
        """Called with an error that ends the connection: a failed handshake, an error
        of the socket, or what a callback raised (the connection then closes with
        1011). By default it logs."""
        if isinstance(error, (OSError, HandshakeError)):
            logger.warning("%s: %s", self, error)
        else:
            logger.error("Closing %s after an error in its handler", self, exc_info=error)

    # -- properties ------------------------------------------------------------

    @property
    def terminated(self) -> bool:
        """Whether the connection is over (``closed()`` was called or is being called)."""
        return self._terminated

    @property
    def sock(self) -> socket.socket | None:
        """The stream's socket (``None`` before the connection is made)."""
        return None if self.io is None else self.io.socket

    connection = sock

    @property
    def bind_addr(self) -> Any:
        """What the stream connects to: the Unix socket path or ``(host, port)``."""
        return self.unix_socket_path or (self.host, self.port)

    @property
    def local_address(self) -> Any:
        """The socket's own address (kept once known, so still there in ``closed()``)."""
        if self._local_address is None:
            self._local_address = address_of(getattr(self.sock, "getsockname", None))
        return self._local_address

    @property
    def peer_address(self) -> Any:
        """The server's address (kept as :attr:`local_address` is)."""
        if self._peer_address is None:
            self._peer_address = address_of(getattr(self.sock, "getpeername", None))
        return self._peer_address

    def _termination_core(self) -> Connection | None:
        return self.protocol

    # -- connecting ------------------------------------------------------------

    def connect(self) -> asyncio.Future[None]:
        """Connect and perform the opening handshake on the IOLoop, then call :meth:`handshake_ok`.

        Returns at once (the IOLoop does the work) with a future that is done
        once the connection is open, or holds why it failed. Either way a
        failure also goes to :meth:`unhandled_error` and ``closed(1006, why)``,
        as 0.6 called ``closed()``.
        """
        if self._started:
            raise RuntimeError("this client connected already; make a new one to reconnect")
        self._started = True
        if self.io_loop is None:
            self.io_loop = IOLoop.current()
        future: asyncio.Future[None] = self.io_loop.asyncio_loop.create_future()  # type: ignore[attr-defined]
        self.io_loop.add_callback(self._run, future)
        return future

    async def _run(self, opened: asyncio.Future[None]) -> None:
        try:
            await asyncio.wait_for(self._open(), self.open_timeout)
        except Exception as error:
            self._failed_to_open(error, opened)
            return
        if not opened.done():
            opened.set_result(None)
        self._callback(self.handshake_ok)
        assert self.handshake is not None
        if self.handshake.leftover:  # frames the server sent with its 101 response
            self._received(self.handshake.leftover)
        await self._read_until_the_end()

    async def _open(self) -> None:
        try:
            stream = await self._open_stream()
        except StreamClosedError as exc:  # Tornado's wrapping of the OS's error
            raise exc.real_error if isinstance(exc.real_error, OSError) else ConnectionError(str(exc)) from None
        if self._aborted:
            raise ConnectionAbortedError("close_connection() was called during the handshake")
        handshake = ClientHandshake(
            self.host,
            self.resource,
            port=self.port,
            secure=self.secure,
            subprotocols=self.protocols,
            compression=DeflateOptions() if EXTENSION_NAME in self.extensions else None,
            headers=self.extra_headers,
            exclude_headers=self.exclude_headers,
            key=self.key.decode("ascii"),
        )
        try:
            await stream.write(handshake.request_bytes())
            while handshake.receive_data(await stream.read_bytes(4096, partial=True)) is None:
                pass
        except StreamClosedError as exc:
            if isinstance(exc.real_error, OSError):
                raise exc.real_error from None
            if self._aborted:
                raise ConnectionAbortedError("close_connection() was called during the handshake") from None
            raise HandshakeError("the server closed the connection during the handshake", None) from None
        self.handshake = handshake
        self.protocol = handshake.connection(max_message_size=self.max_message_size)
        self.protocols = [handshake.subprotocol] if handshake.subprotocol else []
        self.extensions = [EXTENSION_NAME] if handshake.extensions else []

    async def _open_stream(self) -> IOStream:
        if self.unix_socket_path is not None:
            stream = self.io = IOStream(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM))
            await stream.connect(self.unix_socket_path)
            return stream
        stream = self.io = await TCPClient().connect(self.host, self.port or (443 if self.secure else 80))
        if self.secure:
            self.io = None  # start_tls takes the socket over, and closes it if it fails
            server_name = self.ssl_options.get("server_hostname", self.host)
            stream = await stream.start_tls(False, client_ssl_context(self.ssl_options), server_name)
            self.io = stream
        return stream

    def _failed_to_open(self, error: Exception, opened: asyncio.Future[None]) -> None:
        if isinstance(error, (asyncio.TimeoutError, TimeoutError)) and not error.args:  # wait_for's
            error = TimeoutError(f"no WebSocket handshake with {self.url} within {self.open_timeout}s")
        self._terminated = True
        if self.io is not None:
            self.io.close()
        if not opened.done():
            opened.set_exception(error)
            opened.exception()  # reported below: no "never retrieved" for 0.6 code that ignores it
        self._callback(self.unhandled_error, error)
        self._callback(self.closed, 1006, CloseReason(f"the handshake failed: {error}"))

    # -- reading ---------------------------------------------------------------

    async def _read_until_the_end(self) -> None:
        stream, protocol = self.io, self.protocol
        assert stream is not None and protocol is not None
        try:
            while protocol.state is not State.CLOSED:
                try:
                    data = await stream.read_bytes(self.reading_buffer_size, partial=True)
                except StreamClosedError as exc:
                    if isinstance(exc.real_error, OSError) and protocol.close_received is None:
                        self._callback(self.unhandled_error, exc.real_error)
                    protocol.receive_eof()
                    break
                self._received(data)
            # What the core says to do with TCP, every wait bounded by the close timer.
            action = protocol.transport_action
            await self._flushed()
            if action is TransportAction.CLOSE:
                return
            if action is TransportAction.HALF_CLOSE and not isinstance(stream, SSLIOStream):
                # Our close frame must not be lost to a reset: read until the server's EOF.
                with contextlib.suppress(OSError):
                    stream.socket.shutdown(socket.SHUT_WR)
            elif action is TransportAction.HALF_CLOSE:
                return  # TLS: no half-close without dropping the TLS session
            # AWAIT_CLOSE: a client waits for the server to close TCP first (RFC 6455 7.1.1).
            self._arm_close_timer()
            with contextlib.suppress(StreamClosedError):
                while True:
                    await stream.read_bytes(self.reading_buffer_size, partial=True)
        finally:
            self._finish()

    def _received(self, data: bytes) -> None:
        protocol = self.protocol
        assert protocol is not None
        messages, events = protocol.receive_messages(data)
        try:
            if messages:
                deliver(self, messages)
            if events:
                dispatch(self, events, protocol, self._write_quietly)
        except Exception as exc:
            self._handler_failed(exc)
        finally:
            # Even when a callback raised: the close owed to the server must still go out.
            reply = protocol.data_to_send()
            if reply:
                self._write_quietly(reply)
        if protocol.close_sent is not None:
            self._arm_close_timer()

    def _callback(self, callback: Any, *args: Any) -> None:
        """Run one of the user's callbacks; what it raises ends the connection (1011)."""
        try:
            callback(*args)
        except Exception as exc:
            if callback == self.unhandled_error or callback == self.closed:
                logger.exception("Error in %s of %s", getattr(callback, "__name__", callback), self)
            else:
                self._handler_failed(exc)

    def _handler_failed(self, error: Exception) -> None:
        self._callback(self.unhandled_error, error)
        self.close(1011, "internal error")

    # -- writing ---------------------------------------------------------------

    def _write(self, data: bytes) -> asyncio.Future[None]:
        stream = self.io
        if stream is None or stream.closed():
            raise StreamClosed("cannot send: the connection is over")
        future: asyncio.Future[None] = stream.write(data)
        future.add_done_callback(_retrieve)
        self._writes.append((future, len(data)))
        self._buffered += len(data)
        return future

    def _write_quietly(self, data: bytes) -> None:
        """Write an answer of the protocol (a pong, a close), unless the stream is gone:
        then there is no one to answer, and the read side sees the end."""
        with contextlib.suppress(StreamClosed):
            self._write(data)

    def _unwritten(self) -> int:
        """Bytes the stream has not written yet. Its write futures are done, in order, as
        soon as it wrote them (their callbacks come later): they tell, not the callbacks."""
        writes = self._writes
        while writes and writes[0][0].done():
            self._buffered -= writes.popleft()[1]
        return self._buffered

    async def _flushed(self) -> None:
        """Wait until what was written went out (bounded by the close timer)."""
        if self._writes:
            with contextlib.suppress(StreamClosedError):
                await self._writes[-1][0]

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.io_loop.asyncio_loop  # type: ignore[union-attr]
        except RuntimeError:  # no loop runs on this thread
            return False

    def _elsewhere(self, method: Any, *args: Any) -> bool:
        """Hand ``method(*args)`` to the IOLoop's thread if this is not it."""
        if self.io_loop is None or self._on_loop():
            return False
        self.io_loop.add_callback(method, *args)
        return True

    def send(self, payload: Payload | Iterable[str | bytes], binary: bool = False) -> asyncio.Future[None] | None:
        """Send a message: ``str`` (text), ``bytes`` (text unless ``binary``), a
        :class:`~ws4py.messaging.Message`, or an iterable of chunks sent as one
        fragmented message.

        On the IOLoop's thread it returns a future done once the message is
        written (awaiting it waits for the server to read: backpressure); from
        another thread the send is handed to the IOLoop and it returns ``None``.
        Raises :class:`~ws4py.exc.StreamClosed` when the connection is not
        open, and when more than :attr:`max_write_buffer` bytes already wait
        (the server, which does not read, is then closed with 1008).
        """
        if self._elsewhere(self.send, payload, binary):
            return None
        protocol = self._open_protocol()
        if self._unwritten() > self.max_write_buffer:
            self.close(1008, "write buffer overflow: the server is not reading")
            raise StreamClosed(f"cannot send: more than {self.max_write_buffer} bytes already wait to be written")
        if isinstance(payload, Message) and payload.opcode >= Opcode.CLOSE:
            content = payload.content
            data = content.encode() if isinstance(content, str) else content
            if payload.opcode == Opcode.PING:
                return self._write(protocol.send_ping(data, unique=False))
            return self._write(protocol.send_pong(data))
        is_binary, data = sendable(payload, binary)
        if isinstance(data, (str, bytes, bytearray, memoryview)):
            if is_binary:
                return self._write(protocol.send_binary(data.encode() if isinstance(data, str) else data))
            return self._write(protocol.send_text(data))
        message = OutgoingFragments(protocol, is_binary)
        for chunk in data:
            frame = message.add(chunk)
            if frame:
                self._write(frame)
        return self._write(message.end())

    def ping(self, message: str | bytes = b"") -> None:
        """Send a ping; the pong comes to :meth:`ponged`."""
        if self._elsewhere(self.ping, message):
            return
        payload = message.encode() if isinstance(message, str) else bytes(message)
        self._write(self._open_protocol().send_ping(payload, unique=False))

    def _open_protocol(self) -> Connection:
        protocol = self.protocol
        if protocol is None or protocol.state is not State.OPEN or self._terminated:
            raise StreamClosed("cannot send: the connection is not open")
        return protocol

    # -- closing ---------------------------------------------------------------

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (once; later calls do nothing). The connection
        ends when the server answers and closes TCP, or after :attr:`close_timeout`."""
        if self._elsewhere(self.close, code, reason):
            return
        protocol = self.protocol
        if protocol is None:
            self.close_connection()  # not open yet: nothing to say, the connection just ends
            return
        frame = protocol.send_close(code, reason)
        if not frame:
            return
        with contextlib.suppress(StreamClosed):  # the server is gone: nothing to close
            self._write(frame)
        self._arm_close_timer()

    def close_connection(self) -> None:
        """Drop the connection now, without a closing handshake (the stream is closed;
        ``closed()`` follows, with 1006 unless a close frame came)."""
        if self._elsewhere(self.close_connection):
            return
        self._aborted = True
        if self.io is not None:
            self.io.close()

    terminate = close_connection

    def _arm_close_timer(self) -> None:
        if self._close_timer is None and self.io_loop is not None and not self._terminated:
            self._close_timer = self.io_loop.call_later(self.close_timeout, self._close_timed_out)

    def _close_timed_out(self) -> None:
        if not self._terminated:
            logger.info("Closing %s: no end of the closing handshake within %ss", self, self.close_timeout)
            self.close_connection()

    def _finish(self) -> None:
        """The connection is over: close the stream, then call ``closed()`` once."""
        if self._terminated:
            return
        if self.io is not None:
            self.local_address, self.peer_address  # noqa: B018 - kept for closed()
        self._terminated = True
        if self._close_timer is not None:
            assert self.io_loop is not None
            self.io_loop.remove_timeout(self._close_timer)
            self._close_timer = None
        protocol = self.protocol
        if protocol is not None and protocol.state is not State.CLOSED:
            protocol.receive_eof()
        if self.io is not None:
            self.io.close()
        self._callback(self.closed, *close_outcome(protocol))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"


def _retrieve(write: asyncio.Future[None]) -> None:
    """A write that failed (the stream closed): the read side reports the end, not asyncio's log."""
    if not write.cancelled():
        write.exception()
