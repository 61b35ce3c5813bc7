"""ws4py's asyncio layer with other WebSocket implementations, on asyncio's default loop and on uvloop.

* server: ``ws4py.asyncio.serve`` (an echo handler coroutine) and the
  callback-style ``ws4py.async_websocket.WebSocketProtocol`` (an echo
  websocket on ``loop.create_server``), each on an event loop of its own
  thread, with the clients Node's ``ws``, ``websockets``' asyncio client and
  ``aiohttp``'s ``ClientSession.ws_connect``;
* client: ``ws4py.asyncio.connect`` and the callbacks client
  (``ws4py.async_websocket.connect``, in ``connect``'s shape through
  tests/asyncio/callbacks_client.py) against Node's ``ws`` server,
  ``websockets``' asyncio server, an ``aiohttp`` application
  (``web.WebSocketResponse``) and ws4py's threaded server, with and without
  permessage-deflate.

The servers speak the small protocol of ``interop_peers`` (an echo, and the
``cmd:close``, ``cmd:ping`` and ``cmd:fragments`` commands) and record in a
:class:`~interop_peers.Journal` what each connection agreed and how it closed.
The ws4py servers record, as ``open``, the ``Sec-WebSocket-Extensions`` of
their 101 response (``None`` when none was agreed).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import uvloop
import websockets
from aiohttp import web
from interop_peers import (
    FRAGMENTS,
    TIMEOUT,
    Journal,
    NodeClient,
    Server,
    WireTap,
    command,
    run_commands,
    start_node_server,
    start_websockets_asyncio,
)
from websockets.asyncio.client import connect as websockets_connect

import ws4py.asyncio
from ws4py.async_websocket import WebSocket as CallbackWebSocket
from ws4py.async_websocket import WebSocketProtocol
from ws4py.asyncio.endpoint import Options
from ws4py.messaging import Message, PongControlMessage

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "asyncio"))
from callbacks_client import open_callbacks_client

T = TypeVar("T")

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}
_paths = itertools.count(1)

TEXT = "Hello, ws4py on asyncio! ünïcödé ✓ 🐍"
BINARY = bytes(range(256))
COMPRESSIBLE = "compress me, please " * 3277  # 65540 bytes that deflate well


def run_in_new_loop(loop_name: str, coro: Coroutine[Any, Any, T], timeout: float = 6 * TIMEOUT) -> T:
    """Run ``coro`` (bounded by ``timeout``) on a new event loop of kind ``loop_name``, then close the loop."""
    loop = LOOPS[loop_name]()
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))
    finally:
        try:
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.wait(tasks, timeout=TIMEOUT))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


class LoopThread:
    """An event loop of kind ``loop_name`` running in a thread of its own; :meth:`run` runs a coroutine on it."""

    def __init__(self, loop_name: str) -> None:
        self.name = loop_name
        self.loop = LOOPS[loop_name]()
        self._thread = threading.Thread(target=self._run, name=f"{loop_name} loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.wait(tasks, timeout=TIMEOUT))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    def run(self, awaitable: Awaitable[T], timeout: float = TIMEOUT) -> T:
        async def main() -> T:
            return await awaitable

        future = asyncio.run_coroutine_threadsafe(main(), self.loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise AssertionError(f"a coroutine on the {self.name} loop did not finish within {timeout}s") from None

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(2 * TIMEOUT)
        assert not self._thread.is_alive(), f"the {self.name} loop thread did not stop"


#: The kinds of event loop every test runs on.
LOOP_PARAMS = list(LOOPS)
_probed: dict[str, AssertionError | None] = {}


async def _probe() -> None:
    async def echo(conn: ws4py.asyncio.Connection) -> None:
        async for message in conn:
            await conn.send(message)

    async with ws4py.asyncio.serve(echo, "127.0.0.1", 0, ping_interval=None, close_timeout=1) as server:
        port = server.sockets[0].getsockname()[1]
        async with ws4py.asyncio.connect(f"ws://127.0.0.1:{port}/", open_timeout=1, close_timeout=1) as conn:
            await conn.send("probe")
            assert await asyncio.wait_for(conn.recv(), 1) == "probe"


def check_loop(name: str) -> None:
    """Check (once per run) that ws4py's server and client talk at all on a loop of kind ``name``.

    A loop that fails it fails every test that uses it at once, not each after its timeouts.
    """
    if name not in _probed:
        try:
            run_in_new_loop(name, _probe(), timeout=3)
        except Exception as exc:
            _probed[name] = AssertionError(f"ws4py.asyncio's server and client cannot talk on {name}: {exc!r}")
        else:
            _probed[name] = None
    failure = _probed[name]
    if failure is not None:
        raise failure


@pytest.fixture(scope="module", params=LOOP_PARAMS)
def loop_name(request: pytest.FixtureRequest) -> str:
    """The kind of event loop (checked by :func:`check_loop`)."""
    check_loop(request.param)
    return request.param


@pytest.fixture(scope="module")
def loop_thread(loop_name: str) -> Iterator[LoopThread]:
    thread = LoopThread(loop_name)
    try:
        yield thread
    finally:
        thread.stop()


# -- ws4py's asyncio servers ----------------------------------------------------------------


def _agreed(response: Any) -> str | None:
    """The ``Sec-WebSocket-Extensions`` of a ws4py 101 response."""
    return None if response is None else response.headers.get("Sec-WebSocket-Extensions")


def serve_handler(journal: Journal) -> Callable[[ws4py.asyncio.Connection], Coroutine[Any, Any, None]]:
    """A ``ws4py.asyncio.serve`` handler: the echo and commands of ``interop_peers``, journaled."""

    async def handler(conn: ws4py.asyncio.Connection) -> None:
        assert conn.request is not None
        path = conn.request.target
        journal.record(path, "open", _agreed(conn.response))
        await run_commands(conn, ws4py.asyncio.ConnectionClosed)
        await conn.wait_closed()
        journal.record(path, "close", (conn.close_code, conn.close_reason or ""))

    return handler


class JournalCallbackWebSocket(CallbackWebSocket):
    """The callback-style websocket with the echo and commands of ``interop_peers``, journaled in ``journal``."""

    journal: Journal
    path = ""

    def opened(self) -> None:
        self.path = self.environ["PATH_INFO"]
        self.journal.record(self.path, "open", _agreed(self.proto.response))

    def received_message(self, message: Message) -> None:
        if message.is_text and str(message).startswith("cmd:"):
            name, rest = command(str(message))
            if name == "close":
                self.close(int(rest[0]), ":".join(rest[1:]))
            elif name == "ping":
                self.ping(":".join(rest))
            elif name == "fragments":
                self.send(iter(FRAGMENTS))
            return
        self.send(message)

    def ponged(self, pong: PongControlMessage) -> None:
        self.send("ponged:" + pong.data.decode())

    def closed(self, code: int, reason: str | None = None) -> None:
        self.journal.record(self.path, "close", (code, reason or ""))


async def _start_serve(journal: Journal) -> tuple[int, Callable[[], Coroutine[Any, Any, None]]]:
    server = await ws4py.asyncio.serve(
        serve_handler(journal), "127.0.0.1", 0, ping_interval=None, close_timeout=TIMEOUT
    )

    async def stop() -> None:
        server.close()
        await server.wait_closed()

    return server.sockets[0].getsockname()[1], stop


async def _start_callback(journal: Journal) -> tuple[int, Callable[[], Coroutine[Any, Any, None]]]:
    handler = type("EchoHandler", (JournalCallbackWebSocket,), {"journal": journal})
    options = Options(ping_interval=None, close_timeout=TIMEOUT)
    loop = asyncio.get_running_loop()
    protocols: list[WebSocketProtocol] = []

    def factory() -> WebSocketProtocol:
        protocols.append(WebSocketProtocol(handler, options=options))
        return protocols[-1]

    server = await loop.create_server(factory, "127.0.0.1", 0)

    async def stop() -> None:
        server.close()
        await server.wait_closed()
        for proto in protocols:  # what a client left open
            proto.abort()

    return server.sockets[0].getsockname()[1], stop


@pytest.fixture(scope="module", params=["serve", "callback"])
def ws4py_async_server(request: pytest.FixtureRequest, loop_thread: LoopThread) -> Iterator[Server]:
    """ws4py's asyncio server (``serve`` or the callback-style ``WebSocketProtocol``), accepting permessage-deflate."""
    journal = Journal()
    start = _start_serve if request.param == "serve" else _start_callback
    port, stop = loop_thread.run(start(journal))
    try:
        yield Server(f"ws4py-{request.param}", port, journal, lambda: None, True)
    finally:
        loop_thread.run(stop(), 4 * TIMEOUT)


