"""``connect``: open a WebSocket client connection on asyncio, optionally through a proxy, with reconnection."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import ssl as ssl_module
from collections.abc import AsyncIterator, Awaitable, Generator, Iterable, Sequence
from types import TracebackType
from typing import Any
from urllib.parse import unquote, urlsplit

from ..exc import HandshakeError
from ..protocol import ClientHandshake, Response
from ..protocol.http11 import HeadReader, serialize_request
from ..protocol.uri import parse_uri
from .connection import Connection
from .handshake import ClientSide
from .options import Options, build_options

__all__ = ["ClientConnection", "connect"]

#: Handshake refusals worth retrying: the server is there but cannot serve now.
_RETRY_STATUSES = frozenset((500, 502, 503, 504))


class ClientConnection(ClientSide, Connection):
    """A connection opened by :class:`connect`: the client's handshake, whose outcome :attr:`opened` gives."""

    __slots__ = ("_opened_waiter",)

    def __init__(self, options: Options, handshake: ClientHandshake) -> None:
        super().__init__(options, handshake)
        self._opened_waiter: asyncio.Future[None] = self._loop.create_future()

    @property
    def opened(self) -> asyncio.Future[None]:
        """Resolves when the opening handshake succeeded; raises what made it fail."""
        return self._opened_waiter

    def _opened(self) -> None:
        super()._opened()
        if not self._opened_waiter.done():
            self._opened_waiter.set_result(None)

    def _handshake_failed(self, exc: BaseException) -> None:
        super()._handshake_failed(exc)
        if not self._opened_waiter.done():
            self._opened_waiter.set_exception(exc)


class connect:
    """Open a client connection to ``uri`` (``ws://`` or ``wss://``).

    - ``conn = await connect(uri)``, or ``async with connect(uri) as conn:``
      (closed on exit), or ``async for conn in connect(uri):`` which
      reconnects after connection failures, with exponential back-off and
      jitter, from ``reconnect_delay`` up to ``max_reconnect_delay`` seconds
      (refused connections, timeouts, 500/502/503/504 refusals and a server
      that closes before it answers are retried; anything else is raised).
    - ``additional_headers`` are added to the request; ``origin`` sets
      ``Origin``; ``subprotocols`` are offered; ``compression="deflate"`` (the
      default) offers permessage-deflate.
    - ``ssl``: an :class:`ssl.SSLContext` (default for ``wss://``: the system
      trust store, verification on); ``server_hostname`` overrides the name checked.
    - ``proxy``: ``"http://host:port"`` (HTTP CONNECT, ``user:pass@`` for basic
      authentication) or ``"socks5://..."``/``"socks4://..."`` (needs the
      ``python-socks`` package).
    - ``unix``: connect to that Unix socket path; the URI still names the host
      for the ``Host`` header.
    - ``open_timeout`` bounds connecting plus the handshake; the other limits
      are those of :class:`~ws4py.asyncio.endpoint.Options`.
    """

    def __init__(
        self,
        uri: str,
        *,
        additional_headers: Iterable[tuple[str, str]] | dict[str, str] | None = None,
        origin: str | None = None,
        subprotocols: Sequence[str] | None = None,
        compression: str | None = "deflate",
        ssl: ssl_module.SSLContext | None = None,
        server_hostname: str | None = None,
        proxy: str | None = None,
        unix: str | None = None,
        open_timeout: float | None = 10.0,
        close_timeout: float | None = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        max_size: int | None = Options.max_size,
        max_queue: int = Options.max_queue,
        max_queue_bytes: int | None = Options.max_queue_bytes,
        write_limit: int = Options.write_limit,
        reconnect_delay: float = 1.0,
        max_reconnect_delay: float = 60.0,
        logger: logging.Logger | None = None,
    ) -> None:
        self.options, self._deflate = build_options(
            compression=compression,
            logger=logger,
            default_logger="ws4py.asyncio.client",
            max_size=max_size,
            max_queue=max_queue,
            max_queue_bytes=max_queue_bytes,
            write_limit=write_limit,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            open_timeout=open_timeout,
            close_timeout=close_timeout,
        )
        self.uri = uri
        self._target = parse_uri(uri)
        if ssl is not None and not self._target.secure:
            raise ValueError("an ssl context was given for a ws:// URI")
        if isinstance(additional_headers, dict):
            additional_headers = additional_headers.items()
        self._headers = list(additional_headers or ())
        self._origin = origin
        self._subprotocols = list(subprotocols or [])
        self._ssl = ssl
        self._server_hostname = server_hostname
        self._proxy = proxy
        self._unix = unix
        self._reconnect_delay = reconnect_delay
        self._max_reconnect_delay = max_reconnect_delay
        self._connection: Connection | None = None

    # -- the three ways to use it --------------------------------------------

    def __await__(self) -> Generator[Any, None, Connection]:
        return self._connect().__await__()

    async def __aenter__(self) -> Connection:
        self._connection = await self._connect()
        return self._connection

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def __aiter__(self) -> AsyncIterator[Connection]:
        delay = self._reconnect_delay
        while True:
            try:
                conn = await self._connect()
            except Exception as exc:
                if not _worth_retrying(exc):
                    raise
                # Full jitter: many clients cut off at once do not come back at once.
                wait = random.uniform(0.5, 1.0) * delay
                self.options.logger.info("connecting to %s failed (%s); retrying in %.1f s", self.uri, exc, wait)
                await asyncio.sleep(wait)
                delay = min(delay * 2, self._max_reconnect_delay)
                continue
            delay = self._reconnect_delay
            try:
                yield conn
            finally:
                await conn.close()

    # -- connecting --------------------------------------------------------

    async def _connect(self) -> Connection:
        timeout = self.options.open_timeout
        if timeout is None:
            return await self._open()
        return await asyncio.wait_for(self._open(), timeout)

    async def _open(self) -> Connection:
        conn = ClientConnection(self.options, self.client_handshake())
        await self.open_protocol(conn, conn.opened)
        return conn

    # -- for other client protocols (the callbacks API's) ------------------------

    def client_handshake(self) -> ClientHandshake:
        """A new opening handshake with this target and these options (one per connection attempt)."""
        target = self._target
        assert target.port is not None  # not a ws+unix URI
        return ClientHandshake(
            target.host,
            target.resource,
            port=target.port,
            secure=target.secure,
            subprotocols=self._subprotocols,
            compression=self._deflate,
            headers=self._headers,
            origin=self._origin,
        )

    async def open_protocol(self, protocol: ClientSide, opened: Awaitable[None]) -> None:
        """Connect ``protocol`` (made with :meth:`client_handshake`) as this ``connect`` would: TLS,
        ``proxy``, ``unix``; return once ``opened`` (its handshake's outcome) is done.

        Not bounded by ``open_timeout`` (the caller bounds it); on any failure
        the connection is aborted and the error raised.
        """
        loop = asyncio.get_running_loop()
        target = self._target
        assert target.port is not None
        ssl = self._ssl
        if target.secure and ssl is None:
            ssl = ssl_module.create_default_context()
        hostname = (self._server_hostname or target.host) if ssl is not None else None
        try:
            if self._unix is not None:
                await loop.create_unix_connection(lambda: protocol, self._unix, ssl=ssl, server_hostname=hostname)
            elif self._proxy is not None:
                sock = await _through_proxy(self._proxy, target.host, target.port)
                await loop.create_connection(lambda: protocol, sock=sock, ssl=ssl, server_hostname=hostname)
            else:
                await loop.create_connection(
                    lambda: protocol, target.host, target.port, ssl=ssl, server_hostname=hostname
                )
            await opened
        except BaseException:
            protocol.abort()
            raise


