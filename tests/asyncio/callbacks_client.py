"""The callbacks client (``ws4py.async_websocket.connect``) in the awaitable shape of ``ws4py.asyncio.connect``.

So that a test written for ``connect`` runs against the callbacks client
too, by taking the ``open_client`` fixture (tests/asyncio/conftest.py)
instead of calling ``connect``: ``await open_client(uri, **options)`` or
``async with open_client(uri, **options) as conn``. The adapter only turns
callbacks into what ``recv`` returns; everything under it is the real
callbacks client:

- ``recv()`` returns what ``received_message`` got (``str`` or ``bytes``), in
  order, then raises what ``connect``'s would once ``closed()`` was called
  (``ConnectionClosedOK`` for 1000, 1001 and 1005, else ``ConnectionClosedError``);
- ``send()`` is ``ws.send()`` (binary unless given ``str``; an iterable of the
  kind of its first chunk) then ``await ws.drain()``; ``close()`` is
  ``ws.close()`` then ``await ws.wait_closed()``; ``ping()`` an awaitable
  resolved by ``ponged`` with the round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

from ws4py.async_websocket import WebSocket, connect
from ws4py.exc import ConnectionClosedError, ConnectionClosedOK
from ws4py.messaging import Message, PongControlMessage

_OK_CODES = (1000, 1001, 1005)


class Inbox(WebSocket):
    """A callbacks websocket that keeps what its callbacks get, for :class:`CallbacksConnection`."""

    def __init__(self, proto: Any) -> None:
        super().__init__(proto)
        # Unbounded, for tests only: each test reads what it made the peer send.
        self.inbox: asyncio.Queue[str | bytes | tuple[int, str]] = asyncio.Queue()
        self.errors: list[BaseException] = []
        # The pings in flight: payload -> (the future of the round trip, when it was sent).
        self.pings: dict[bytes, tuple[asyncio.Future[float], float]] = {}

    def received_message(self, message: Message) -> None:
        self.inbox.put_nowait(message.data if message.is_binary else str(message))

    def ponged(self, pong: PongControlMessage) -> None:
        waiter, sent = self.pings.pop(bytes(pong.data), (None, 0.0))
        if waiter is not None and not waiter.done():
            waiter.set_result(asyncio.get_running_loop().time() - sent)

    def closed(self, code: int, reason: str | None = None) -> None:
        self.inbox.put_nowait((code, str(reason or "")))

    def unhandled_error(self, error: BaseException) -> None:
        self.errors.append(error)
        super().unhandled_error(error)


class CallbacksConnection:
    """An :class:`Inbox` websocket behind ``recv``/``send``/``close`` (see the module docstring)."""

    def __init__(self, ws: Inbox) -> None:
        self.ws = ws
        self.proto = ws.proto

    async def recv(self) -> str | bytes:
        item = await self.ws.inbox.get()
        if isinstance(item, tuple):
            self.ws.inbox.put_nowait(item)  # every later recv() raises too
            code, reason = item
            raise (ConnectionClosedOK if code in _OK_CODES else ConnectionClosedError)(code, reason)
        return item

    async def send(self, message: Any) -> None:
        if isinstance(message, (str, bytes, bytearray, memoryview)):
            self.ws.send(message, binary=not isinstance(message, str))
        else:
            # An iterable of chunks (an async one gathered first: the classic send takes a plain one),
            # of the kind of its first chunk, as connect's send has it.
            chunks = [chunk async for chunk in message] if hasattr(message, "__aiter__") else list(message)
            self.ws.send(chunks, binary=bool(chunks) and not isinstance(chunks[0], str))
        await self.ws.drain()

    async def ping(self, data: bytes = b"") -> asyncio.Future[float]:
        """Like ``connect``'s ``ping``: an awaitable of the round trip, resolved by ``ponged``."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[float] = loop.create_future()
        self.ws.pings[bytes(data)] = (waiter, loop.time())
        self.ws.ping(data)
        return waiter

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.ws.close(code, reason)
        await self.ws.wait_closed()

    async def wait_closed(self) -> None:
        await self.ws.wait_closed()

    def __getattr__(self, name: str) -> Any:
        # transport, request, response, close_code, closed, open...: the protocol's own.
        return getattr(self.proto, name)


class open_callbacks_client:
    """``await open_callbacks_client(uri, **options)`` or ``async with``: a :class:`CallbacksConnection`."""

    def __init__(self, uri: str, **options: Any) -> None:
        self.uri = uri
        self.options = options
        self.conn: CallbacksConnection | None = None

    async def _open(self) -> CallbacksConnection:
        ws = await connect(self.uri, Inbox, **self.options)
        self.conn = CallbacksConnection(ws)
        return self.conn

    def __await__(self) -> Generator[Any, None, CallbacksConnection]:
        return self._open().__await__()

    async def __aenter__(self) -> CallbacksConnection:
        return await self._open()

    async def __aexit__(self, *exc: object) -> None:
        if self.conn is not None:
            await self.conn.close()
