"""The asyncio stacks obey the core and share its glue: TCP's end, fragmented sends, one compression check, layering.

Every test here watches the wire from a raw peer (ws4py's sans-I/O core over
asyncio streams), so what it checks is what another implementation sees.
"""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aio_support import HOST, Accepted, RawPeer, RawServer, port_of, raw_client, serving, url, within

import ws4py.asyncio
from ws4py.async_websocket import WebSocket, WebSocketProtocol
from ws4py.asyncio import Connection, connect, serve
from ws4py.protocol import CloseReceived, Role, frames

#: Long enough that a close reached through it is unmistakable, short enough to keep the tests quick.
SHORT = 0.3


async def hold(conn: Connection) -> None:
    await conn.wait_closed()


async def read_eof(peer: RawPeer, timeout: float = 5.0) -> bytes:
    """Raw bytes until the other side's FIN (not a reset: that raises)."""
    chunks: list[bytes] = []
    while True:
        data = await within(peer.reader.read(65536), timeout)
        if not data:
            return b"".join(chunks)
        chunks.append(data)


async def nothing_for(peer: RawPeer, seconds: float) -> bool:
    """Whether the other side sends nothing, not even its FIN, for ``seconds``."""
    try:
        await asyncio.wait_for(peer.reader.read(1), seconds)
    except asyncio.TimeoutError:
        return True
    return False


def violation(role: Role) -> bytes:
    """A frame that breaks RFC 6455 for the receiver: a reserved opcode (0x3), masked as ``role`` must."""
    return frames.build_frame(0x83, b"", b"\x01\x02\x03\x04" if role is Role.CLIENT else None)


# -- the end of TCP: the core decides, the stacks obey ------------------------------------------------


async def test_server_closes_tcp_first_after_a_clean_close() -> None:
    accepted = Accepted(hold)
    async with serving(accepted, close_timeout=5.0) as server:
        peer = await raw_client(port_of(server))
        server_side = await accepted.next()
        await peer.send(peer.core.send_close(1000, "bye"))
        # The echo, then the server's FIN: the raw client never closes its side first.
        assert peer.core.receive_data(await read_eof(peer, timeout=2.0)) == [CloseReceived(1000, "")]
        await within(server_side.wait_closed(), 2.0)
        await peer.close()


@pytest.mark.parametrize("peer_closes", [True, False], ids=["peer-closes", "peer-silent"])
async def test_server_half_closes_after_a_protocol_violation(peer_closes: bool) -> None:
    accepted = Accepted(hold)
    async with serving(accepted, close_timeout=SHORT if not peer_closes else 5.0) as server:
        peer = await raw_client(port_of(server))
        server_side = await accepted.next()
        await peer.send(violation(Role.CLIENT))
        # The close frame (1002), then EOF: the server shut down its write side...
        [close] = peer.core.receive_data(await read_eof(peer, timeout=2.0))
        assert isinstance(close, CloseReceived) and close.code == 1002
        # ...but still reads (and drops) what the peer sends: no reset for our close frame.
        await peer.send(b"late bytes the server throws away")
        await asyncio.sleep(0.05)
        assert not server_side.closed
        loop = asyncio.get_running_loop()
        started = loop.time()
        if peer_closes:
            peer.writer.write_eof()
            await within(server_side.wait_closed(), 2.0)
            assert loop.time() - started < 1.0
        else:
            await within(server_side.wait_closed(), 5.0)  # close_timeout aborts it
            assert loop.time() - started > SHORT / 2
        assert server_side.close_code == 1002
        await peer.close()


async def test_client_waits_for_the_server_to_close_tcp_after_a_clean_close() -> None:
    async with RawServer() as raw:
        conn = await within(connect(f"ws://{HOST}:{raw.port}/", close_timeout=5.0))
        peer = await raw.next()
        closing = asyncio.ensure_future(conn.close(1000, "done"))
        assert await peer.next_event() == CloseReceived(1000, "done")
        await peer.send(peer.core.data_to_send())  # the echo
        # The client does not close TCP: the server does (RFC 6455 7.1.1).
        assert await nothing_for(peer, 0.2)
        assert not conn.closed
        peer.writer.close()
        await within(closing, 2.0)
        assert conn.close_code == 1000


async def test_client_gives_up_waiting_for_the_server_after_close_timeout() -> None:
    async with RawServer() as raw:
        conn = await within(connect(f"ws://{HOST}:{raw.port}/", close_timeout=SHORT))
        peer = await raw.next()
        loop = asyncio.get_running_loop()
        started = loop.time()
        closing = asyncio.ensure_future(conn.close())
        assert await peer.next_event() == CloseReceived(1000, "")
        await peer.send(peer.core.data_to_send())
        await within(closing, 5.0)  # the server never closes TCP: the client aborts
        assert loop.time() - started > SHORT / 2
        assert conn.close_code == 1000


