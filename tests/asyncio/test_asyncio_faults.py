"""Faults and load: vanishing peers, protocol violations, floods of slow handshakes, mass shutdown, churn."""

from __future__ import annotations

import asyncio
import contextlib
import struct

import pytest
from aio_support import (
    HOST,
    Accepted,
    eventually,
    open_tcp,
    port_of,
    raw_client,
    serving,
    url,
    within,
)

from ws4py.asyncio import Connection, ConnectionClosedError, ConnectionClosedOK, connect, serve
from ws4py.protocol import CloseReceived

KIB = 1024


async def recv_until_closed(conn: Connection) -> None:
    """A handler that reads until the connection ends; what ended it is in ``Accepted.errors``."""
    while True:
        await conn.recv()


def masked_header(opcode: int, length: int, fin: bool = True) -> bytes:
    """A client frame header announcing ``length`` bytes of payload, with a zero mask."""
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        return bytes([first, 0x80 | length]) + b"\0\0\0\0"
    if length < 65536:
        return bytes([first, 0x80 | 126]) + struct.pack("!H", length) + b"\0\0\0\0"
    return bytes([first, 0x80 | 127]) + struct.pack("!Q", length) + b"\0\0\0\0"


# -- a peer that vanishes ------------------------------------------------------------


@pytest.mark.parametrize("how", ["reset", "fin"])
async def test_a_peer_vanishing_mid_message_ends_the_handler_with_1006(how: str) -> None:
    accepted = Accepted(recv_until_closed)
    async with serving(accepted) as server:
        peer = await raw_client(port_of(server))
        server_side = await accepted.next()
        # Half of a 100 KiB binary frame (mask of zeros: the payload goes as it is).
        await peer.send(masked_header(0x2, 100 * KIB) + bytes(50 * KIB))
        if how == "reset":
            peer.abort()
        await peer.close()
        await within(server_side.wait_closed())
        await eventually(lambda: len(accepted.finished) == 1, what="the handler ended")
        [error] = accepted.errors
        assert isinstance(error, ConnectionClosedError) and error.code == 1006
        assert server.connections == set()


async def test_a_peer_resetting_while_the_server_sends_a_large_message() -> None:
    accepted = Accepted(lambda conn: conn.send(bytes(8 * 1024 * KIB)))
    async with serving(accepted, compression=None) as server:
        peer = await raw_client(port_of(server), rcvbuf=16 * KIB)
        server_side = await accepted.next()
        peer.abort()
        await peer.close()
        await within(server_side.wait_closed())
        await eventually(lambda: len(accepted.finished) == 1, what="the handler ended")
        assert server_side.close_code == 1006
        assert server.connections == set()


async def test_a_large_send_that_meets_an_unseen_reset_ends_the_connection_as_a_lost_peer() -> None:
    # While its queue is full the server reads nothing, so it has not seen the peer's reset when
    # the handler sends: the write of the large frame (writev on Python < 3.12) meets it first.
    peer_gone = asyncio.Event()

    async def body(conn: Connection) -> None:
        await peer_gone.wait()
        await conn.send(bytes(256 * KIB))
        await recv_until_closed(conn)

    accepted = Accepted(body)
    async with serving(accepted, compression=None, max_queue=1) as server:
        peer = await raw_client(port_of(server))
        server_side = await accepted.next()
        await peer.send(peer.core.send_binary(b"one") + peer.core.send_binary(b"two"))
        transport = server_side.transport
        assert transport is not None
        await eventually(lambda: not transport.is_reading(), what="the server stopped reading")
        peer.abort()
        await peer.close()
        peer_gone.set()
        await within(server_side.wait_closed())
        await eventually(lambda: len(accepted.finished) == 1, what="the handler ended")
        [error] = accepted.errors
        assert isinstance(error, ConnectionClosedError) and error.code == 1006
        assert server.connections == set()


async def test_shutdown_while_a_handler_waits_in_send_for_a_peer_that_never_reads_is_bounded() -> None:
    async def flood(conn: Connection) -> None:
        while True:
            await conn.send(bytes(64 * KIB))

    accepted = Accepted(flood)
    server = serve(accepted, HOST, 0, compression=None, write_limit=32 * KIB, close_timeout=0.3)
    await server.start()
    peer = await raw_client(port_of(server), rcvbuf=16 * KIB)  # never reads
    try:
        server_side = await accepted.next()
        assert server_side.transport is not None
        transport = server_side.transport
        await eventually(lambda: transport.get_write_buffer_size() > 32 * KIB, what="send waiting")
        server.close()
        # The close frame is stuck behind the unread data: close_timeout drops the peer.
        await within(server.wait_closed(), 2 * 0.3 + 1.0 + 2.0)
        assert server.connections == set()
        [error] = accepted.errors
        assert isinstance(error, ConnectionClosedError)
    finally:
        await peer.close()