# -- clients of ws4py's servers (blocking adapters, like those of interop_peers) --------------


class AsyncWebsocketsClient:
    """``websockets``' asyncio client, on the test's loop thread."""

    name = "websockets"

    def __init__(self, url: str, loop_thread: LoopThread, compression: bool = True) -> None:
        self.run = loop_thread.run
        self.ws = self.run(
            websockets_connect(
                url,
                compression="deflate" if compression else None,
                proxy=None,
                open_timeout=TIMEOUT,
                close_timeout=TIMEOUT,
                ping_interval=None,
            )
        )

    @property
    def extensions_header(self) -> str | None:
        return self.ws.response.headers.get("Sec-WebSocket-Extensions")

    def send(self, data: str | bytes) -> None:
        self.run(self.ws.send(data))

    def send_fragments(self, parts: list[str] | list[bytes]) -> None:
        self.run(self.ws.send(iter(parts)))

    def recv(self) -> str | bytes:
        return self.run(self.ws.recv())

    def ping(self, payload: bytes) -> bytes:
        async def ping() -> None:
            await asyncio.wait_for(await self.ws.ping(payload), TIMEOUT)

        self.run(ping())
        return payload  # websockets only reports the pong that matches the ping's payload

    def close(self, code: int, reason: str) -> None:
        self.run(self.ws.close(code, reason))

    def closed_by_server(self) -> tuple[int, str]:
        async def closed() -> tuple[int, str]:
            try:
                message = await self.ws.recv()
            except websockets.ConnectionClosed:
                pass
            else:
                raise AssertionError(f"a message instead of the close: {message!r}")
            received = self.ws.protocol.close_rcvd
            assert received is not None
            return received.code, received.reason

        return self.run(closed())

    def shutdown(self) -> None:
        self.run(self.ws.close(), 2 * TIMEOUT)


