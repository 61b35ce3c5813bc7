"""Helpers for tests/asyncio: servers that hand their connections to the test, raw peers, small probes.

A raw peer speaks the opening handshake and frames itself with ws4py's
sans-I/O core (:class:`~ws4py.protocol.ClientHandshake`,
:class:`~ws4py.protocol.ServerHandshake`, ``Connection(role)``) over asyncio
streams, so a test controls exactly what the other side does and does not
do: stop reading, never answer a ping, send half a frame, drop TCP...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import trustme

from ws4py.asyncio import Connection, Server, serve
from ws4py.protocol import (
    ClientHandshake,
    CloseReceived,
    ConnectionFailed,
    Event,
    Role,
    ServerHandshake,
)
from ws4py.protocol import Connection as Core

HOST = "127.0.0.1"
#: Bound of any single wait in a test: far above what it takes, so only a hang reaches it.
TIMEOUT = 10.0


def port_of(server: Server | asyncio.Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


def url(server: Server | asyncio.Server, path: str = "/") -> str:
    return f"ws://{HOST}:{port_of(server)}{path}"


async def within(awaitable: Awaitable[Any], timeout: float = TIMEOUT) -> Any:
    """``await awaitable``, failing the test instead of hanging."""
    return await asyncio.wait_for(awaitable, timeout)


async def eventually(predicate: Callable[[], bool], timeout: float = TIMEOUT, what: str = "condition") -> None:
    """Poll ``predicate`` (every few ms) until it holds; fail after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"{what}: not within {timeout}s"
        await asyncio.sleep(0.005)


class Accepted:
    """A server handler that hands each connection to the test, then runs ``body`` (default: echo).

    ``await accepted.next()`` is the next server-side connection; ``finished``
    the connections whose handler returned, ``errors`` what their handlers raised.
    """

    def __init__(self, body: Callable[[Connection], Awaitable[None]] | None = None) -> None:
        self.body = body or echo
        self.queue: asyncio.Queue[Connection] = asyncio.Queue()
        self.finished: list[Connection] = []
        self.errors: list[BaseException] = []

    async def __call__(self, conn: Connection) -> None:
        self.queue.put_nowait(conn)
        try:
            await self.body(conn)
        except BaseException as exc:
            self.errors.append(exc)
            raise
        finally:
            self.finished.append(conn)

    async def next(self) -> Connection:
        conn: Connection = await within(self.queue.get())
        return conn


async def echo(conn: Connection) -> None:
    async for message in conn:
        await conn.send(message)


@contextlib.asynccontextmanager
async def serving(
    handler: Callable[[Connection], Awaitable[None]] | None = None, **kwargs: Any
) -> AsyncIterator[Server]:
    """``async with serve(handler, HOST, 0, **kwargs)``, with the shutdown bounded."""
    kwargs.setdefault("close_timeout", 2.0)
    server = serve(handler or echo, None if "unix" in kwargs else HOST, None if "unix" in kwargs else 0, **kwargs)
    await server.start()
    try:
        yield server
    finally:
        server.close()
        await within(server.wait_closed())


class Records(logging.Handler):
    """Collects the records of a logger: ``with Records(logger) as records:``."""

    def __init__(self, logger: logging.Logger) -> None:
        super().__init__(logging.DEBUG)
        self.logger = logger
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def __enter__(self) -> Records:
        self.logger.addHandler(self)
        self._level = self.logger.level
        self.logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self._level)

    def messages(self, level: int = logging.DEBUG) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]


# -- raw peers ---------------------------------------------------------------


