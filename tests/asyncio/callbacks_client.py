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
- ``send()`` is ``ws.send()`` then ``await ws.drain()``; ``close()`` is
  ``ws.close()`` then ``await ws.wait_closed()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from typing import Any

from ws4py.async_websocket import WebSocket, connect
from ws4py.exc import ConnectionClosedError, ConnectionClosedOK
from ws4py.messaging import Message

_OK_CODES = (1000, 1001, 1005)


class Inbox(WebSocket):
    """A callbacks websocket that keeps what its callbacks get, for :class:`CallbacksConnection`."""

    def __init__(self, proto: Any) -> None:
        super().__init__(proto)
        # Unbounded, for tests only: each test reads what it made the peer send.
        self.inbox: asyncio.Queue[str | bytes | tuple[int, str]] = asyncio.Queue()
        self.errors: list[BaseException] = []

    def received_message(self, message: Message) -> None:
        self.inbox.put_nowait(message.data if message.is_binary else str(message))

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
        self.ws.send(message, binary=not isinstance(message, str))
        await self.ws.drain()

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
