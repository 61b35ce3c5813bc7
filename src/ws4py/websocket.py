"""ws4py's WebSocket on threads: callbacks, thread-safe ``send``, bounded writes.

A :class:`WebSocket` is driven by a loop, a :class:`~ws4py.manager.WebSocketManager`:
either a shared manager thread (``manager.add(ws)``) or a private one that
:meth:`WebSocket.run` runs on the calling thread. The loop reads the socket,
feeds the protocol core, calls the callbacks, flushes what could not be
written at once and keeps the timers (heartbeat, close timeout). Every
callback of a websocket runs on its loop's thread.

Writing never blocks the loop: bytes the socket does not take at once wait in
a per-connection buffer that the loop flushes when the socket is writable.
A thread other than the loop's that sends is held back (like ``sendall``)
until the buffer is below :attr:`WebSocket.write_high_water`; the loop's own
sends and broadcasts never wait, and a peer whose buffer is already over
:attr:`WebSocket.max_write_buffer` when more comes is closed with 1008.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from . import format_addresses
from .exc import StreamClosed
from .messaging import BinaryMessage, Message, PongControlMessage, TextMessage
from .protocol import (
    BinaryReceived,
    CloseReceived,
    Connection,
    ConnectionFailed,
    Opcode,
    PingReceived,
    PongReceived,
    Role,
    State,
    TextReceived,
)
from .protocol import frames as _frames

if TYPE_CHECKING:
    from .manager import WebSocketManager

__all__ = ["WebSocket", "EchoWebSocket"]

logger = logging.getLogger("ws4py")

_WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)

# Buffers given to one sendmsg() (the system's IOV_MAX is 1024 or more).
_MAX_IOV = 512

# What the loop does with a connection whose protocol is over: close TCP once the
# buffer is flushed, now, or (after failing the connection) once the peer closed its
# side, reading and dropping what it still sends: closing a socket with unread
# input sends a reset, which would destroy our close frame in flight.
_RUNNING, _CLOSE_AFTER_FLUSH, _CLOSE_NOW, _DRAINING = 0, 1, 2, 3

Payload = str | bytes | bytearray | memoryview | Message


def _address(getter: Any) -> Any:
    if getter is None:
        return None
    try:
        address = getter()
    except (OSError, AttributeError):
        return None
    if isinstance(address, tuple) and len(address) > 2:
        return address[:2]  # IPv6: (host, port, flowinfo, scope_id)
    return address


class WebSocket:
    """One WebSocket connection, with ws4py's callbacks.

    Subclass it and override :meth:`opened`, :meth:`received_message`,
    :meth:`closed`, :meth:`ponged` and :meth:`unhandled_error`. ``sock`` is
    the connected socket, after the opening handshake. ``protocols`` and
    ``extensions`` are what the handshake agreed on, ``environ`` the WSGI
    environ of the upgrade request (server side). With ``heartbeat_freq``
    (seconds) a ping goes out at that period, and a peer that has not
    answered the previous ping by then is closed with 1011.
    """

    __slots__ = (
        "__dict__",
        "_close_deadline",
        "_cond",
        "_deferred",
        "_dirty",
        "_fd",
        "_heartbeat_at",
        "_interest",
        "_local_address",
        "_lock",
        "_manager",
        "_opened",
        "_out",
        "_out_size",
        "_peer_address",
        "_pending_input",
        "_ping_due",
        "_ping_seq",
        "_sender",
        "_teardown",
        "_terminated",
        "_timer_at",
        "environ",
        "extensions",
        "heartbeat_freq",
        "protocol",
        "protocols",
        "sock",
    )

    #: Bytes read from the socket at a time when no loop drives the websocket
    #: (a loop reads into a buffer of its own, :attr:`WebSocketManager.read_size`).
    reading_buffer_size = 65536
    #: A thread other than the loop's that sends waits until the write buffer is
    #: below this; the loop stops reading from a peer whose buffer is above it.
    write_high_water = 64 * 1024
    #: A peer whose write buffer is over this when the loop or a broadcast
    #: sends more (it does not read) is closed with 1008.
    max_write_buffer = 4 * 1024 * 1024
    #: Seconds to wait for the peer's part of the closing handshake.
    close_timeout = 5.0
    #: Largest message accepted, after reassembly and decompression (1009 above).
    max_message_size: int | None = 16 * 1024 * 1024

    def __init__(
        self,
        sock: socket.socket | None,
        protocols: list[str] | None = None,
        extensions: list[str] | None = None,
        environ: dict[str, Any] | None = None,
        heartbeat_freq: float | None = None,
    ) -> None:
        self.sock = sock
        self.protocols = protocols or []
        self.extensions = extensions or []
        self.environ = environ
        self.heartbeat_freq = heartbeat_freq
        #: The protocol core's connection; the handshake that opened the
        #: socket replaces it with one carrying what it negotiated.
        self.protocol = Connection(Role.SERVER, max_message_size=self.max_message_size)
        self._lock = threading.Lock()
        self._cond: threading.Condition | None = None
        self._out: list[bytes | memoryview] = []
        self._out_size = 0
        self._pending_input = b""
        self._manager: WebSocketManager | None = None
        self._fd = -1
        self._local_address: Any = None
        self._peer_address: Any = None
        self._interest = 0
        self._timer_at: float | None = None
        self._close_deadline: float | None = None
        self._heartbeat_at: float | None = None
        self._ping_due: bytes | None = None
        self._ping_seq = 0
        self._sender: int | None = None
        self._deferred: list[tuple[int, bytes | str]] | None = None
        self._teardown = _RUNNING
        self._dirty = False
        self._terminated = False
        self._opened = False

    # -- callbacks ---------------------------------------------------------

    def opened(self) -> None:
        """Called once the connection is open and being read."""

    def received_message(self, message: Message) -> None:
        """Called with each complete :class:`TextMessage` or :class:`BinaryMessage`."""

    def ponged(self, pong: PongControlMessage) -> None:
        """Called with each pong received."""

    def closed(self, code: int, reason: str | None = None) -> None:
        """Called once when the connection is over.

        ``code`` is the peer's close code (1005 if its close frame had none),
        the code this side failed the connection with, or 1006 when the
        connection ended without a close frame.
        """

    def unhandled_error(self, error: BaseException) -> None:
        """Called with a socket error met while reading; the connection then ends."""
        logger.warning("Failed to receive data on %s: %s", format_addresses(self), error)

    # -- properties --------------------------------------------------------

    @property
    def terminated(self) -> bool:
        """Whether the connection is over and its socket closed."""
        return self._terminated

    @property
    def connection(self) -> socket.socket | None:
        return self.sock

    @property
    def local_address(self) -> Any:
        """The socket's own address: ``(host, port)``, or a path for a Unix socket.

        Kept once known, so it is still there in :meth:`closed`.
        """
        if self._local_address is None:
            self._local_address = _address(getattr(self.sock, "getsockname", None))
        return self._local_address

    @property
    def peer_address(self) -> Any:
        """The peer's address: ``(host, port)``, or a path for a Unix socket (kept once known)."""
        if self._peer_address is None:
            self._peer_address = _address(getattr(self.sock, "getpeername", None))
        return self._peer_address

    # -- sending -----------------------------------------------------------

    def send(self, payload: Payload | Iterable[str | bytes], binary: bool = False) -> None:
        """Send a message; safe from any thread.

        ``payload`` is a ``str`` (a text message), ``bytes`` (text, taken as
        UTF-8, unless ``binary``), a :class:`~ws4py.messaging.Message`, or an
        iterable (a generator...) of ``str``/``bytes`` chunks sent as one
        fragmented message, a frame per chunk. Raises
        :class:`~ws4py.exc.StreamClosed` once the connection is closing.
        """
        if isinstance(payload, str):
            self._send(Opcode.TEXT, payload)
        elif isinstance(payload, (bytes, bytearray, memoryview)):
            self._send(Opcode.BINARY if binary else Opcode.TEXT, payload)
        elif isinstance(payload, Message):
            # The bytes when the message has them (a received one), else its text.
            data = payload._data
            self._send(payload.opcode, data if data is not None else str(payload))
        elif isinstance(payload, Iterable):
            self._send_fragments(iter(payload), binary)
        else:
            raise ValueError(f"cannot send a {type(payload).__name__}: expected str, bytes, a Message or an iterable")

    def ping(self, message: str | bytes = b"") -> None:
        """Send a ping; the pong comes to :meth:`ponged`."""
        self._send(Opcode.PING, message)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake (once; later calls do nothing).

        The connection ends when the peer answers, or after
        :attr:`close_timeout` seconds if it does not.
        """
        with self._lock:
            frame = self.protocol.send_close(code, reason)
            if not frame:
                return
            self._close_deadline = time.monotonic() + self.close_timeout
            with contextlib.suppress(StreamClosed):  # the peer is gone: nothing to close
                self._write(frame)
        self._loop_update()

    def _frame(self, opcode: int, data: bytes | bytearray | memoryview | str, fin: bool = True) -> bytes:
        """Frame with the core; the caller holds the lock."""
        protocol = self.protocol
        if opcode == Opcode.TEXT:
            return protocol.send_text(data, fin)  # type: ignore[arg-type]
        if isinstance(data, str):
            data = data.encode()
        if opcode == Opcode.BINARY:
            return protocol.send_binary(data, fin)
        if opcode == Opcode.PING:
            return protocol.send_ping(bytes(data), unique=False)
        if opcode == Opcode.PONG:
            return protocol.send_pong(bytes(data))
        if opcode == Opcode.CLOSE:
            code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
            return protocol.send_close(code, bytes(data[2:]).decode())
        raise ValueError(f"cannot send opcode {opcode}")

    def _send(self, opcode: int, data: bytes | bytearray | memoryview | str) -> None:
        in_loop = self._in_loop()
        with self._lock:
            if self._sender is not None and opcode < 8 and self._sender != threading.get_ident():
                # Another thread is sending a fragmented message: data frames wait for its end.
                if in_loop:
                    self._defer(opcode, data)
                    return
                self._wait(lambda: self._sender is None)
            if opcode < 3:
                header, payload = self.protocol.frame_parts(data, opcode == Opcode.BINARY)
                self._write(header)
                if payload:
                    self._write(payload)
            else:
                self._write(self._frame(opcode, data))
            if not in_loop and self._out_size > self.write_high_water:
                self._wait_drained()

    def _send_fragments(self, chunks: Iterator[str | bytes], binary: bool) -> None:
        opcode = Opcode.BINARY if binary else Opcode.TEXT
        me = threading.get_ident()
        in_loop = self._in_loop()
        with self._lock:
            if self._sender is not None:
                if in_loop:
                    raise RuntimeError("another thread is sending a fragmented message on this websocket")
                self._wait(lambda: self._sender is None)
            self._sender = me
        try:
            chunk = next(chunks, None)
            first = True
            while True:
                following = next(chunks, None) if chunk is not None else None
                last = following is None
                data = b"" if chunk is None else chunk
                with self._lock:
                    if first:
                        frame = self._frame(opcode, data, fin=last)
                    else:
                        frame = self.protocol.send_continuation(data, fin=last)
                    self._write(frame)
                    if not in_loop and self._out_size > self.write_high_water:
                        self._wait_drained()
                if last:
                    break
                chunk, first = following, False
        finally:
            with self._lock:
                self._sender = None
                deferred, self._deferred = self._deferred, None
                for d_opcode, d_data in deferred or ():
                    self._write(self._frame(d_opcode, d_data))
                if self._cond is not None:
                    self._cond.notify_all()

    def _defer(self, opcode: int, data: bytes | bytearray | memoryview | str) -> None:
        if self._deferred is None:
            self._deferred = []
        self._deferred.append((opcode, data if isinstance(data, (str, bytes)) else bytes(data)))

    def _send_shared(self, opcode: int, data: bytes | str, frame: list[bytes]) -> bool:
        """Send for a broadcast without ever waiting; ``frame`` caches the shared frame.

        Returns False when the message could not be sent (closed, or over the
        write buffer bound, in which case the peer is being closed with 1008).
        """
        with self._lock:
            protocol = self.protocol
            if protocol.state is not State.OPEN or self._teardown:
                return False
            if self._out_size > self.max_write_buffer:
                self._overflow()
                return False
            if self._sender is not None:
                self._defer(opcode, data)
                return True
            if protocol.frames_shareable:
                if not frame:
                    payload = data.encode() if isinstance(data, str) else data
                    frame.append(_frames.build_frame(_frames.FIN | opcode, payload, None))
                self._write(frame[0])
            else:
                self._write(self._frame(opcode, data))
        return True

    def _write(self, data: bytes | memoryview) -> None:
        """Write or buffer ``data``; the caller holds the lock.

        On the loop's thread, writes are corked: they wait in the buffer until
        the loop is done with the current step, so the answers to all the
        messages of one read, or a burst of broadcasts, go out in one system call.
        """
        out = self._out
        manager = self._manager
        in_loop = manager is not None and manager._ident == threading.get_ident()
        if out:
            if in_loop and self._out_size > self.write_high_water:
                self._flush_locked()
                if self._out_size > self.max_write_buffer:
                    # The loop never waits: a peer this far behind is closed, not buffered for.
                    self._overflow()
                    return
            out.append(data)
            self._out_size += len(data)
            return
        sock = self.sock
        if sock is None:
            raise StreamClosed("cannot send: the websocket has no socket")
        if manager is None:
            # Not driven by a loop: the socket is blocking and the caller writes it all.
            sock.sendall(data)
            return
        if in_loop:
            out.append(data)
            self._out_size += len(data)
            if not self._dirty:
                self._dirty = True
                manager._dirty.append(self)
            return
        try:
            sent = sock.send(data)
        except _WOULD_BLOCK:
            sent = 0
        except OSError as exc:
            # The peer is gone (reset, broken pipe): the loop tears the connection down.
            self._teardown = _CLOSE_NOW
            self._loop_update()
            raise StreamClosed(f"cannot send: {exc}") from exc
        if sent < len(data):
            self._out.append(memoryview(data)[sent:] if sent else data)
            self._out_size += len(data) - sent
            self._loop_update()

    def _overflow(self) -> None:
        """The peer does not read: close it with 1008 (the caller holds the lock)."""
        frame = self.protocol.send_close(1008, "write buffer overflow: the peer is not reading")
        if frame:
            logger.warning("Closing %s: over %d bytes waiting to be sent", format_addresses(self), self._out_size)
            self._out.append(frame)
            self._out_size += len(frame)
            self._close_deadline = time.monotonic() + self.close_timeout
            self._loop_update()  # arm the close timer: a peer that does not read sends no events

    def _wait(self, ready: Any) -> None:
        """Wait (lock held, released while waiting) until ``ready()`` or the end."""
        if self._cond is None:
            self._cond = threading.Condition(self._lock)
        while True:
            # The end first: it empties the buffer, which must not look like a drain.
            if self._terminated or self._teardown == _CLOSE_NOW:
                raise StreamClosed("the connection ended while a send was waiting; the data may not have been sent")
            if ready():
                return
            self._cond.wait()

    def _wait_drained(self) -> None:
        self._loop_update()
        self._wait(lambda: self._out_size <= self.write_high_water)

    # -- reading (called by the loop) -------------------------------------

    def once(self) -> bool:
        """Read what the socket has and handle it; False once the connection is over."""
        if self._terminated:
            return False
        data: bytes | memoryview = self._pending_input
        if data:
            self._pending_input = b""
        else:
            sock = self.sock
            assert sock is not None
            manager = self._manager
            try:
                if manager is None:
                    data = sock.recv(self.reading_buffer_size)
                else:
                    # Into the loop's buffer, shared by its websockets: no allocation per read.
                    view = manager._read_view
                    n = sock.recv_into(view)
                    if n and isinstance(sock, ssl.SSLSocket):
                        while n < len(view) and sock.pending():
                            n += sock.recv_into(view[n:])
                    data = view[:n]
            except _WOULD_BLOCK:
                return True
            except OSError as error:
                self.unhandled_error(error)
                data = b""
            if not data:
                with self._lock:
                    self.protocol.receive_eof()
                self._teardown = _CLOSE_NOW
                return False
        return self.process(data)

    def process(self, data: bytes | memoryview) -> bool:
        """Handle bytes received: dispatch the callbacks, answer the protocol.

        ``data`` may be a view of the loop's read buffer, valid only during
        the call. Returns False once the connection is over.
        """
        protocol = self.protocol
        with self._lock:
            events = protocol.receive_data(data)
        try:
            for event in events:
                kind = type(event)
                if kind is TextReceived:
                    self.received_message(TextMessage.received_text(event.decoded, event.raw))  # type: ignore[attr-defined]
                elif kind is BinaryReceived:
                    self.received_message(BinaryMessage.received_bytes(Opcode.BINARY, event.data))  # type: ignore[attr-defined]
                elif kind is PingReceived:
                    with self._lock:
                        pongs = protocol.pongs_to_send()
                        if pongs:
                            self._write(pongs)
                elif kind is PongReceived:
                    if self._ping_due is not None and self._ping_due in event.acknowledged:  # type: ignore[attr-defined]
                        self._ping_due = None
                    self.ponged(PongControlMessage(event.payload))  # type: ignore[attr-defined]
                elif kind is ConnectionFailed:
                    logger.info("Failing %s: %s (%s)", format_addresses(self), event.reason, event.code)  # type: ignore[attr-defined]
                elif kind is CloseReceived:
                    pass
        finally:
            # Even when a callback raised: the close owed to the peer must still go out.
            with self._lock:
                reply = protocol.data_to_send()
                if reply:
                    self._write(reply)
                if protocol.state is State.CLOSED and not self._teardown:
                    if protocol.is_client and protocol.failure is None:
                        # RFC 6455 7.1.1: the server closes TCP first; wait for it, not forever.
                        if self._close_deadline is None:
                            self._close_deadline = time.monotonic() + self.close_timeout
                    else:
                        self._teardown = _CLOSE_AFTER_FLUSH
                        if self._close_deadline is None:
                            # A peer that does not read would keep the flush from ever ending.
                            self._close_deadline = time.monotonic() + self.close_timeout
        return not self._teardown

    def _flushed(self) -> bool:
        """The buffer is empty after a teardown began: True to close the socket now."""
        if self._teardown == _DRAINING:
            return False
        if self.protocol.failure is None:
            return True
        self._teardown = _DRAINING
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)  # type: ignore[union-attr]
        if self._close_deadline is None:
            self._close_deadline = time.monotonic() + self.close_timeout
        return False

    def _drain(self) -> None:
        """Read and drop what a failed peer still sends, until it closes."""
        try:
            while self.sock.recv(self.reading_buffer_size):  # type: ignore[union-attr]
                pass
        except _WOULD_BLOCK:
            return
        except OSError:
            pass
        self._teardown = _CLOSE_NOW

    def _flush(self) -> None:
        """Write what the buffer holds, as far as the socket takes it (loop thread)."""
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        sock = self.sock
        assert sock is not None
        out = self._out
        gather = not isinstance(sock, ssl.SSLSocket)
        while out:
            if len(out) > 1 and not gather:
                out[:] = [b"".join(out)]
            chunks = out[:_MAX_IOV]
            try:
                sent = sock.sendmsg(chunks) if len(chunks) > 1 else sock.send(chunks[0])
            except _WOULD_BLOCK:
                break
            except OSError:
                out.clear()
                self._out_size = 0
                self._teardown = _CLOSE_NOW
                break
            self._out_size -= sent
            done = 0
            for chunk in chunks:
                if sent < len(chunk):
                    break
                sent -= len(chunk)
                done += 1
            del out[:done]
            if done < len(chunks):
                if sent:
                    out[0] = memoryview(out[0])[sent:]
                break  # the socket is full
        if self._cond is not None and self._out_size <= self.write_high_water:
            self._cond.notify_all()

    # -- timers (called by the loop) --------------------------------------

    def _next_timer(self) -> float | None:
        close, beat = self._close_deadline, self._heartbeat_at
        if close is None:
            return beat
        if beat is None:
            return close
        return min(close, beat)

    def _on_timer(self, now: float) -> None:
        if self._close_deadline is not None and now >= self._close_deadline:
            logger.info("Closing %s: no answer to the close within %ss", format_addresses(self), self.close_timeout)
            self._teardown = _CLOSE_NOW
            return
        if self._heartbeat_at is not None and now >= self._heartbeat_at:
            if self.protocol.state is not State.OPEN:
                self._heartbeat_at = None
            elif self._ping_due is not None:
                self._heartbeat_at = None
                logger.info("Closing %s: no pong within %ss", format_addresses(self), self.heartbeat_freq)
                self.close(1011, "keepalive ping timeout")
            else:
                self._ping_seq += 1
                payload = b"ws4py-%d" % self._ping_seq
                with self._lock:
                    self._write(self.protocol.send_ping(payload))
                self._ping_due = payload
                self._heartbeat_at = now + self.heartbeat_freq  # type: ignore[operator]

    # -- life cycle ---------------------------------------------------------

    def _open(self) -> None:
        """The loop took the connection: arm the heartbeat, call :meth:`opened` once."""
        if self.heartbeat_freq:
            self._heartbeat_at = time.monotonic() + self.heartbeat_freq
        self._notify_opened()

    def _notify_opened(self) -> None:
        if not self._opened:
            self._opened = True
            self.opened()

    def _in_loop(self) -> bool:
        manager = self._manager
        return manager is not None and manager._ident == threading.get_ident()

    def _loop_update(self) -> None:
        """Have the loop look at this websocket again (write interest, timers)."""
        manager = self._manager
        if manager is not None:
            manager._call_soon(manager._update, self)

    def terminate(self) -> None:
        """End the connection now: close the socket, then call :meth:`closed` once.

        Called from another thread than the loop's, it asks the loop to do it.
        """
        manager = self._manager
        if manager is not None and manager._running_elsewhere():
            manager._call_soon(self.terminate)
            return
        with self._lock:
            if self._terminated:
                return
            self._terminated = True
            protocol = self.protocol
            if protocol.state is not State.CLOSED:
                protocol.receive_eof()
            self._out.clear()
            self._out_size = 0
            if self._cond is not None:
                self._cond.notify_all()
        if manager is not None:
            manager._discard(self)
        if self.sock is not None:
            self.local_address, self.peer_address  # noqa: B018 - kept for closed() and logs
            with contextlib.suppress(OSError):
                self.sock.close()
        code = protocol.close_code if protocol.close_code is not None else 1006
        self.closed(code, protocol.close_reason)

    def run(self) -> None:
        """Drive this websocket on the calling thread until the connection is over."""
        from .manager import WebSocketManager

        if self._terminated:
            return
        loop = WebSocketManager(read_size=self.reading_buffer_size)
        loop._exit_when_empty = True
        loop.add(self)
        loop.run()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {format_addresses(self) if self.sock else 'unconnected'}>"


class EchoWebSocket(WebSocket):
    """Sends every message it receives back to its peer."""

    __slots__ = ()

    def received_message(self, message: Message) -> None:
        # A message that crossed our close frame has no one to go back to.
        with contextlib.suppress(StreamClosed):
            self.send(message.data, message.is_binary)