class RawPeer:
    """One end of a WebSocket driven by hand: the core frames, the test decides what goes out and when."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, core: Core) -> None:
        self.reader = reader
        self.writer = writer
        self.core = core
        self.events: list[Event] = []

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def next_event(self, timeout: float = TIMEOUT) -> Event:
        """The next event from the other side (raises EOFError at the end of the stream)."""
        while not self.events:
            data = await within(self.reader.read(65536), timeout)
            if not data:
                raise EOFError("the other side closed the connection")
            self.events.extend(self.core.receive_data(data))
        return self.events.pop(0)

    async def until_close(self, timeout: float = TIMEOUT) -> list[Event]:
        """Every event up to and including a close (or a failure); stops early at EOF."""
        events: list[Event] = []
        with contextlib.suppress(EOFError, ConnectionError):
            while True:
                event = await self.next_event(timeout)
                events.append(event)
                if isinstance(event, (CloseReceived, ConnectionFailed)):
                    break
        return events

    async def read_to_eof(self, timeout: float = TIMEOUT) -> bytes:
        """What the other side still sends, until it closes TCP (a reset counts as the end)."""
        chunks = []
        with contextlib.suppress(ConnectionError):
            while True:
                data = await within(self.reader.read(65536), timeout)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await within(self.writer.wait_closed())

    def abort(self) -> None:
        """Drop TCP with a reset: no close frame, no FIN."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        self.writer.transport.abort()


async def open_tcp(port: int, rcvbuf: int | None = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A TCP connection to ``HOST:port``; ``rcvbuf`` sets SO_RCVBUF before connecting (a small window)."""
    if rcvbuf is None:
        reader, writer = await within(asyncio.open_connection(HOST, port))
        return reader, writer
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await within(asyncio.get_running_loop().sock_connect(sock, (HOST, port)))
    except BaseException:
        sock.close()
        raise
    reader, writer = await within(asyncio.open_connection(sock=sock, limit=rcvbuf))
    return reader, writer


async def raw_client(
    port: int, path: str = "/", headers: list[tuple[str, str]] | None = None, rcvbuf: int | None = None
) -> RawPeer:
    """A client that completes the opening handshake, then does only what the test tells it."""
    reader, writer = await open_tcp(port, rcvbuf)
    handshake = ClientHandshake(HOST, path, port=port, headers=headers or [])
    writer.write(handshake.request_bytes())
    while handshake.receive_data(await within(reader.read(1))) is None:
        pass  # byte by byte: nothing after the response head is consumed
    return RawPeer(reader, writer, handshake.connection(max_message_size=None))


async def http_exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``request`` as it is and read the response until the server closes: (status, headers, body)."""
    reader, writer = await open_tcp(port)
    try:
        writer.write(request)
        data = await within(reader.read())
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip()
    return status, fields, body


class RawServer:
    """A listener whose connections complete the handshake, then are handed to the test as :class:`RawPeer`."""

    def __init__(self) -> None:
        self.peers: asyncio.Queue[RawPeer] = asyncio.Queue()
        self.server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._accept, HOST, 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self._writers:
            writer.close()
        for writer in self._writers:
            with contextlib.suppress(ConnectionError):
                await within(writer.wait_closed())
        await within(self.server.wait_closed())

    @property
    def port(self) -> int:
        assert self.server is not None
        return port_of(self.server)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        handshake = ServerHandshake()
        request = None
        while request is None:
            data = await reader.read(1)
            if not data:
                return
            request = handshake.receive_data(data)
        writer.write(handshake.accept())
        self.peers.put_nowait(RawPeer(reader, writer, handshake.connection(max_message_size=None)))

    async def next(self) -> RawPeer:
        peer: RawPeer = await within(self.peers.get())
        return peer


def frame(core: Core, opcode: str, payload: bytes, fin: bool = True) -> bytes:
    """A data frame from ``core`` (``opcode``: "text", "binary" or "cont")."""
    if opcode == "text":
        return core.send_text(payload, fin)
    if opcode == "binary":
        return core.send_binary(payload, fin)
    return core.send_continuation(payload, fin)


def server_core() -> Core:
    return Core(Role.SERVER, max_message_size=None)


def tls_contexts(*names: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context) with a certificate for ``names`` from a new test CA."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    return server_context, client_context