def _worth_retrying(exc: BaseException) -> bool:
    if isinstance(exc, ssl_module.SSLCertVerificationError):
        return False
    if isinstance(exc, HandshakeError):
        # A 5xx, or no response at all (the server closed the connection during the handshake).
        return exc.status in _RETRY_STATUSES or isinstance(exc.__cause__, EOFError)
    return isinstance(exc, (OSError, asyncio.TimeoutError))


async def _through_proxy(proxy: str, host: str, port: int) -> socket.socket:
    """A socket connected to ``host:port`` through ``proxy``."""
    parts = urlsplit(proxy)
    if parts.scheme in ("socks5", "socks5h", "socks4", "socks4a"):
        try:
            from python_socks.async_.asyncio import Proxy  # type: ignore[import-not-found]
        except ImportError:
            raise ValueError("a SOCKS proxy needs the python-socks package (pip install python-socks)") from None
        sock: socket.socket = await Proxy.from_url(proxy).connect(dest_host=host, dest_port=port)
        return sock
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"unsupported proxy: {proxy!r} (use http://, socks5:// or socks4://)")
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(parts.hostname, parts.port or 8080, type=socket.SOCK_STREAM)
    family, type_, proto, _, address = infos[0]
    sock = socket.socket(family, type_, proto)
    try:
        sock.setblocking(False)
        await loop.sock_connect(sock, address)
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        headers = [("Host", authority)]
        if parts.username is not None:
            import base64

            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            headers.append(("Proxy-Authorization", "Basic " + base64.b64encode(credentials).decode()))
        await loop.sock_sendall(sock, serialize_request("CONNECT", authority, headers))
        reader = HeadReader(is_request=False)
        response: Any = None
        while response is None:
            data = await loop.sock_recv(sock, 4096)
            if not data:
                raise HandshakeError("the proxy closed the connection during CONNECT", None)
            response = reader.feed(data)
        assert isinstance(response, Response)
        if response.status != 200:
            raise HandshakeError(f"the proxy refused CONNECT: {response.status} {response.reason}", response.status)
        if reader.leftover:
            raise HandshakeError("the proxy sent data after its CONNECT response", None)
        return sock
    except BaseException:
        sock.close()
        raise