class AiohttpClient:
    """``aiohttp``'s ``ClientSession.ws_connect`` (``compress=15`` offers permessage-deflate), on the loop thread.

    aiohttp answers pings by itself and keeps pongs to itself; it sends no fragmented messages.
    """

    name = "aiohttp"

    def __init__(self, url: str, loop_thread: LoopThread, compression: bool = True) -> None:
        self.run = loop_thread.run

        async def open_() -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
            session = aiohttp.ClientSession()
            try:
                ws = await session.ws_connect(url, compress=15 if compression else 0, autoclose=True)
            except BaseException:
                await session.close()
                raise
            return session, ws

        self.session, self.ws = self.run(open_())

    @property
    def extensions_header(self) -> str | None:
        return self.ws._response.headers.get("Sec-WebSocket-Extensions")

    def send(self, data: str | bytes) -> None:
        self.run(self.ws.send_str(data) if isinstance(data, str) else self.ws.send_bytes(data))

    def recv(self) -> str | bytes:
        message = self.run(self.ws.receive(TIMEOUT))
        if message.type is aiohttp.WSMsgType.TEXT:
            return str(message.data)
        assert message.type is aiohttp.WSMsgType.BINARY, message
        return bytes(message.data)

    def close(self, code: int, reason: str) -> None:
        assert self.run(self.ws.close(code=code, message=reason.encode()))

    def closed_by_server(self) -> tuple[int, str]:
        message = self.run(self.ws.receive(TIMEOUT))
        assert message.type is aiohttp.WSMsgType.CLOSE, message
        return message.data, message.extra

    def shutdown(self) -> None:
        async def shutdown() -> None:
            try:
                await self.ws.close()
            finally:
                await self.session.close()

        self.run(shutdown(), 2 * TIMEOUT)


