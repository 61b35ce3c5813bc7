"""broadcast(): one message to many connections, without waiting, and the connections it skipped and why."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aio_support import HOST, Accepted, port_of, raw_client, serving, url, within

from ws4py.async_websocket import WebSocket, WebSocketProtocol
from ws4py.asyncio import Connection, Skipped, broadcast, connect
from ws4py.protocol import BinaryReceived, Request, TextReceived

KIB = 1024

# Every test on the C fan-out send and on its pure-Python twin (conftest.py).
pytestmark = pytest.mark.usefixtures("each_send_ready")


async def idle(conn: Connection) -> None:
    await conn.wait_closed()


async def open_clients(server_url: str, accepted: Accepted, count: int, **kwargs: object) -> list[Connection]:
    clients = [await within(connect(server_url, **kwargs)) for _ in range(count)]  # type: ignore[arg-type]
    for _ in clients:
        await accepted.next()
    return clients


async def close_all(clients: list[Connection]) -> None:
    await within(asyncio.gather(*(client.close() for client in clients)))


@pytest.mark.parametrize("message", ["to everyone", b"\x00to everyone\xff"], ids=["text", "binary"])
async def test_every_open_server_connection_receives_the_message(message: str | bytes) -> None:
    accepted = Accepted(idle)
    async with serving(accepted, compression=None) as server:
        clients = await open_clients(url(server), accepted, 5)
        try:
            # Uncompressed server connections take the same frame: it is built once.
            assert all(conn._core is not None and conn._core.frames_shareable for conn in server.connections)
            assert broadcast(server.connections, message) == []
            for client in clients:
                assert await within(client.recv()) == message
        finally:
            await close_all(clients)


async def test_broadcast_keeps_the_order_of_each_connections_messages() -> None:
    accepted = Accepted(idle)
    async with serving(accepted) as server:
        clients = await open_clients(url(server), accepted, 3)
        try:
            for i in range(20):
                for conn in list(server.connections):
                    await conn.send(f"own {i}")
                assert broadcast(server.connections, f"shared {i}") == []
            for client in clients:
                received = [await within(client.recv()) for _ in range(40)]
                assert received == [m for i in range(20) for m in (f"own {i}", f"shared {i}")]
        finally:
            await close_all(clients)


@pytest.mark.parametrize("client_compression", ["deflate", None])
async def test_compressing_connections_each_get_their_own_frame_and_decode_it(client_compression: str | None) -> None:
    accepted = Accepted(idle)
    async with serving(accepted) as server:
        compressing = await open_clients(url(server), accepted, 3)
        other = await open_clients(url(server), accepted, 2, compression=client_compression)
        clients = compressing + other
        try:
            messages: list[str | bytes] = [f"message {i} " + "repetitive text " * i for i in range(30)]
            messages += [b"\x01" * 5000, ""]
            for message in messages:
                assert broadcast(server.connections, message) == []
            for client in clients:
                assert [await within(client.recv()) for _ in messages] == messages
        finally:
            await close_all(clients)


async def test_closed_connections_are_skipped_as_closed() -> None:
    accepted = Accepted(idle)
    async with serving(accepted) as server:
        clients = await open_clients(url(server), accepted, 3)
        connections = list(server.connections)
        gone = next(conn for conn in connections if conn.remote_address == clients[0].local_address)
        await within(clients[0].close())
        await within(gone.wait_closed())
        try:
            assert broadcast(connections, "after one left") == [Skipped(gone, "closed")]
            for client in clients[1:]:
                assert await within(client.recv()) == "after one left"
        finally:
            await close_all(clients)


async def test_a_connection_still_in_its_handshake_is_skipped_as_closed() -> None:
    release = asyncio.Event()

    async def hold(conn: Connection, request: Request) -> None:
        await release.wait()

    async with serving(idle, process_request=hold) as server:
        pending = asyncio.ensure_future(connect(url(server)))
        while not server.connections:
            await asyncio.sleep(0.005)
        [opening] = server.connections
        assert broadcast([opening], "too early") == [Skipped(opening, "closed")]
        release.set()
        client = await within(pending)
        await client.close()


async def test_a_peer_that_does_not_read_is_skipped_as_slow_and_the_others_still_receive() -> None:
    accepted = Accepted(idle)
    async with serving(accepted, compression=None, write_limit=32 * KIB) as server:
        slow_peer = await raw_client(port_of(server), rcvbuf=16 * KIB)  # never reads
        slow = await accepted.next()
        clients = await open_clients(url(server), accepted, 2)
        try:
            chunk = bytes(64 * KIB)
            for _ in range(10_000):  # until the kernel's buffers are full and the transport holds the rest
                skipped = broadcast([slow], chunk)
                if skipped:
                    break
                await asyncio.sleep(0)
            assert skipped == [Skipped(slow, "slow")]
            assert slow.transport is not None
            held = slow.transport.get_write_buffer_size()
            skipped = broadcast(server.connections, "for those who keep up")
            assert skipped == [Skipped(slow, "slow")]
            assert slow.transport.get_write_buffer_size() == held  # nothing more piled up on it
            for client in clients:
                assert await within(client.recv()) == "for those who keep up"
            slow_peer.abort()
        finally:
            await close_all(clients)
            await slow_peer.close()


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_a_connection_sending_a_fragmented_message_is_skipped_as_busy(compression: str | None) -> None:
    release = asyncio.Event()

    async def two_halves() -> AsyncIterator[str]:
        yield "first half, "
        await release.wait()
        yield "second half"

    accepted = Accepted(idle)
    async with serving(accepted, compression=compression) as server:
        [client] = await open_clients(url(server), accepted, 1)
        [conn] = server.connections
        sending = asyncio.ensure_future(conn.send(two_halves()))
        try:
            await asyncio.sleep(0.01)
            assert broadcast([conn], "in between") == [Skipped(conn, "busy")]
            release.set()
            await within(sending)
            assert broadcast([conn], "after it") == []
            assert await within(client.recv()) == "first half, second half"
            assert await within(client.recv()) == "after it"
        finally:
            await client.close()


async def test_client_connections_get_their_own_masked_frames() -> None:
    accepted = Accepted(idle)
    async with serving(accepted) as server:
        clients = [await within(connect(url(server), compression=c)) for c in ("deflate", None, None)]
        server_sides = [await accepted.next() for _ in clients]
        try:
            assert broadcast(clients, "from every client") == []
            for conn in server_sides:
                assert await within(conn.recv()) == "from every client"
        finally:
            await close_all(clients)


async def test_callback_style_connections_can_be_broadcast_to() -> None:
    loop = asyncio.get_running_loop()
    protocols: list[WebSocketProtocol] = []

    def factory() -> WebSocketProtocol:
        protocols.append(WebSocketProtocol(WebSocket, compression=None))
        return protocols[-1]

    server = await loop.create_server(factory, HOST, 0)
    try:
        clients = [await within(connect(url(server))) for _ in range(3)]
        while sum(p.ws is not None for p in protocols) < 3:
            await asyncio.sleep(0.005)
        assert broadcast(protocols, b"to callback sockets") == []
        for client in clients:
            assert await within(client.recv()) == b"to callback sockets"
        await close_all(clients)
    finally:
        server.close()
        await server.wait_closed()


async def test_a_raw_peer_sees_one_ordinary_frame() -> None:
    accepted = Accepted(idle)
    async with serving(accepted, compression=None) as server:
        peer = await raw_client(port_of(server))
        try:
            [conn] = [await accepted.next()]
            assert broadcast([conn], "plain") == []
            assert broadcast([conn], b"bytes") == []
            assert await peer.next_event() == TextReceived("plain")
            assert await peer.next_event() == BinaryReceived(b"bytes")
        finally:
            await peer.close()


async def test_broadcasting_what_is_not_str_or_bytes_raises_type_error() -> None:
    with pytest.raises(TypeError):
        broadcast([], 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        broadcast([], ["a", "list"])  # type: ignore[arg-type]
