"""The awaitable connection of :mod:`ws4py.asyncio`: ``recv``, ``send``, ``async for``, ``ping``, ``close``."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, Iterable
from typing import Any

from ..exc import ConnectionClosed, ConnectionClosedOK
from ..protocol import (
    BinaryReceived,
    ClientHandshake,
    CloseReceived,
    ConnectionFailed,
    Event,
    PongReceived,
    ServerHandshake,
    State,
    TextReceived,
)
from ..protocol.connection import Connection as CoreConnection
from ..protocol.fragments import OutgoingFragments
from ..protocol.frames import LARGE_PAYLOAD
from .endpoint import Endpoint, Options, ProcessRequest

__all__ = ["Connection", "Data"]

#: A message as the connection gives it: ``str`` for text, ``bytes`` for binary.
Data = str | bytes
_CHUNK_TYPES = (str, bytes, bytearray, memoryview)


#: A single queued message this large pauses reading on its own (once over ``max_queue_bytes``):
#: a pause and a resume cost nothing next to handling it, and the queue never holds two.
_LONE_PAUSE = 1024 * 1024


def _size(event: TextReceived | BinaryReceived) -> int:
    """The bytes a queued message holds: its ``str`` (as ``sys.getsizeof`` counts it) and its UTF-8 bytes, when kept."""
    if type(event) is BinaryReceived:
        return len(event.data)
    text = event.decoded  # type: ignore[union-attr]
    raw = event.raw  # type: ignore[union-attr]
    # str.__sizeof__ is getsizeof for a str (not tracked by the GC), at a fifth of the cost.
    return (0 if text is None else text.__sizeof__()) + (0 if raw is None else len(raw))


class Connection(Endpoint):
    """An open WebSocket connection: what server and client connections share.

    The server's connections are :class:`~ws4py.asyncio.server.ServerConnection`,
    the client's :class:`~ws4py.asyncio.client.ClientConnection`; this module
    knows neither (nor the server).

    Received messages wait in a queue of at most ``max_queue`` messages and
    ``max_queue_bytes`` bytes (see :class:`~ws4py.asyncio.endpoint.Options`);
    beyond that the connection stops reading, so a slow consumer slows its
    peer down instead of growing memory. ``send`` returns once the message is handed
    to the transport, and waits first while the transport holds more than
    ``write_limit`` bytes.
    """

    __slots__ = (
        "_close_held",
        "_defer_pause",
        "_echo",
        "_fragmenting",
        "_messages",
        "_pause_due",
        "_queued_bytes",
        "_reading_paused",
        "_recv_waiter",
    )

    def __init__(
        self,
        options: Options,
        handshake: ServerHandshake | ClientHandshake,
        process_request: ProcessRequest | None = None,
    ) -> None:
        super().__init__(options, handshake, process_request)
        # Made with the first message: an empty deque is most of a kilobyte, per idle connection.
        self._messages: deque[TextReceived | BinaryReceived] | None = None
        self._queued_bytes = 0
        # The last message recv() returned: sending that same large str back
        # sends the bytes it came in, instead of encoding it again.
        self._echo: TextReceived | BinaryReceived | None = None
        self._recv_waiter: asyncio.Future[None] | None = None
        self._reading_paused = False
        self._pause_due = False  # _pause_if_full is scheduled
        self._defer_pause = False  # see _events
        # Set while a fragmented message is being sent: other sends wait for it.
        self._fragmenting: asyncio.Future[None] | None = None
        # The peer broke the protocol in the same read as messages the handler has
        # not taken yet: the failing close waits for it (see _flush_core).
        self._close_held = False

    # -- receiving -------------------------------------------------------

    def _events(self, events: list[Event]) -> None:
        messages = self._messages
        for event in events:
            kind = type(event)
            if kind is TextReceived or kind is BinaryReceived:
                if messages is None:
                    messages = self._messages = deque()
                messages.append(event)  # type: ignore[arg-type]
                self._queued_bytes += _size(event)  # type: ignore[arg-type]
            elif kind is PongReceived:
                self._pong_received(event)  # type: ignore[arg-type]
            elif kind is CloseReceived or kind is ConnectionFailed:
                if kind is ConnectionFailed:
                    self._options.logger.info("%s failed: %s (%s)", self, event.reason, event.code)  # type: ignore[attr-defined]
                self._wake_receiver()
        if messages:
            self._wake_receiver()
            if not self._reading_paused and self._queue_full(messages):
                if self._defer_pause and not self._pause_due:
                    # On asyncio's socket transport, decided once the handler had its
                    # turn: the wake-up above runs first, and a handler that keeps up (an
                    # echo of a read of four 64 KiB messages) empties the queue there, so
                    # reading needs no pause and no resume (two epoll_ctl calls a read).
                    # No read of this socket comes in between: its callback is queued
                    # after this one, and a pause cancels it. (uvloop reads up to 32
                    # times in a row before it runs callbacks: there, pause at once.)
                    self._pause_due = True
                    self._loop.call_soon(self._pause_if_full)
                else:
                    self._pause_if_full()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._defer_pause = type(transport).__module__ == "asyncio.selector_events"

    def _pause_if_full(self) -> None:
        self._pause_due = False
        messages = self._messages
        transport = self._transport
        if (
            messages
            and not self._reading_paused
            and transport is not None
            and not transport.is_closing()
            and self._queue_full(messages)
        ):
            self._reading_paused = True
            transport.pause_reading()

    def _queue_full(self, messages: deque[TextReceived | BinaryReceived]) -> bool:
        options = self._options
        count = len(messages)
        if count >= options.max_queue:
            return True
        # One message pauses reading only when large: a handler that keeps up (an
        # echo in lockstep) must not pay a pause and a resume per small message.
        limit = options.max_queue_bytes
        held = self._queued_bytes
        return limit is not None and held >= limit and (count > 1 or held >= _LONE_PAUSE)

    def _flush_core(self, core: CoreConnection) -> None:
        if self._messages and core.failure is not None and core.state is not State.CLOSED:
            # Messages came before the peer's protocol error: the handler may still
            # answer them (an echo), so the failing close goes after what it sends for
            # them, when it asks for the next message; close_timeout bounds the wait.
            # (A normal close is answered at once, as RFC 6455 5.5.1 asks.)
            if not self._close_held:
                self._close_held = True
                timeout = self._options.close_timeout
                if timeout is not None and self._close_timer is None:
                    self._close_timer = self._loop.call_later(timeout, self._release_close)
            return
        super()._flush_core(core)

    def _release_close(self) -> None:
        """Send the close held back for the handler's answers (and end TCP as due)."""
        if not self._close_held:
            return
        self._close_held = False
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        core = self._core
        transport = self._transport
        if core is not None and transport is not None and not transport.is_closing():
            super()._flush_core(core)

    def start_close(self, code: int | None = 1000, reason: str = "") -> None:
        if self._close_held:
            self._release_close()
            return
        super().start_close(code, reason)

    def _wake_receiver(self) -> None:
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def recv(self, decode: bool | None = None) -> Data:
        """The next message: ``str`` for text, ``bytes`` for binary.

        ``decode=False`` gives a text message as its UTF-8 bytes instead
        (validated as they were unmasked; a large one is then never decoded),
        for a handler that forwards text or parses it from bytes (``json.loads``
        takes bytes): no ``str`` is made of a large or non-ASCII text, and
        ``send(data, text=True)`` sends the bytes back as text with no
        encoding. (An ASCII text under 64 KiB is made a ``str`` as it is
        unmasked, at no extra cost: its bytes are then encoded from it.)
        ``decode=True`` gives a binary message decoded as UTF-8 (raising
        ``UnicodeDecodeError`` if it is not).

        Raises :class:`~ws4py.exc.ConnectionClosedOK` once a normal close
        has been received and every message before it returned, and
        :class:`~ws4py.exc.ConnectionClosedError` after an abnormal one.
        """
        while not self._messages:
            if self._close_held:
                self._release_close()
            if self._recv_waiter is not None:
                raise RuntimeError("another coroutine is already waiting in recv()")
            core = self._core
            if self._closed.done() or (core is not None and core.close_code is not None):
                raise self._closed_exception()
            waiter = self._recv_waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                self._recv_waiter = None
        messages = self._messages
        assert messages is not None
        self._echo = event = messages.popleft()
        self._queued_bytes -= _size(event)
        if self._reading_paused and not self._queue_full(messages):
            self._reading_paused = False
            transport = self._transport
            if transport is not None and not transport.is_closing():
                transport.resume_reading()
        if type(event) is TextReceived and event.raw is not None and len(event.raw) >= LARGE_PAYLOAD:
            # A large text came as its bytes (the core decodes it only now): keep them
            # for an echo while the handler runs on, not once it waits for something else.
            self._loop.call_soon(self._forget_echo, event)
        if decode is None:
            return event.data
        if type(event) is TextReceived:
            if decode:
                return event.data
            raw = event.raw
            return raw if raw is not None else event.data.encode()
        data = event.data
        return data.decode() if decode else data  # type: ignore[union-attr]

    def _forget_echo(self, event: TextReceived) -> None:
        if self._echo is event:
            self._echo = None

    def __aiter__(self) -> Connection:
        return self

    async def __anext__(self) -> Data:
        try:
            return await self.recv()
        except ConnectionClosedOK:
            raise StopAsyncIteration from None

    # -- sending ---------------------------------------------------------

    async def send(
        self,
        message: Data | bytearray | memoryview | Iterable[Data] | AsyncIterable[Data],
        text: bool | None = None,
    ) -> None:
        """Send a message: ``str`` as text, bytes-like as binary.

        An iterable or async iterable of them is sent as one fragmented
        message, a frame per item (all ``str`` or all bytes-like). ``text=True``
        sends bytes-like data as a text message, as they are: UTF-8 already
        (the caller's promise: nothing is encoded or checked), such as what
        ``recv(decode=False)`` returned or what ``json.dumps(...).encode()``
        made; ``text=False`` sends a ``str`` as a binary message (its UTF-8).
        Raises :class:`~ws4py.exc.ConnectionClosed` once the connection is
        closing.
        """
        while self._fragmenting is not None:
            await asyncio.shield(self._fragmenting)
        if isinstance(message, _CHUNK_TYPES):
            self._write_message(message, text)
        elif isinstance(message, dict):
            raise TypeError("a dict is not a message; send str, bytes or an iterable of them")
        elif isinstance(message, AsyncIterable):
            await self._send_fragments(message.__aiter__(), True, text)
        elif isinstance(message, Iterable):
            await self._send_fragments(iter(message), False, text)
        else:
            raise TypeError(f"cannot send {type(message).__name__}: send str, bytes or an iterable of them")
        if self._write_paused:
            await self.drain()
            if self._closed.done():
                # The peer left while this message waited in the buffer: it may not have arrived.
                raise self._closed_exception()

    # Copies of an echoed payload byte, socket -> handler -> socket (issue 23), for a
    # message in one frame from a client (masked), whole in one read; the kernel's
    # copies count. The core's rows for frames over several reads: protocol/connection.py.
    #
    #                      read  unmask  decode  queue  encode  frame  write   before -> now
    #   binary >= 64 KiB    1     1       -       0      -       0      1      3 -> 3
    #   binary < 64 KiB     1     1       -       0      -       1      1      4 -> 4
    #   text >= 64 KiB      1     1 (str if ASCII, same pass)              ASCII 4 -> 3 (no encode: the
    #                                                                      str's data is written, utf8_view)
    #   text < 64 KiB       1     1       0      0      1 -> 0  1      1      ASCII 5 -> 4 (framed from the
    #                                                                      str's data, build_frame)
    #   text, not ASCII: + 1 UTF-8 pass, + decode 1 (< 64 KiB; a larger one: when recv() returns it),
    #   + encode 1 unless the handler sends back the very str it received (its bytes are sent).
    def _write_message(self, message: str | bytes | bytearray | memoryview, text: bool | None = None) -> None:
        core = self._open_core()
        binary = not isinstance(message, str) if text is None else not text
        if len(message) >= LARGE_PAYLOAD:
            echo = self._echo
            if type(echo) is TextReceived and echo.decoded is message and echo.raw is not None:
                message = echo.raw  # framed as text: binary stays False
            self._echo = None
            self.write_large_frame(*core.frame_parts(message, binary))
            return
        if binary:
            frame = core.send_binary(message.encode() if isinstance(message, str) else message)
        else:
            frame = core.send_text(message)
        if self._pending is not None or self._messages:
            # The handler has more messages to read without waiting (a pipelining
            # peer): gather its answers and write them together when it yields.
            self.write_frame_soon(frame)
        else:
            self.write_frame(frame)

    async def _send_fragments(self, chunks: Any, is_async: bool, text: bool | None = None) -> None:
        core = self._open_core()
        done = self._fragmenting = self._loop.create_future()
        # The chunks' type decides text or binary (unless ``text`` does); each chunk is framed
        # when the next one comes, so the last carries FIN (an empty iterable: one empty text message).
        message = self._fragments = OutgoingFragments(core, None if text is None else not text)
        taken = False
        try:
            while True:
                try:
                    chunk = (await chunks.__anext__()) if is_async else next(chunks)
                except (StopIteration, StopAsyncIteration):
                    break
                self._open_core()
                frame = message.add(chunk)
                taken = True
                if frame:
                    self.write_frame(frame)
                    if self._write_paused:
                        await self.drain()
            self._open_core()
            self.write_frame(message.end())
        except BaseException as exc:
            if taken and not isinstance(exc, ConnectionClosed):
                # The message is begun: the connection cannot carry another one.
                self.start_close(1011, "a fragmented message was interrupted")
            raise
        finally:
            self._fragments = None
            self._fragmenting = None
            done.set_result(None)

    async def ping(self, data: str | bytes | None = None) -> asyncio.Future[float]:
        """Send a ping; return a future that resolves on its pong with the latency in seconds.

        ``data`` (at most 125 bytes) defaults to 4 random bytes. If the
        connection closes first the future raises
        :class:`~ws4py.exc.ConnectionClosed`.
        """
        if isinstance(data, str):
            data = data.encode()
        return self._send_ping(data)

    async def pong(self, data: str | bytes = b"") -> None:
        """Send an unsolicited pong (a one-way heartbeat)."""
        self.write_frame(self._open_core().send_pong(data.encode() if isinstance(data, str) else data))

    # -- closing ---------------------------------------------------------

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Start (or join) the closing handshake and wait until the connection is closed.

        Waits at most ``close_timeout`` for the peer's close frame and the
        end of TCP, then drops the connection.
        """
        self.start_close(code, reason)
        await asyncio.shield(self._closed)

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (whoever closed it)."""
        await asyncio.shield(self._closed)

    # -- lifecycle ---------------------------------------------------------

    def _opened(self) -> None:
        assert self._core is not None
        self._core.decode_text = True  # recv() returns every text as str

    def _lost(self, exc: Exception | None) -> None:
        self._wake_receiver()
