"""``serve``: a WebSocket server on asyncio, one handler coroutine per connection."""

from __future__ import annotations

import asyncio
import logging
import ssl as ssl_module
from collections.abc import Awaitable, Callable, Generator, Iterable, Sequence
from types import TracebackType
from typing import Any, Protocol

from ..exc import ConnectionClosed
from ..protocol import Response, ServerHandshake, State
from ..protocol.headers import Headers
from ..protocol.http11 import REASONS
from .connection import Connection
from .endpoint import ProcessRequest
from .handshake import ServerSide
from .options import Options, build_options

__all__ = ["ConnectionHost", "Server", "ServerConnection", "ServedConnection", "serve"]

Handler = Callable[["ServerConnection"], Awaitable[None]]


class ConnectionHost(Protocol):
    """What a :class:`ServerConnection` needs from its server."""

    @property
    def handler(self) -> Handler: ...

    def track(self, conn: ServerConnection) -> None:
        """``conn`` has its transport: it is one of the server's connections from now on."""

    def forget(self, conn: ServerConnection) -> None:
        """``conn`` is over: its transport is gone and its handler (if any) returned."""


class ServedConnection(Protocol):
    """What a :class:`Server` needs from its connections: start their close, drop them, their handler."""

    def start_close(self, code: int | None = 1000, reason: str = "") -> None: ...

    def abort(self) -> None: ...

    @property
    def handler_task(self) -> asyncio.Task[None] | None: ...


class ServerConnection(ServerSide, Connection):
    """A connection accepted by a :class:`Server`: the server's handshake, then ``await handler(connection)``.

    The connection tells its server when it starts (it has a transport) and
    when it is over (transport gone and handler returned, whichever comes
    last), through :class:`ConnectionHost`.
    """

    __slots__ = ("_handler_task", "_host")

    def __init__(
        self,
        options: Options,
        handshake: ServerHandshake,
        host: ConnectionHost,
        process_request: ProcessRequest | None = None,
    ) -> None:
        super().__init__(options, handshake, process_request)
        self._host = host
        self._handler_task: asyncio.Task[None] | None = None

    @property
    def handler_task(self) -> asyncio.Task[None] | None:
        """The task running the handler, once the handshake is done."""
        return self._handler_task

    def respond(self, status: int, text: str) -> Response:
        """A plain-text response for a ``process_request`` hook to return."""
        body = text.encode()
        headers = Headers([("Content-Type", "text/plain; charset=utf-8")])
        return Response(status, REASONS.get(status, ""), headers, body)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._host.track(self)

    def _opened(self) -> None:
        super()._opened()
        self._handler_task = self._loop.create_task(self._run_handler())

    def _handshake_failed(self, exc: BaseException) -> None:
        super()._handshake_failed(exc)
        self._host.forget(self)

    def _lost(self, exc: Exception | None) -> None:
        super()._lost(exc)
        task = self._handler_task
        if task is None or task.done():
            self._host.forget(self)

    async def _run_handler(self) -> None:
        code, reason = 1000, ""
        try:
            await self._host.handler(self)
        except ConnectionClosed:
            pass  # the peer left while the handler was sending or receiving: not an error
        except asyncio.CancelledError:
            code, reason = 1001, "server shutting down"
        except Exception:
            self._options.logger.error("connection handler failed", exc_info=True)
            code, reason = 1011, "internal error"
        if self._core is not None and self._core.state is State.OPEN:
            self.start_close(code, reason)
        # The server forgets the connection once both its handler returned and
        # its transport is gone, whichever comes last (see _lost).
        if self._closed.done():
            self._host.forget(self)


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
    ) -> None:
        self.handler = handler
        self.options = options
        self._host, self._port, self._unix = host, port, unix
        self._ssl, self._reuse_port, self._backlog = ssl, reuse_port, backlog
        self._handshake_factory = handshake_factory
        self._process_request = process_request
        #: Every connection of this server, from its first byte to its close.
        self.connections: set[ServerConnection] = set()
        self._server: asyncio.Server | None = None
        self._closing = False
        self._all_gone: asyncio.Future[None] | None = None

    @property
    def logger(self) -> logging.Logger:
        """The logger of this server and its connections."""
        return self.options.logger

    def _make_connection(self) -> ServerConnection:
        if self._closing:
            raise ConnectionRefusedError("the server is closing")  # asyncio drops the socket
        return ServerConnection(self.options, self._handshake_factory(), self, self._process_request)

    def track(self, conn: ServerConnection) -> None:
        """For :class:`ServerConnection`: ``conn`` has its transport (a failed TLS handshake never gets one)."""
        self.connections.add(conn)

    def forget(self, conn: ServerConnection) -> None:
        """For :class:`ServerConnection`: ``conn`` is over (transport gone, handler returned)."""
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
                conn.start_close(1001, "server shutting down")

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
        served: list[ServedConnection] = list(self.connections)
        for conn in served:
            task = conn.handler_task
            if task is not None:
                task.cancel()
        for conn in served:
            conn.abort()
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
    options, deflate = build_options(
        compression=compression,
        logger=logger,
        default_logger="ws4py.asyncio.server",
        max_size=max_size,
        max_queue=max_queue,
        max_queue_bytes=max_queue_bytes,
        write_limit=write_limit,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        open_timeout=open_timeout,
        close_timeout=close_timeout,
    )
    offered = list(subprotocols or [])
    allowed = None if origins is None else list(origins)

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