@pytest.mark.parametrize("peer_closes", [True, False], ids=["peer-closes", "peer-silent"])
async def test_client_half_closes_after_a_protocol_violation(peer_closes: bool) -> None:
    async with RawServer() as raw:
        conn = await within(connect(f"ws://{HOST}:{raw.port}/", close_timeout=5.0 if peer_closes else SHORT))
        peer = await raw.next()
        await peer.send(violation(Role.SERVER))
        [close] = peer.core.receive_data(await read_eof(peer, timeout=2.0))
        assert isinstance(close, CloseReceived) and close.code == 1002
        await peer.send(b"late bytes the client throws away")
        await asyncio.sleep(0.05)
        assert not conn.closed
        if peer_closes:
            peer.writer.close()
            await within(conn.wait_closed(), 2.0)
        else:
            await within(conn.wait_closed(), 5.0)
        assert conn.close_code == 1002


async def test_callbacks_server_half_closes_after_a_protocol_violation() -> None:
    protocols: list[WebSocketProtocol] = []

    def factory() -> WebSocketProtocol:
        protocols.append(WebSocketProtocol(WebSocket))
        return protocols[-1]

    server = await asyncio.get_running_loop().create_server(factory, HOST, 0)
    try:
        peer = await raw_client(port_of(server))
        await peer.send(violation(Role.CLIENT))
        [close] = peer.core.receive_data(await read_eof(peer, timeout=2.0))
        assert isinstance(close, CloseReceived) and close.code == 1002
        await asyncio.sleep(0.05)
        [proto] = protocols
        assert not proto.closed
        peer.writer.close()
        await within(until_closed(proto), 2.0)
    finally:
        server.close()
        for proto in protocols:
            proto.abort()
        await within(server.wait_closed())


async def until_closed(proto: WebSocketProtocol) -> None:
    while not proto.closed:
        await asyncio.sleep(0.005)


# -- fragmented sends: FIN on the last chunk, an empty iterable is one empty message -------------

#: ["a", "b", "c"], then [], then [b"x", b"y"], as unmasked server frames.
FRAGMENTS_ON_THE_WIRE = b"\x01\x01a" + b"\x00\x01b" + b"\x80\x01c" + b"\x81\x00" + b"\x02\x01x" + b"\x80\x01y"


async def read_exactly(peer: RawPeer, count: int) -> bytes:
    data = await within(peer.reader.readexactly(count))
    assert await nothing_for(peer, 0.05), "more bytes than the fragments' frames"
    return bytes(data)


async def test_asyncio_fragmented_sends_on_the_wire() -> None:
    async def sender(conn: Connection) -> None:
        await conn.send(["a", "b", "c"])
        await conn.send([])
        await conn.send(iter([b"x", b"y"]))
        await conn.wait_closed()

    async with serving(Accepted(sender), compression=None) as server:
        peer = await raw_client(port_of(server))
        assert await read_exactly(peer, len(FRAGMENTS_ON_THE_WIRE)) == FRAGMENTS_ON_THE_WIRE
        await peer.close()


async def test_asyncio_async_iterable_fragments_on_the_wire() -> None:
    async def chunks() -> AsyncIterator[str]:
        for chunk in ("a", "b", "c"):
            await asyncio.sleep(0)
            yield chunk

    async def empty() -> AsyncIterator[str]:
        nothing: tuple[str, ...] = ()
        for chunk in nothing:
            yield chunk

    async def sender(conn: Connection) -> None:
        await conn.send(chunks())
        await conn.send(empty())
        await conn.wait_closed()

    async with serving(Accepted(sender), compression=None) as server:
        peer = await raw_client(port_of(server))
        expected = FRAGMENTS_ON_THE_WIRE[:11]
        assert await read_exactly(peer, len(expected)) == expected
        await peer.close()


async def test_callbacks_fragmented_sends_on_the_wire() -> None:
    class Sender(WebSocket):
        def opened(self) -> None:
            self.send(["a", "b", "c"])
            self.send([])
            self.send(iter([b"x", b"y"]), binary=True)

    server = await asyncio.get_running_loop().create_server(
        lambda: WebSocketProtocol(Sender, compression=None), HOST, 0
    )
    try:
        peer = await raw_client(port_of(server))
        assert await read_exactly(peer, len(FRAGMENTS_ON_THE_WIRE)) == FRAGMENTS_ON_THE_WIRE
        await peer.close()
    finally:
        server.close()
        await within(server.wait_closed())


