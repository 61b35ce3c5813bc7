"""ws4py's WebSocket on threads: callbacks, thread-safe ``send``, bounded writes.

A :class:`WebSocket` is driven by an event loop (:class:`ws4py.loop.EventLoop`):
either a shared manager thread (``manager.add(ws)``, see :mod:`ws4py.manager`)
or a private loop that :meth:`WebSocket.run` runs on the calling thread. The
loop reads the socket, feeds the protocol core, calls the callbacks, flushes
what could not be written at once and keeps the timers (heartbeat, close
timeout). Every callback of a websocket runs on its loop's thread. The loop
drives the websocket through its channel methods (:mod:`ws4py.channel`:
``fileno``, ``wanted_events``, ``next_deadline``, ``on_attached``,
``on_readable``, ``on_writable``, ``on_timer``, ``handler_failed``,
``closed_by_loop``) and nothing else.

Writing never blocks the loop: bytes the socket does not take at once wait in
a per-connection buffer that the loop flushes when the socket is writable.
A thread other than the loop's that sends is held back (like ``sendall``)
until the buffer is below :attr:`WebSocket.write_high_water`; the loop's own
sends and broadcasts never wait. A peer whose buffer (with the messages
deferred behind a fragmented send in progress) is already over
:attr:`WebSocket.max_write_buffer` when the loop or a broadcast sends more is
closed with 1008, and that message refused: a broadcast skips it, a
:meth:`WebSocket.send` raises :class:`~ws4py.exc.StreamClosed`. A frame is
buffered whole or not at all.

On a TLS socket, the loop's reads and every write hold the websocket's lock:
OpenSSL does not allow two threads in one connection at once. Plain sockets
need no such care, and read without it.

When the WebSocket connection is over, what happens to TCP is the core's
decision (:attr:`ws4py.protocol.Connection.transport_action`): close it once
the buffer is flushed, half-close it and read until the peer closes (after a
failure, so that our close frame is not destroyed by a reset), or wait for
the server to close it (a client); every wait is bounded by
:attr:`WebSocket.close_timeout`.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import format_addresses
from .channel import READ, WRITE, Loop
from .classic import ClassicCallbacks, ClassicTermination, Payload, close_outcome, deliver, dispatch, sendable
from .exc import StreamClosed
from .loop import EventLoop
from .messaging import Message
from .protocol import (
    Connection,
    ConnectionFailed,
    Opcode,
    PongReceived,
    Role,
    State,
    TransportAction,
)
from .protocol import frames as _frames
from .protocol.fragments import OutgoingFragments
from .sockio import WOULD_BLOCK, address_of, read_pending, write_some

__all__ = ["WebSocket", "EchoWebSocket", "broadcast"]

logger = logging.getLogger("ws4py")

_CLOSE, _HALF_CLOSE = TransportAction.CLOSE, TransportAction.HALF_CLOSE
# The send path's opcodes as module names: an enum's attribute costs 90 ns (Python 3.11).
_TEXT, _BINARY = Opcode.TEXT, Opcode.BINARY
_OPEN, _CLOSED = State.OPEN, State.CLOSED  # likewise, per message


class WebSocket(ClassicTermination, ClassicCallbacks):
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
        "_broken",
        "_close_callbacks",
        "_close_deadline",
        "_cond",
        "_deferred",
        "_deferred_size",
        "_dirty",
        "_half_closed",
        "_heartbeat_at",
        "_local_address",
        "_lock",
        "_loop",
        "_opened",
        "_out",
        "_out_size",
        "_peer_address",
        "_pending_input",
        "_ping_due",
        "_ping_seq",
        "_read_blocked",
        "_sender",
        "_terminated",
        "environ",
        "extensions",
        "heartbeat_freq",
        "protocol",
        "protocols",
        "sock",
    )

    #: Bytes read from the socket at a time by the loop :meth:`run` makes, or
    #: when no loop drives the websocket.
    reading_buffer_size = 65536
    #: A thread other than the loop's that sends waits until the write buffer is
    #: below this; the loop stops reading from a peer whose buffer is above it.
    write_high_water = 64 * 1024
    #: A peer whose write buffer, plus the messages deferred behind a
    #: fragmented send in progress, is over this when the loop or a broadcast
    #: sends more is closed with 1008 (policy violation: it does not read); the
    #: message is not sent (``send`` raises :class:`~ws4py.exc.StreamClosed`).
    #: At least :attr:`write_high_water`.
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
        self._close_callbacks: list[Callable[[], object]] | None = None
        self._out: list[bytes | memoryview] = []
        self._out_size = 0
        self._pending_input = b""
        self._loop: Loop | None = None
        self._local_address: Any = None
        self._peer_address: Any = None
        self._close_deadline: float | None = None
        self._heartbeat_at: float | None = None
        self._ping_due: bytes | None = None
        self._ping_seq = 0
        self._sender: int | None = None
        self._deferred: list[tuple[int, bytes]] | None = None
        self._deferred_size = 0
        self._broken = False  # the socket failed, or a wait timed out: close it now
        self._half_closed = False
        self._dirty = False
        self._terminated = False
        self._opened = False
        self._read_blocked = False  # the last read found nothing (see on_readable)

    # -- callbacks ---------------------------------------------------------
    # opened, received_message, ponged and closed: see ClassicCallbacks.

    def unhandled_error(self, error: BaseException) -> None:
        """Called with an error that ends the connection: an exception one of
        this websocket's callbacks raised (the connection then closes with
        1011), or an error of the socket while reading (it then ends as it
        stands). By default it logs."""
        if isinstance(error, OSError):
            logger.warning("Failed to receive data on %s: %s", format_addresses(self), error)
        else:
            logger.error("Closing %s after an error in its handler", format_addresses(self), exc_info=error)

    # -- properties --------------------------------------------------------

    @property
    def terminated(self) -> bool:
        """Whether the connection is over and its socket closed."""
        return self._terminated

    @property
    def connection(self) -> socket.socket | None:
        return self.sock

    def _termination_core(self) -> Connection:
        return self.protocol

    def close_connection(self) -> None:
        """Drop the connection now, without a closing handshake (ws4py 0.6's name): the
        socket is closed and :meth:`closed` called once (1006 unless a close frame came)."""
        self._broken = True  # a write in progress stops; the loop, if any, ends it
        self.terminate()

    @property
    def local_address(self) -> Any:
        """The socket's own address: ``(host, port)``, or a path for a Unix socket.

        Kept once known, and taken before the socket closes when the class has a
        :meth:`closed` of its own, so it is still there in :meth:`closed`; after the
        end, ``None`` if it was never asked for before.
        """
        if self._local_address is None:
            self._local_address = address_of(getattr(self.sock, "getsockname", None))
        return self._local_address

    @property
    def peer_address(self) -> Any:
        """The peer's address: ``(host, port)``, or a path for a Unix socket (kept as
        :attr:`local_address` is)."""
        if self._peer_address is None:
            self._peer_address = address_of(getattr(self.sock, "getpeername", None))
        return self._peer_address

    # -- sending -----------------------------------------------------------

    def send(self, payload: Payload | Iterable[str | bytes], binary: bool = False) -> None:
        """Send a message; safe from any thread.

        ``payload`` is a ``str`` (a text message), ``bytes`` (text, taken as
        UTF-8, unless ``binary``), a :class:`~ws4py.messaging.Message`, or an
        iterable (a generator...) of ``str``/``bytes`` chunks sent as one
        fragmented message, a frame per chunk (the last one with FIN; no
        chunk at all is one empty message). Raises
        :class:`~ws4py.exc.StreamClosed` once the connection is closing, and on
        the loop's thread (in a callback), when the peer is already over
        :attr:`max_write_buffer` (it is then closed with 1008).
        """
        kind = type(payload)
        if kind is bytes:  # the common cases first, as sendable() has them
            self._send(_BINARY if binary else _TEXT, payload)  # type: ignore[arg-type]
            return
        if kind is str:
            self._send(_TEXT, payload)  # type: ignore[arg-type]
            return
        if isinstance(payload, Message) and payload.opcode >= Opcode.CLOSE:
            self._send(payload.opcode, payload.content)  # a control message: a ping, a pong
            return
        is_binary, data = sendable(payload, binary)
        if isinstance(data, (str, bytes, bytearray, memoryview)):
            self._send(Opcode.BINARY if is_binary else Opcode.TEXT, data)
        else:
            self._send_fragments(data, is_binary)

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
            return protocol.send_text(data, fin)
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

    # Copies of an echoed payload byte, socket -> handler -> socket (issue 23), for
    # EchoWebSocket and a message in one frame from a client (masked), whole in one
    # read (recv_into the loop's buffer; frames over several reads: the core's rows,
    # protocol/connection.py); the kernel's copies count. As the callbacks API:
    #
    #                      read  unmask  validate  frame  write   before -> now
    #   binary >= 64 KiB    1     1       -         0      1      3 -> 3  (header and payload in one
    #   binary < 64 KiB     1     1       -         1      1      4 -> 4   sendmsg, write_some)
    #   text >= 64 KiB      1     1       1 -> 0    0      1      3 + 1 pass -> 3 (ASCII: checked in the
    #   text < 64 KiB       1     1       1 -> 0    1      1      4 + 1 pass -> 4  unmasking pass)
    #   A str sent: + encode 1 before; now 0 if ASCII (framed, or written, from its own data).
    def _send(self, opcode: int, data: bytes | bytearray | memoryview | str) -> None:
        loop = self._loop  # _in_loop(), inline: this runs per message
        in_loop = loop is not None and loop.thread_id == threading.get_ident()
        with self._lock:
            deferring = self._sender is not None and opcode < 8 and self._sender != threading.get_ident()
            if in_loop and (self._out_size > self.write_high_water or self._deferred_size):
                self._check_room()  # the loop never waits: over the bound, refuse
            if deferring:
                # Another thread is sending a fragmented message: data frames wait for its end.
                if in_loop:
                    self._defer(opcode, data)
                    return
                self._wait(lambda: self._sender is None)
            if opcode < 3:
                header, payload = self.protocol.frame_parts(data, opcode == _BINARY)
                self._write(header, in_loop)
                if payload:
                    self._write(payload, in_loop)
            else:
                self._write(self._frame(opcode, data), in_loop)
            if not in_loop and self._out_size > self.write_high_water:
                self._wait_drained()

    def _send_fragments(self, chunks: Iterator[str | bytes], binary: bool) -> None:
        """One message, a frame per chunk, with the core's :class:`OutgoingFragments`.

        The chunks are pulled outside the lock; other threads' data frames
        wait for the end of the message, control frames may go in between.
        """
        in_loop = self._in_loop()
        with self._lock:
            if self._sender is not None:
                if in_loop:
                    raise RuntimeError("another thread is sending a fragmented message on this websocket")
                self._wait(lambda: self._sender is None)
            self._sender = threading.get_ident()
        try:
            message = OutgoingFragments(self.protocol, binary)
            for chunk in chunks:
                with self._lock:
                    if in_loop:
                        self._check_room()
                    frame = message.add(chunk)
                    if frame:
                        self._write(frame)
                        if not in_loop and self._out_size > self.write_high_water:
                            self._wait_drained()
            with self._lock:
                self._write(message.end())
                if not in_loop and self._out_size > self.write_high_water:
                    self._wait_drained()
        finally:
            with self._lock:
                self._sender = None
                deferred, self._deferred = self._deferred, None
                self._deferred_size = 0
                if self.protocol.state is State.OPEN:  # else they go where the buffer goes
                    for d_opcode, d_data in deferred or ():
                        self._write(self._frame(d_opcode, d_data))
                if self._cond is not None:
                    self._cond.notify_all()

    def _defer(self, opcode: int, data: bytes | bytearray | memoryview | str) -> None:
        """Keep a data message for after the fragmented message in progress (lock held);
        it counts against :attr:`max_write_buffer` until then."""
        payload = data.encode() if isinstance(data, str) else bytes(data)  # TEXT takes UTF-8 bytes
        if self._deferred is None:
            self._deferred = []
        self._deferred.append((opcode, payload))
        self._deferred_size += len(payload)

    def _check_room(self) -> None:
        """Refuse a message on the loop's thread (lock held), which never waits, when the
        peer is over :attr:`max_write_buffer`: nothing of it is buffered."""
        if self._full():
            raise StreamClosed(
                f"cannot send: more than max_write_buffer ({self.max_write_buffer} bytes) already waits "
                "for a peer that does not read; it is being closed with 1008"
            )

    def _full(self) -> bool:
        """Whether the peer is over :attr:`max_write_buffer` (lock held): what waits to be
        written plus what is deferred; on the loop's thread the buffer is flushed first.
        A peer found over it is being closed with 1008."""
        if self._out_size > self.write_high_water and self._in_loop():
            self._flush_locked()
        if self._out_size + self._deferred_size <= self.max_write_buffer:
            return False
        self._overflow()
        return True

    def send_shared(self, opcode: int, data: bytes | str, frame: list[bytes]) -> bool:
        """Send for a broadcast without ever waiting; ``frame`` caches the frame shared
        by the connections that can send the same bytes (a list, empty at first).

        Returns False when the message could not be sent (closed, or over the
        write buffer bound, in which case the peer is being closed with 1008).
        """
        with self._lock:
            protocol = self.protocol
            if protocol.state is not _OPEN or self._broken:
                return False
            if (self._out_size > self.write_high_water or self._deferred_size) and self._full():
                return False  # the common case pays two comparisons, not a call
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

    def _write(self, data: bytes | memoryview, in_loop: bool | None = None) -> None:
        """Write or buffer ``data``; the caller holds the lock. ``in_loop``: whether the
        caller is on the loop's thread, if it knows already.

        On the loop's thread (on any, for a loop that corks all writes), writes
        are corked: they wait in the buffer until the loop is done with the
        current step, so the answers to all the messages of one read, or a burst
        of broadcasts, go out in one system call.
        """
        out = self._out
        loop = self._loop
        if out:
            # Never dropped here: what is over the bound was refused, whole, by _full().
            out.append(data)
            self._out_size += len(data)
            return
        sock = self.sock
        if sock is None:
            raise StreamClosed("cannot send: the websocket has no socket")
        if loop is None:
            # Not driven by a loop: the socket is blocking and the caller writes it all.
            sock.sendall(data)
            return
        if loop.corks_all_writes or (in_loop if in_loop is not None else loop.thread_id == threading.get_ident()):
            out.append(data)
            self._out_size += len(data)
            if not self._dirty:
                self._dirty = True
                loop.flush_soon(self)
            return
        try:
            sent = sock.send(data)
        except WOULD_BLOCK:
            sent = 0
        except OSError as exc:
            # The peer is gone (reset, broken pipe): the loop tears the connection down.
            self._broken = True
            loop.call_soon(self.terminate)
            raise StreamClosed(f"cannot send: {exc}") from exc
        if sent < len(data):
            self._out.append(memoryview(data)[sent:] if sent else data)
            self._out_size += len(data) - sent
            loop.update_soon(self)

    def _overflow(self) -> None:
        """The peer does not read: close it with 1008 (the caller holds the lock)."""
        frame = self.protocol.send_close(1008, "write buffer overflow: the peer is not reading")
        if frame:
            args = ("Closing %s: over %d bytes waiting to be sent", format_addresses(self), self._out_size)
            loop = self._loop
            if loop is not None:
                # Not under the lock: a handler may block (a GreenletLoop's lock is the OS
                # thread's own, and a greenlet switching while holding it would stall the others).
                loop.call_soon(logger.warning, *args)
            else:
                logger.warning(*args)
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
            if self._terminated or self._broken:
                raise StreamClosed("the connection ended while a send was waiting; the data may not have been sent")
            if ready():
                return
            self._cond.wait()

    def _wait_drained(self) -> None:
        self._loop_update()
        self._wait(lambda: self._out_size <= self.write_high_water)

    def _write_pongs(self, pongs: bytes) -> None:
        """Write the pongs ``dispatch`` hands over, unless our close went out meanwhile."""
        with self._lock:
            if self.protocol.close_sent is None:
                self._write(pongs)

    def _pong_received(self, event: PongReceived) -> None:
        if self._ping_due is not None and self._ping_due in event.acknowledged:
            self._ping_due = None

    # -- reading ------------------------------------------------------------

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
            loop = self._loop
            try:
                if loop is None:
                    data = sock.recv(self.reading_buffer_size)
                elif type(sock) is socket.socket:
                    # Into the loop's buffer, shared by its websockets: no allocation per read.
                    view = loop.read_buffer
                    data = view[: sock.recv_into(view)]
                else:
                    # TLS: another thread's send must not run in OpenSSL at the same time.
                    view = loop.read_buffer
                    with self._lock:
                        n = sock.recv_into(view)
                        if n:
                            n = read_pending(sock, view, n)
                    data = view[:n]
            except WOULD_BLOCK:
                self._read_blocked = True
                return True
            except OSError as error:
                self._broken = True
                self.unhandled_error(error)
                data = b""
            if not data:
                with self._lock:
                    self.protocol.receive_eof()
                return False
        return self.process(data)

    def process(self, data: bytes | memoryview) -> bool:
        """Handle bytes received: dispatch the callbacks, answer the protocol.

        ``data`` may be a view of the loop's read buffer, valid only during
        the call. Returns False once the WebSocket connection is over.
        """
        protocol = self.protocol
        with self._lock:
            # Most messages come as (first byte, payload) pairs: no event objects.
            messages, events = protocol.receive_messages(data)
        if not events:
            if messages:
                deliver(self, messages)  # a pair never leaves the core anything to send
            return protocol.state is not _CLOSED
        try:
            if messages:
                deliver(self, messages)
            dispatch(self, events, protocol, self._write_pongs, self._pong_received)
            last = events[-1]
            if type(last) is ConnectionFailed:
                logger.info("Failing %s: %s (%s)", format_addresses(self), last.reason, last.code)
        finally:
            # Even when a callback raised: the close owed to the peer must still go out.
            with self._lock:
                reply = protocol.data_to_send()
                if reply:
                    self._write(reply)
        return protocol.state is not _CLOSED

    # -- the loop's interface (ws4py.channel.Channel) --------------------------

    def bind_loop(self, loop: Loop) -> bool:
        """Be driven by ``loop`` from now on (the caller then attaches it).

        False if it already is, or the connection is over; ``ValueError``
        without a socket. The socket becomes non-blocking.
        """
        with self._lock:
            # Under the lock: a terminate() from another thread is handed to the loop
            # from here on, and cannot close the socket under our feet.
            if self._loop is loop or self._terminated:
                return False
            sock = self.sock
            if sock is None:
                raise ValueError("cannot add a websocket without a socket")
            self._loop = loop
            channel_lock = getattr(loop, "channel_lock", None)
            if channel_lock is not None and self._cond is None:
                # The loop's own kind of lock (a GreenletLoop's: see channel_lock); no
                # one waits on the old one (no Condition yet), and no one else holds it.
                self._lock = channel_lock()
            sock.setblocking(False)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                # A close frame written right after a message must not wait for its ACK (Nagle).
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return True

    def unbind_loop(self) -> None:
        """No loop drives it any more (it was detached): the socket is blocking again."""
        self._loop = None
        if self.sock is not None and not self._terminated:
            self.sock.setblocking(True)

    def start_with(self, received: bytes = b"", unsent: bytes = b"") -> None:
        """Before a loop takes it: ``received`` are bytes read past the opening handshake
        (frames the peer sent at once), ``unsent`` bytes to write before any frame (a
        server's 101 response)."""
        self._pending_input = received
        if unsent:
            self._out.append(unsent)
            self._out_size += len(unsent)

    def fileno(self) -> int:
        """The socket's file descriptor, -1 without an open socket."""
        sock = self.sock
        return -1 if sock is None else sock.fileno()

    @property
    def wanted_events(self) -> int:
        """What the loop waits for: readable, and writable while bytes wait to be written.

        Not readable while over :attr:`write_high_water`: a peer that does not
        read is not given more to answer.
        """
        if self._out:
            return WRITE if self._out_size > self.write_high_water else READ | WRITE
        return READ

    def next_deadline(self) -> float | None:
        """The next timer: the close timeout or the heartbeat."""
        close, beat = self._close_deadline, self._heartbeat_at
        if close is None:
            return beat
        if beat is None:
            return close
        return min(close, beat)

    def on_attached(self) -> None:
        """The loop took the connection: arm the heartbeat, call :meth:`opened` once,
        handle what came with the handshake, write what waits."""
        if self.heartbeat_freq:
            self._heartbeat_at = time.monotonic() + self.heartbeat_freq
        self._notify_opened()
        if self._pending_input:
            # Bytes that came with the handshake: no readiness event will announce them.
            self.on_readable()
        if self._out:
            self.on_writable()  # a 101 response, what opened() sent: in one system call

    def on_readable(self) -> bool:
        # The answers this read caused are corked: the loop calls on_writable()
        # before it waits again, and they go out in one system call.
        self._read_blocked = False
        self.once()
        if self._broken or self.protocol.state is _CLOSED:
            self._settle()
        return not self._read_blocked

    def on_writable(self) -> None:
        self._dirty = False
        if self._out:
            with self._lock:
                self._flush_locked()
        if self._broken or self.protocol.state is _CLOSED:
            self._settle()

    def on_timer(self, now: float) -> None:
        if self._close_deadline is not None and now >= self._close_deadline:
            logger.info("Closing %s: no answer to the close within %ss", format_addresses(self), self.close_timeout)
            self.terminate()
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

    def handler_failed(self, error: Exception) -> None:
        """A callback raised ``error``: :meth:`unhandled_error`, then close with 1011."""
        try:
            self.unhandled_error(error)
        finally:
            self.close(1011, "internal error")
            self._settle()

    def closed_by_loop(self) -> None:
        """The loop ends or gives up: :meth:`terminate`."""
        self.terminate()

    def _settle(self) -> None:
        """Do with TCP what the core says once the WebSocket connection is over (loop thread)."""
        if self._terminated:
            return
        if self._broken:
            self.terminate()
            return
        protocol = self.protocol
        if protocol.state is not State.CLOSED:
            return
        if self._close_deadline is None:
            # From here every wait is bounded: a flush to a peer that does not
            # read, a drain or an EOF that never comes.
            self._close_deadline = time.monotonic() + self.close_timeout
        if self._out:
            return  # flushed first
        action = protocol.transport_action
        if action is _CLOSE:
            self.terminate()
        elif action is _HALF_CLOSE and not self._half_closed:
            self._half_closed = True
            with self._lock, contextlib.suppress(OSError):  # TLS: it drops the SSL object
                self.sock.shutdown(socket.SHUT_WR)  # type: ignore[union-attr]
        # HALF_CLOSE or AWAIT_CLOSE: read (the core drops it) until the peer's EOF.

    def _flush_locked(self) -> None:
        sock = self.sock
        assert sock is not None
        try:
            self._out_size -= write_some(sock, self._out)
        except OSError:
            self._out.clear()
            self._out_size = 0
            self._broken = True
            loop = self._loop
            if loop is not None and not self._dirty:
                self._dirty = True
                loop.flush_soon(self)  # the loop sees to the end, even if no event comes
        if self._cond is not None and self._out_size <= self.write_high_water:
            self._cond.notify_all()

    # -- life cycle ---------------------------------------------------------

    def _notify_opened(self) -> None:
        if not self._opened:
            self._opened = True
            self.opened()

    def _in_loop(self) -> bool:
        loop = self._loop
        return loop is not None and loop.thread_id == threading.get_ident()

    def _loop_update(self) -> None:
        """Have the loop look at this websocket again (write interest, timers)."""
        loop = self._loop
        if loop is not None:
            loop.update_soon(self)

    def add_close_callback(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` once the connection is over, before :meth:`closed` (now, if it is already).

        Safe from any thread; it runs where :meth:`terminate` runs (the loop's
        thread). For code that keeps websockets, such as :mod:`ws4py.pubsub`,
        to let them go without the application's help. An exception it raises
        is logged.
        """
        with self._lock:
            if not self._terminated:
                if self._close_callbacks is None:
                    self._close_callbacks = []
                self._close_callbacks.append(callback)
                return
        callback()

    def terminate(self) -> None:
        """End the connection now: close the socket, then call :meth:`closed` once.

        Called from another thread than the loop's, it asks the loop to do it (even
        a loop that has not started yet: it does it when it starts).
        """
        with self._lock:
            # Read under the lock, which bind_loop() holds: a loop binding this websocket
            # right now is seen, and then it alone ends it (closing the socket here
            # would race its registration of that socket).
            loop = self._loop
            hand_over = loop is not None and loop.serves_elsewhere()
            if not hand_over:
                if self._terminated:
                    return
                self._terminated = True
                callbacks, self._close_callbacks = self._close_callbacks, None
                protocol = self.protocol
                if protocol.state is not State.CLOSED:
                    protocol.receive_eof()
                self._out.clear()
                self._out_size = 0
                if self._cond is not None:
                    self._cond.notify_all()
        if hand_over:
            loop.call_soon(self.terminate)  # type: ignore[union-attr]
            return
        if loop is not None:
            loop.detach(self)
        sock = self.sock
        if sock is not None:
            if type(self).closed is not ClassicCallbacks.closed:
                # Kept for closed(), which may ask (two system calls: not for a closed() that cannot).
                self.local_address, self.peer_address  # noqa: B018
            with self._lock, contextlib.suppress(OSError):  # TLS: not while a send is in OpenSSL
                sock.close()
        for callback in callbacks or ():
            try:
                callback()
            except Exception:
                logger.exception("A close callback of %s failed", format_addresses(self))
        self.closed(*close_outcome(protocol))

    def run(self) -> None:
        """Drive this websocket on the calling thread until the connection is over.

        It runs an :class:`~ws4py.loop.EventLoop` of its own, for this websocket alone.
        """
        if self._terminated:
            return
        loop = EventLoop(read_size=self.reading_buffer_size)
        if self.bind_loop(loop):
            loop.attach(self)
        loop.exit_when_empty()
        loop.run()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {format_addresses(self) if self.sock else 'unconnected'}>"


class EchoWebSocket(WebSocket):
    """Sends every message it receives back to its peer."""

    __slots__ = ()

    def received_message(self, message: Message) -> None:
        # A message that crossed our close frame has no one to go back to. (try, not
        # contextlib.suppress: this runs per message, and a suppress object costs 0.5 us.)
        try:  # noqa: SIM105
            self.send(message.data, message.is_binary)
        except StreamClosed:
            pass


def broadcast(websockets: Iterable[WebSocket], message: str | bytes | Message, binary: bool = False) -> None:
    """Send ``message`` to each of ``websockets`` without ever waiting: the broadcast of
    :class:`~ws4py.manager.WebSocketManager` and of the gevent server's pool.

    The frame is built once for all the connections that can share it (server ones
    without compression). A peer whose write buffer is over its ``max_write_buffer``
    is closed with 1008 instead of being sent to; a failure is logged, not raised.
    """
    if isinstance(message, Message):
        opcode: int = message.opcode
        data: bytes | str = message.content
    elif isinstance(message, str):
        opcode, data = Opcode.TEXT, message
    else:
        opcode, data = (Opcode.BINARY if binary else Opcode.TEXT), bytes(message)
    shared: list[bytes] = []
    for websocket in websockets:
        try:
            websocket.send_shared(opcode, data, shared)
        except Exception:
            logger.exception("Broadcast to %s failed", format_addresses(websocket))