CLIENTS = ["node-ws", "websockets", "aiohttp"]
#: The clients that send fragmented messages, and those that report the pongs of their pings.
FRAGMENTING_CLIENTS = ["node-ws", "websockets"]
PINGING_CLIENTS = ["node-ws", "websockets"]

Connect = Callable[..., tuple[Any, str]]


@pytest.fixture(params=CLIENTS)
def client_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def connect(
    client_name: str, ws4py_async_server: Server, loop_thread: LoopThread, request: pytest.FixtureRequest
) -> Iterator[Connect]:
    """``connect(port=None, compression=True)``: a client of the kind under test and its (unique) request path."""
    node = request.getfixturevalue("node") if client_name == "node-ws" else None
    clients: list[Any] = []

    def make(port: int | None = None, compression: bool = True) -> tuple[Any, str]:
        path = f"/{client_name}/{next(_paths)}"
        url = f"ws://127.0.0.1:{port or ws4py_async_server.port}{path}"
        if client_name == "node-ws":
            assert node is not None
            client: Any = NodeClient(url, node, deflate=compression)
        elif client_name == "websockets":
            client = AsyncWebsocketsClient(url, loop_thread, compression)
        else:
            client = AiohttpClient(url, loop_thread, compression)
        clients.append(client)
        return client, path

    yield make
    for client in clients:
        client.shutdown()


def test_server_text_and_binary(connect: Connect) -> None:
    client, _ = connect()
    client.send(TEXT)
    assert client.recv() == TEXT
    client.send(BINARY)
    assert client.recv() == BINARY
    client.send("")
    assert client.recv() == ""
    client.send(b"")
    assert client.recv() == b""


def test_server_large_and_many(connect: Connect) -> None:
    """200 KB each way (beyond ``write_limit`` and one read), then many messages without waiting."""
    client, _ = connect()
    text = ("ws4py ✓ " * 30000)[:200_000]
    data = os.urandom(200_000)
    client.send(text)
    client.send(data)
    assert client.recv() == text
    assert client.recv() == data
    messages: list[str | bytes] = [
        f"message {i}: " + "lorem ipsum ✓ " * (i * 37 % 500) if i % 3 else b"\x00\xfe" * (i * 53 % 3000)
        for i in range(40)
    ]
    for message in messages:
        client.send(message)
    assert [client.recv() for _ in messages] == messages


@pytest.mark.parametrize("client_name", FRAGMENTING_CLIENTS)
def test_server_fragmented_from_the_client(connect: Connect) -> None:
    client, _ = connect()
    client.send_fragments(["frag", "men", "ted ✓"])
    assert client.recv() == "fragmented ✓"
    client.send_fragments([b"\x00\x01", b"", b"\xff" * 300])
    assert client.recv() == b"\x00\x01" + b"\xff" * 300


def test_server_fragmented_from_the_server(connect: Connect) -> None:
    client, _ = connect()
    client.send("cmd:fragments")
    assert client.recv() == "".join(FRAGMENTS)


def test_server_ping(connect: Connect) -> None:
    client, _ = connect()
    client.send("cmd:ping:hello from ws4py")
    assert client.recv() == "ponged:hello from ws4py"


@pytest.mark.parametrize("client_name", PINGING_CLIENTS)
def test_server_answers_ping(connect: Connect) -> None:
    client, _ = connect()
    assert client.ping(b"are you there?") == b"are you there?"
    client.send("still open")
    assert client.recv() == "still open"