async def test_asyncio_client_fragments_are_the_cores_frames() -> None:
    """The client's frames are masked (random keys): compared frame by frame, unmasked."""
    async with RawServer() as raw:
        # The raw peer never answers the close: close_timeout=SHORT, not the default 10 s, ends it.
        conn = await within(connect(f"ws://{HOST}:{raw.port}/", compression=None, close_timeout=SHORT))
        peer = await raw.next()
        await conn.send(["a", "b", "c"])
        await conn.send([])
        data = await within(peer.reader.readexactly(3 * 7 + 6))
        parsed = []
        view = memoryview(data)
        while view:
            first, length = view[0], view[1] & 0x7F
            assert view[1] & 0x80  # masked
            key, payload = bytes(view[2:6]), bytes(view[6 : 6 + length])
            parsed.append((first, bytes(b ^ key[i % 4] for i, b in enumerate(payload))))
            view = view[6 + length :]
        assert parsed == [(0x01, b"a"), (0x00, b"b"), (0x80, b"c"), (0x81, b"")]
        await conn.close()


# -- one compression check for every entry point ---------------------------------------------------


async def test_serve_refuses_an_unknown_compression_at_the_call() -> None:
    with pytest.raises(ValueError, match="gzip"):
        serve(hold, HOST, 0, compression="gzip")


async def test_connect_refuses_an_unknown_compression_at_the_call() -> None:
    with pytest.raises(ValueError, match="gzip"):
        connect("ws://127.0.0.1:1/", compression="gzip")


async def test_websocket_protocol_refuses_an_unknown_compression_at_the_call() -> None:
    with pytest.raises(ValueError, match="gzip"):
        WebSocketProtocol(WebSocket, compression="gzip")


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_the_known_compressions_are_taken_by_every_entry_point(compression: str | None) -> None:
    WebSocketProtocol(WebSocket, compression=compression)
    connect("ws://127.0.0.1:1/", compression=compression)
    async with serving(hold, compression=compression) as server, connect(url(server), compression=compression) as c:
        assert (c.core is not None and c.core.deflate is not None) == (compression == "deflate")


# -- layering ------------------------------------------------------------------------------------------

PACKAGE = Path(ws4py.asyncio.__file__).parent


def imported_modules(path: Path) -> Iterator[str]:
    """The ``ws4py.asyncio`` modules ``path`` imports (relative imports resolved)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                yield node.module or ""
                for alias in node.names if node.module is None else ():
                    yield alias.name
            elif node.level == 0 and node.module and node.module.startswith("ws4py.asyncio."):
                yield node.module.removeprefix("ws4py.asyncio.")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ws4py.asyncio."):
                    yield alias.name.removeprefix("ws4py.asyncio.")


@pytest.mark.parametrize("module", ["connection", "endpoint", "handshake", "writing", "options", "broadcast"])
def test_the_shared_modules_import_neither_the_server_nor_the_client(module: str) -> None:
    imported = set(imported_modules(PACKAGE / f"{module}.py"))
    assert not imported & {"server", "client"}, imported


def test_importing_the_connection_module_alone_does_not_load_the_server() -> None:
    """Loaded under an empty package (not its ``__init__``): what it pulls in is its own doing."""
    code = (
        "import importlib.util, sys, types\n"
        "pkg = types.ModuleType('ws4py.asyncio'); pkg.__path__ = [sys.argv[1]]\n"
        "sys.modules['ws4py.asyncio'] = pkg\n"
        "import ws4py.asyncio.connection\n"
        "assert 'ws4py.asyncio.server' not in sys.modules, sorted(sys.modules)\n"
        "assert 'ws4py.asyncio.client' not in sys.modules, sorted(sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code, str(PACKAGE)], check=True, timeout=60)


# -- the callbacks' unhandled_error: a callback's exception, or the transport's error that ended it ----


async def test_callbacks_unhandled_error_gets_the_transport_error_that_ended_the_connection() -> None:
    calls: list[tuple[object, ...]] = []

    class Recording(WebSocket):
        def unhandled_error(self, error: BaseException) -> None:
            calls.append(("error", type(error)))

        def closed(self, code: int, reason: str | None = None) -> None:
            calls.append(("closed", code))

    protocols: list[WebSocketProtocol] = []

    def factory() -> WebSocketProtocol:
        protocols.append(WebSocketProtocol(Recording))
        return protocols[-1]

    server = await asyncio.get_running_loop().create_server(factory, HOST, 0)
    try:
        peer = await raw_client(port_of(server))
        [proto] = protocols
        peer.abort()  # a reset: the server's read fails
        await within(until_closed(proto), 2.0)
        assert calls == [("error", ConnectionResetError), ("closed", 1006)]
    finally:
        server.close()
        await within(server.wait_closed())
