"""``serve``: a WebSocket server on asyncio, one handler coroutine per connection."""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from types import TracebackType
from typing import Any

from ..protocol import DeflateOptions, ServerHandshake
from .connection import Connection
from .endpoint import Options, ProcessRequest

__all__ = ["Server", "serve"]

Handler = Callable[[Connection], Awaitable[None]]


class Server:
    """A listening WebSocket server; made by :func:`serve`.

    Await it (``server = await serve(...)``) or use it as an async context
    manager to start listening. :meth:`close` stops listening and closes
    every connection with 1001; :meth:`wait_closed` then waits for the
    handlers to return. Connections get ``close_timeout`` to finish their
    closing handshake and handlers ``close_timeout`` more: a handler still
    running ``2 * close_timeout + 1`` seconds into ``wait_closed`` is
    cancelled, so shutdown is bounded.
    """

    def __init__(
        self,
        handler: Handler,
        host: str | Sequence[str] | None,
        port: int | None,
        *,
        options: Options,
        handshake_factory: Callable[[], ServerHandshake],
        process_request: ProcessRequest | None,
        unix: str | None,
        ssl: ssl_module.SSLContext | None,
        reuse_port: bool | None,
        backlog: int,
        protocol_factory: Callable[[Server], Any] | None = None,
    ) -> None:
        self.handler = handler
        self.options = options
        self._host, self._port, self._unix = host, port, unix
        self._ssl, self._reuse_port, self._backlog = ssl, reuse_port, backlog
        self._handshake_factory = handshake_factory
        self._process_request = process_request
        self._protocol_factory = protocol_factory
        #: Every connection of this server, from its first byte to its close.
        self.connections: set[Any] = set()
        self._server: asyncio.Server | None = None
        self._closing = False
        self._all_gone: asyncio.Future[None] | None = None

    @property
    def logger(self) -> logging.Logger:
        """The logger of this server and its connections."""
        return self.options.logger

    def _make_connection(self) -> Any:
        if self._closing:
            raise ConnectionRefusedError("the server is closing")  # asyncio drops the socket
        if self._protocol_factory is not None:
            conn = self._protocol_factory(self)
        else:
            conn = Connection(
                self.options, self._handshake_factory(), server=self, process_request=self._process_request
            )
        return conn

    def _track(self, conn: Any) -> None:
        """A connection of this server has its transport (a failed TLS handshake never gets one)."""
        self.connections.add(conn)

    def _forget(self, conn: Any) -> None:
        self.connections.discard(conn)
        if not self.connections and self._all_gone is not None and not self._all_gone.done():
            self._all_gone.set_result(None)

    async def start(self) -> Server:
        """Start listening (once); return the server."""
        if self._server is None:
            loop = asyncio.get_running_loop()
            # open_timeout covers the TLS handshake too (asyncio's default is 60 s).
            tls_timeout = self.options.open_timeout if self._ssl is not None else None
            if self._unix is not None:
                self._server = await loop.create_unix_server(
                    self._make_connection,
                    self._unix,
                    ssl=self._ssl,
                    backlog=self._backlog,
                    ssl_handshake_timeout=tls_timeout,
                )
            else:
                host: Any = self._host  # a str, a list of them, or None (every interface)
                self._server = await loop.create_server(
                    self._make_connection,
                    host,
                    self._port,
                    ssl=self._ssl,
                    reuse_port=self._reuse_port,
                    backlog=self._backlog,
                    ssl_handshake_timeout=tls_timeout,
                )
            for sock in self._server.sockets:
                self.logger.info("server listening on %s", sock.getsockname())
        return self

    def __await__(self) -> Generator[Any, None, Server]:
        return self.start().__await__()

    async def __aenter__(self) -> Server:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
        await self.wait_closed()

    @property
    def sockets(self) -> tuple[Any, ...]:
        """The listening sockets."""
        return () if self._server is None else tuple(self._server.sockets)

    def close(self, close_connections: bool = True) -> None:
        """Stop listening; with ``close_connections``, close every connection with 1001 (going away)."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        if close_connections:
            for conn in list(self.connections):
                conn._start_close(1001, "server shutting down")

    async def wait_closed(self) -> None:
        """Wait until the server is closed, its connections closed and their handlers returned."""
        if self._server is not None:
            await self._server.wait_closed()
        if not self.connections:
            return
        if self._all_gone is None:
            self._all_gone = asyncio.get_running_loop().create_future()
        timeout = self.options.close_timeout
        # Connections close within their own close_timeout; a handler that keeps
        # running after its connection closed gets close_timeout more, then is cancelled.
        grace = None if timeout is None else 2 * timeout + 1.0
        done, _ = await asyncio.wait([self._all_gone], timeout=grace)
        if done:
            return
        stragglers = [getattr(conn, "_handler_task", None) for conn in list(self.connections)]
        for task in stragglers:
            if task is not None:
                task.cancel()
        for conn in list(self.connections):
            conn._abort()
        await asyncio.wait([self._all_gone], timeout=5.0)

    async def serve_forever(self) -> None:
        """Serve until cancelled; then close gracefully."""
        await self.start()
        assert self._server is not None
        try:
            await asyncio.get_running_loop().create_future()  # until cancelled
        finally:
            self.close()
            await asyncio.shield(self.wait_closed())


def serve(
    handler: Handler,
    host: str | Sequence[str] | None = None,
    port: int | None = None,
    *,
    subprotocols: Sequence[str] | None = None,
    compression: str | None = "deflate",
    origins: Iterable[str | None] | None = None,
    process_request: ProcessRequest | None = None,
    ping_interval: float | None = 20.0,
    ping_timeout: float | None = 20.0,
    open_timeout: float | None = 10.0,
    close_timeout: float | None = 10.0,
    max_size: int | None = Options.max_size,
    max_queue: int = Options.max_queue,
    max_queue_bytes: int | None = Options.max_queue_bytes,
    write_limit: int = Options.write_limit,
    ssl: ssl_module.SSLContext | None = None,
    unix: str | None = None,
    reuse_port: bool | None = None,
    backlog: int = 1024,
    logger: logging.Logger | None = None,
) -> Server:
    """A WebSocket server that runs ``await handler(connection)`` for each connection.

    Use ``async with serve(handler, "127.0.0.1", 8765) as server:`` (or
    ``server = await serve(...)``), then ``await server.serve_forever()``.

    - ``subprotocols``: what the server speaks, by preference; ``compression``:
      ``"deflate"`` accepts permessage-deflate (browsers offer it), ``None`` refuses it;
      ``origins``: the allowed ``Origin`` values (``None`` in it allows requests
      without one), others get 403.
    - ``process_request(connection, request)``: called with the request head
      before the handshake; return ``None`` to go on, or a
      :class:`~ws4py.protocol.Response` (``connection.respond(status, text)``)
      to answer plain HTTP or refuse with any status. It may be a coroutine.
    - Limits and timers: see :class:`~ws4py.asyncio.endpoint.Options`.
      A peer that does not answer a keepalive ping within ``ping_timeout`` is
      closed with 1011; a handshake not done within ``open_timeout`` is dropped.
    - ``unix``: listen on that Unix socket path instead of ``host``/``port``.
    - When the handler returns the connection is closed with 1000; when it
      raises, with 1011 (the error is logged and the server carries on).
    """
    if compression not in ("deflate", None):
        raise ValueError(f"unsupported compression: {compression!r} (use 'deflate' or None)")
    options = Options(
        max_size=max_size,
        max_queue=max_queue,
        max_queue_bytes=max_queue_bytes,
        write_limit=write_limit,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        open_timeout=open_timeout,
        close_timeout=close_timeout,
        logger=logger or logging.getLogger("ws4py.asyncio.server"),
    )
    offered = list(subprotocols or [])
    allowed = None if origins is None else list(origins)
    deflate = DeflateOptions() if compression == "deflate" else None  # settings only: one for all

    def handshake_factory() -> ServerHandshake:
        return ServerHandshake(subprotocols=offered, compression=deflate, origins=allowed)

    return Server(
        handler,
        host,
        port,
        options=options,
        handshake_factory=handshake_factory,
        process_request=process_request,
        unix=unix,
        ssl=ssl,
        reuse_port=reuse_port,
        backlog=backlog,
    )