# -- protocol violations and limits ---------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"\x81\x05hello", 1002),  # a client frame without a mask
        (masked_header(0x1, 2) + b"\xc3\x28", 1007),  # invalid UTF-8 in a text frame
        (masked_header(0x3, 0), 1002),  # a reserved opcode
        (masked_header(0x2, 2**40), 1009),  # announces a terabyte: refused from its header
    ],
    ids=["unmasked", "bad-utf8", "reserved-opcode", "huge-header"],
)
async def test_a_protocol_violation_fails_the_connection_with_its_code(data: bytes, code: int) -> None:
    accepted = Accepted(recv_until_closed)
    async with serving(accepted, close_timeout=0.5) as server:
        peer = await raw_client(port_of(server))
        try:
            server_side = await accepted.next()
            await peer.send(data)
            events = await peer.until_close()
            assert isinstance(events[-1], CloseReceived) and events[-1].code == code
            await peer.close()
            await within(server_side.wait_closed())
            [error] = accepted.errors
            assert isinstance(error, ConnectionClosedError) and error.code == code
        finally:
            await peer.close()


async def test_a_client_message_over_max_size_gets_1009() -> None:
    accepted = Accepted(recv_until_closed)
    async with serving(accepted, max_size=1000) as server, connect(url(server)) as conn:
        await conn.send(b"x" * 1000)  # at the limit: fine
        await conn.send(["y" * 600, "y" * 401])  # over it, in two fragments
        with pytest.raises(ConnectionClosedError) as closed:
            await within(conn.recv())
        assert closed.value.code == 1009
        await eventually(lambda: len(accepted.finished) == 1, what="the handler ended")
        [error] = accepted.errors
        assert isinstance(error, ConnectionClosedError) and error.code == 1009


# -- floods --------------------------------------------------------------------------------


async def open_many(
    port: int, count: int, first_bytes: bytes
) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """``count`` TCP connections to ``port``, each having sent ``first_bytes``."""
    semaphore = asyncio.Semaphore(100)

    async def one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with semaphore:
            reader, writer = await open_tcp(port)
            writer.write(first_bytes)
            return reader, writer

    return list(await within(asyncio.gather(*(one() for _ in range(count))), 30.0))


@pytest.mark.async_timeout(60)
async def test_a_thousand_slow_handshakes_are_dropped_by_open_timeout_while_a_client_connects() -> None:
    count = 1000
    open_timeout = 2.0
    async with serving(open_timeout=open_timeout, compression=None) as server:
        half_request = f"GET / HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\n".encode()
        slow = await open_many(port_of(server), count, half_request)
        try:
            await eventually(lambda: len(server.connections) == count, what="all slow handshakes accepted")
            async with connect(url(server), open_timeout=open_timeout) as conn:
                await conn.send("not held up")
                assert await within(conn.recv()) == "not held up"
                # It got through while every slow handshake was still waiting for its timeout.
                assert len(server.connections) == count + 1

            async def dropped(reader: asyncio.StreamReader) -> bytes:
                with contextlib.suppress(ConnectionError):
                    return await reader.read()
                return b""

            answers = await within(asyncio.gather(*(dropped(reader) for reader, _ in slow)), 20.0)
            assert answers == [b""] * count  # dropped without a response
            await eventually(lambda: not server.connections, what="the dropped connections forgotten")
        finally:
            for _, writer in slow:
                writer.close()
            await asyncio.gather(*(writer.wait_closed() for _, writer in slow), return_exceptions=True)


@pytest.mark.async_timeout(90)
async def test_shutdown_with_a_thousand_open_connections_closes_each_with_1001() -> None:
    count = 1000
    accepted = Accepted()
    server = serve(accepted, HOST, 0, compression=None, close_timeout=5.0)
    async with server:
        semaphore = asyncio.Semaphore(100)

        async def one() -> Connection:
            async with semaphore:
                conn: Connection = await connect(url(server), compression=None, open_timeout=20.0)
                return conn

        clients = list(await within(asyncio.gather(*(one() for _ in range(count))), 60.0))
        await eventually(lambda: len(server.connections) == count, what="every connection open on the server")
    # Leaving ``async with`` closed them all and waited for every handler.
    assert server.connections == set()
    assert len(accepted.finished) == count
    await within(asyncio.gather(*(client.wait_closed() for client in clients)), 20.0)
    assert {client.close_code for client in clients} == {1001}
    for client in clients[:10]:
        with pytest.raises(ConnectionClosedOK):
            await client.recv()


@pytest.mark.async_timeout(120)
async def test_ten_thousand_connections_leave_no_task_fd_or_connection_behind() -> None:
    total, workers = 10_000, 20
    accepted = Accepted()
    async with serving(accepted, compression=None) as server:
        uri = url(server)

        async def worker(n: int) -> int:
            done = 0
            for i in range(total // workers):
                async with connect(uri, compression=None) as conn:
                    await conn.send(f"{n}:{i}")
                    assert await conn.recv() == f"{n}:{i}"
                done += 1
            return done

        assert sum(await within(asyncio.gather(*(worker(n) for n in range(workers))), 100.0)) == total
        await eventually(lambda: len(accepted.finished) == total, what="every handler finished")
        await eventually(lambda: not server.connections, what="every connection forgotten")
    assert not accepted.errors