def test_server_close_from_the_client(connect: Connect, ws4py_async_server: Server) -> None:
    client, path = connect()
    client.send("before the close")
    assert client.recv() == "before the close"
    client.close(4001, "client says bye ✓")
    assert ws4py_async_server.journal.wait(path, "close") == (4001, "client says bye ✓")


def test_server_close_from_the_server(connect: Connect, client_name: str, ws4py_async_server: Server) -> None:
    client, path = connect()
    client.send("cmd:close:4002:server says bye ✓")
    assert client.closed_by_server() == (4002, "server says bye ✓")
    # What the server received: the client's answer to its close (aiohttp answers 1000, not an echo).
    assert ws4py_async_server.journal.wait(path, "close")[0] == (1000 if client_name == "aiohttp" else 4002)


@pytest.mark.parametrize("offered", [True, False], ids=["offered", "not-offered"])
def test_server_permessage_deflate(
    connect: Connect, client_name: str, offered: bool, ws4py_async_server: Server
) -> None:
    """The extension agreed (the 101's header, as both sides saw it) and its effect on the wire."""
    tap = WireTap(ws4py_async_server.port)
    client, path = connect(tap.port, compression=offered)
    client.send(COMPRESSIBLE)
    assert client.recv() == COMPRESSIBLE
    client.shutdown()
    tap.wait()
    request = WireTap.head(tap.upstream).get("sec-websocket-extensions")
    header = WireTap.head(tap.downstream).get("sec-websocket-extensions")
    sent = [f for f in WireTap.frames(tap.upstream) if f.opcode in (1, 2)]
    echoed = [f for f in WireTap.frames(tap.downstream) if f.opcode in (1, 2)]
    assert len(sent) == len(echoed) == 1, (sent, echoed)
    assert client.extensions_header == header
    assert ws4py_async_server.journal.wait(path, "open") == header
    if offered:
        assert request is not None and request.split(";")[0].strip() == "permessage-deflate", request
        assert header is not None and header.split(";")[0].strip() == "permessage-deflate", header
        assert sent[0].rsv1 and sent[0].length < len(COMPRESSIBLE) // 10, sent
        assert echoed[0].rsv1 and echoed[0].length < len(COMPRESSIBLE) // 10, echoed
    else:
        assert request is None and header is None
        assert not sent[0].rsv1 and sent[0].length == len(COMPRESSIBLE)
        assert not echoed[0].rsv1 and echoed[0].length == len(COMPRESSIBLE)


# -- aiohttp's server, for ws4py's client ------------------------------------------------------


def start_aiohttp_server(compression: bool) -> Server:
    """An ``aiohttp`` application on 127.0.0.1 with the echo and commands (no ``cmd:fragments``), in a thread."""
    journal = Journal()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=compression, autoping=False, timeout=TIMEOUT)
        await ws.prepare(request)
        path = request.path_qs
        journal.record(path, "open", ["permessage-deflate"] if ws.compress else [])
        closed_with: tuple[int | None, str] = (1006, "")
        while True:
            message = await ws.receive()
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                if message.type is aiohttp.WSMsgType.CLOSE:
                    closed_with = (message.data, message.extra or "")
                elif ws.close_code is not None:
                    closed_with = (ws.close_code, "")
                break
            if message.type is aiohttp.WSMsgType.ERROR:
                break
            if message.type is aiohttp.WSMsgType.TEXT and message.data.startswith("cmd:"):
                name, rest = command(message.data)
                if name == "close":
                    await ws.close(code=int(rest[0]), message=":".join(rest[1:]).encode())
                elif name == "ping":
                    await ws.ping(":".join(rest).encode())
            elif message.type is aiohttp.WSMsgType.TEXT:
                await ws.send_str(message.data)
            elif message.type is aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(message.data)
            elif message.type is aiohttp.WSMsgType.PING:
                await ws.pong(message.data)
            elif message.type is aiohttp.WSMsgType.PONG:
                await ws.send_str("ponged:" + message.data.decode())
        await ws.close()
        journal.record(path, "close", closed_with)
        return ws

    loop_thread = LoopThread("asyncio")

    async def start() -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/{tail:.*}", handler)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=TIMEOUT)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    runner = loop_thread.run(start())
    port = runner.addresses[0][1]

    def stop() -> None:
        try:
            loop_thread.run(runner.cleanup(), 4 * TIMEOUT)
        finally:
            loop_thread.stop()

    return Server("aiohttp", port, journal, stop, compression)


# -- ws4py's asyncio client against the other servers --------------------------------------

PEER_SERVERS = ["node-ws", "websockets-asyncio", "aiohttp", "ws4py-threaded"]


@pytest.fixture(scope="module", params=PEER_SERVERS)
def async_peer_server(request: pytest.FixtureRequest, compression: bool) -> Iterator[Server]:
    if request.param == "ws4py-threaded":
        yield request.getfixturevalue("ws4py_server")  # the session's; it accepts permessage-deflate
        return
    if request.param == "websockets-asyncio":
        server = start_websockets_asyncio(compression)
    elif request.param == "aiohttp":
        server = start_aiohttp_server(compression)
    else:
        server = start_node_server(request.getfixturevalue("node"), compression)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["connect", "callbacks"])
def client_kind(request: pytest.FixtureRequest) -> str:
    """ws4py's asyncio client under test: ``connect``, or the callbacks client."""
    return request.param


def _client_run(
    loop_name: str,
    peer: Server,
    compression: bool,
    body: Callable[..., Any],
    port: int | None = None,
    kind: str = "connect",
) -> Any:
    """Connect ws4py's client (``kind``) to ``peer`` on a new loop, run ``body(conn, path)``, close; its result."""
    path = f"/ws4py-asyncio/{next(_paths)}"
    open_client = ws4py.asyncio.connect if kind == "connect" else open_callbacks_client

    async def main() -> Any:
        async with open_client(
            f"ws://127.0.0.1:{port or peer.port}{path}",
            compression="deflate" if compression else None,
            open_timeout=TIMEOUT,
            close_timeout=TIMEOUT,
            ping_interval=None,
        ) as conn:
            return await body(conn, path)

    return run_in_new_loop(loop_name, main())


async def _recv(conn: ws4py.asyncio.Connection) -> str | bytes:
    return await asyncio.wait_for(conn.recv(), TIMEOUT)


def test_client_text_and_binary(loop_name: str, async_peer_server: Server, compression: bool, client_kind: str) -> None:
    async def body(conn: ws4py.asyncio.Connection, path: str) -> None:
        for message in (TEXT, BINARY, "", b""):
            await conn.send(message)
            assert await _recv(conn) == message

    _client_run(loop_name, async_peer_server, compression, body, kind=client_kind)


def test_client_large_and_many(loop_name: str, async_peer_server: Server, compression: bool, client_kind: str) -> None:
    async def body(conn: ws4py.asyncio.Connection, path: str) -> None:
        text = ("ws4py ✓ " * 30000)[:200_000]
        data = os.urandom(200_000)
        await conn.send(text)
        await conn.send(data)
        assert await _recv(conn) == text
        assert await _recv(conn) == data
        messages: list[str | bytes] = [
            f"message {i}: " + "lorem ipsum ✓ " * (i * 37 % 500) if i % 3 else b"\x00\xfe" * (i * 53 % 3000)
            for i in range(40)
        ]
        for message in messages:
            await conn.send(message)
        assert [await _recv(conn) for _ in messages] == messages

    _client_run(loop_name, async_peer_server, compression, body, kind=client_kind)


def test_client_fragmented(loop_name: str, async_peer_server: Server, compression: bool, client_kind: str) -> None:
    async def body(conn: ws4py.asyncio.Connection, path: str) -> None:
        await conn.send(iter(["frag", "men", "ted ✓"]))
        assert await _recv(conn) == "fragmented ✓"

        async def chunks() -> Any:
            for chunk in (b"\x00\x01", b"", b"\xff" * 300):
                yield chunk

        await conn.send(chunks())
        assert await _recv(conn) == b"\x00\x01" + b"\xff" * 300
        if async_peer_server.name != "aiohttp":  # aiohttp sends no fragmented messages
            await conn.send("cmd:fragments")
            assert await _recv(conn) == "".join(FRAGMENTS)

    _client_run(loop_name, async_peer_server, compression, body, kind=client_kind)


def test_client_pings(loop_name: str, async_peer_server: Server, compression: bool, client_kind: str) -> None:
    async def body(conn: ws4py.asyncio.Connection, path: str) -> None:
        latency = await asyncio.wait_for(await conn.ping(b"are you there?"), TIMEOUT)
        assert 0 <= latency < TIMEOUT
        await conn.send("cmd:ping:hello from the server")
        assert await _recv(conn) == "ponged:hello from the server"

    _client_run(loop_name, async_peer_server, compression, body, kind=client_kind)


def test_client_close_from_the_client(
    loop_name: str, async_peer_server: Server, compression: bool, client_kind: str
) -> None:
    async def body(conn: ws4py.asyncio.Connection, path: str) -> str:
        await conn.send("before the close")
        assert await _recv(conn) == "before the close"
        await asyncio.wait_for(conn.close(4001, "client says bye ✓"), 2 * TIMEOUT)
        # The server's answer: an echo of the code (aiohttp answers 1000).
        assert conn.closed and conn.close_code == (1000 if async_peer_server.name == "aiohttp" else 4001)
        return path

    path = _client_run(loop_name, async_peer_server, compression, body, kind=client_kind)
    assert async_peer_server.journal.wait(path, "close")[:2] == (4001, "client says bye ✓")


def test_client_close_from_the_server(
    loop_name: str, async_peer_server: Server, compression: bool, client_kind: str
) -> None:
    async def body(conn: ws4py.asyncio.Connection, path: str) -> None:
        await conn.send("cmd:close:4002:server says bye ✓")
        with pytest.raises(ws4py.asyncio.ConnectionClosedError) as raised:
            await _recv(conn)
        assert (raised.value.code, raised.value.reason) == (4002, "server says bye ✓")
        await asyncio.wait_for(conn.wait_closed(), 2 * TIMEOUT)
        assert (conn.close_code, conn.close_reason) == (4002, "server says bye ✓")

    _client_run(loop_name, async_peer_server, compression, body, kind=client_kind)


def test_client_permessage_deflate(
    loop_name: str, async_peer_server: Server, compression: bool, client_kind: str
) -> None:
    tap = WireTap(async_peer_server.port)

    async def body(conn: ws4py.asyncio.Connection, path: str) -> tuple[str, str | None]:
        await conn.send(COMPRESSIBLE)
        assert await _recv(conn) == COMPRESSIBLE
        return path, _agreed(conn.response)

    path, seen = _client_run(loop_name, async_peer_server, compression, body, tap.port, client_kind)
    tap.wait()
    request = WireTap.head(tap.upstream).get("sec-websocket-extensions")
    header = WireTap.head(tap.downstream).get("sec-websocket-extensions")
    sent = [f for f in WireTap.frames(tap.upstream) if f.opcode in (1, 2)]
    echoed = [f for f in WireTap.frames(tap.downstream) if f.opcode in (1, 2)]
    assert len(sent) == len(echoed) == 1, (sent, echoed)
    assert seen == header
    if compression:
        assert request is not None and request.split(";")[0].strip() == "permessage-deflate", request
        assert header is not None and header.split(";")[0].strip() == "permessage-deflate", header
        assert async_peer_server.journal.wait(path, "open") == ["permessage-deflate"]
        assert sent[0].rsv1 and sent[0].length < len(COMPRESSIBLE) // 10, sent
        assert echoed[0].rsv1 and echoed[0].length < len(COMPRESSIBLE) // 10, echoed
    else:
        assert request is None and header is None
        assert async_peer_server.journal.wait(path, "open") == []
        assert not sent[0].rsv1 and sent[0].length == len(COMPRESSIBLE)
        assert not echoed[0].rsv1 and echoed[0].length == len(COMPRESSIBLE)
