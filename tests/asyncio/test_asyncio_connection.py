"""The awaitable Connection: recv/send, async for, ping/pong, close codes and the connection's attributes."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from aio_support import (
    HOST,
    Accepted,
    RawServer,
    port_of,
    serving,
    url,
    within,
)

from ws4py.asyncio import (
    Connection,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    connect,
)
from ws4py.protocol import BinaryReceived, CloseReceived, PingReceived, PongReceived, Request, Response, TextReceived

MIB = 1024 * 1024


async def idle(conn: Connection) -> None:
    """A handler that leaves the connection to the test until the peer closes it."""
    await conn.wait_closed()


# -- messages ------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_text_comes_back_as_str_and_binary_as_bytes(compression: str | None) -> None:
    async with serving(compression=compression) as server, connect(url(server)) as conn:
        await conn.send("héllo wörld")
        await conn.send(b"\x00\xff\x01binary")
        text = await within(conn.recv())
        binary = await within(conn.recv())
        assert type(text) is str and text == "héllo wörld"
        assert type(binary) is bytes and binary == b"\x00\xff\x01binary"


@pytest.mark.parametrize("size", [5, 100_000])
async def test_recv_decode_false_gives_a_text_as_its_utf8_and_send_text_true_sends_bytes_back_as_text(
    size: int,
) -> None:
    async def forward(conn: Connection) -> None:
        async for data in conn:
            assert isinstance(data, str)  # the default
            raw = await conn.recv(decode=False)
            assert isinstance(raw, bytes)
            await conn.send(raw, text=True)  # back as text, not encoded again

    text = "κόσμε" * size
    async with serving(forward) as server, connect(url(server)) as conn:
        for message in ("skip", text, "skip", "ascii" * size, "skip", b"\x00binary"):
            await conn.send(message)
        assert await within(conn.recv()) == text
        reply = await within(conn.recv())
        assert type(reply) is str and reply == "ascii" * size
        # A binary message stays bytes with decode=False; sent with text=True it becomes text.
        assert await within(conn.recv()) == "\x00binary"


async def test_recv_decode_true_decodes_binary_and_send_text_false_sends_a_str_as_binary() -> None:
    async def swap(conn: Connection) -> None:
        async for _ in conn:
            await conn.send(await conn.recv(decode=True), text=False)

    async with serving(swap) as server, connect(url(server)) as conn:
        for message in ("x", "héllo".encode(), "y", "short", "z", "ü" * 50_000):
            await conn.send(message)
        assert await within(conn.recv()) == "héllo".encode()  # decoded by recv, sent as binary
        assert await within(conn.recv()) == b"short"
        assert await within(conn.recv()) == ("ü" * 50_000).encode()


async def test_send_text_applies_to_every_fragment_of_an_iterable() -> None:
    async with serving() as server, connect(url(server)) as conn:
        await conn.send([b"frag", b"ments"], text=True)
        await conn.send(["as ", "binary"], text=False)
        assert await within(conn.recv()) == "fragments"
        assert await within(conn.recv()) == b"as binary"


async def test_empty_messages_keep_their_type() -> None:
    async with serving() as server, connect(url(server)) as conn:
        await conn.send("")
        await conn.send(b"")
        assert await within(conn.recv()) == ""
        assert await within(conn.recv()) == b""


async def test_bytearray_and_memoryview_are_sent_as_binary() -> None:
    async with serving() as server, connect(url(server)) as conn:
        await conn.send(bytearray(b"from a bytearray"))
        await conn.send(memoryview(b"from a memoryview"))
        assert await within(conn.recv()) == b"from a bytearray"
        assert await within(conn.recv()) == b"from a memoryview"


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_one_mib_messages_cross_intact_both_ways(compression: str | None) -> None:
    blob = os.urandom(MIB)
    text = "ü" * (MIB // 2)  # 1 MiB of UTF-8
    async with serving(compression=compression) as server, connect(url(server), compression=compression) as conn:
        await conn.send(blob)
        await conn.send(text)
        assert await within(conn.recv()) == blob
        assert await within(conn.recv()) == text


async def test_messages_arrive_in_the_order_they_were_sent() -> None:
    async with serving() as server, connect(url(server)) as conn:
        for i in range(200):
            await conn.send(f"message {i}")
        assert [await within(conn.recv()) for _ in range(200)] == [f"message {i}" for i in range(200)]


# -- fragmented sends ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fragments", "message"),
    [(["frag", "men", "ted ", "téxt"], "fragmented téxt"), ([b"\x00", b"\x01\x02", b"", b"\x03"], b"\x00\x01\x02\x03")],
    ids=["text", "binary"],
)
async def test_a_list_is_sent_as_one_fragmented_message(
    fragments: list[str] | list[bytes], message: str | bytes
) -> None:
    async with serving() as server, connect(url(server)) as conn:
        await conn.send(fragments)
        await conn.send("next")
        assert await within(conn.recv()) == message
        assert await within(conn.recv()) == "next"


async def test_a_generator_is_sent_as_one_fragmented_message() -> None:
    def chunks() -> Iterator[bytes]:
        for i in range(10):
            yield bytes([i]) * 1000

    async with serving() as server, connect(url(server)) as conn:
        await conn.send(chunks())
        assert await within(conn.recv()) == b"".join(bytes([i]) * 1000 for i in range(10))


async def test_an_async_generator_is_sent_as_one_fragmented_message() -> None:
    async def chunks() -> AsyncIterator[str]:
        for word in ("an ", "async ", "generator"):
            await asyncio.sleep(0)
            yield word

    async with serving() as server, connect(url(server)) as conn:
        await conn.send(chunks())
        assert await within(conn.recv()) == "an async generator"


async def test_the_peer_sees_one_message_with_the_fragments_concatenated_on_a_raw_connection() -> None:
    """Seen by the core of a raw peer: the message is whole, whatever frames it came in."""
    async with RawServer() as raw:
        conn = await within(connect(f"ws://{HOST}:{raw.port}/", compression=None, close_timeout=0.2))
        peer = await raw.next()
        await conn.send(["a", "b", "c"])
        await conn.send(iter([b"x", b"y"]))
        assert await peer.next_event() == TextReceived("abc")
        assert await peer.next_event() == BinaryReceived(b"xy")
        await conn.close()
        await peer.close()


async def test_other_sends_wait_for_a_fragmented_message_in_progress() -> None:
    release = asyncio.Event()

    async def slow_chunks() -> AsyncIterator[str]:
        yield "first half, "
        await release.wait()
        yield "second half"

    async with serving() as server, connect(url(server)) as conn:
        fragmented = asyncio.ensure_future(conn.send(slow_chunks()))
        await asyncio.sleep(0.01)
        other = asyncio.ensure_future(conn.send("after it"))
        await asyncio.sleep(0.01)
        assert not other.done()
        release.set()
        await within(asyncio.gather(fragmented, other))
        assert await within(conn.recv()) == "first half, second half"
        assert await within(conn.recv()) == "after it"


async def test_mixed_str_and_bytes_fragments_raise_type_error_and_fail_the_connection_with_1011() -> None:
    accepted = Accepted(idle)
    async with serving(accepted) as server, connect(url(server)) as conn:
        with pytest.raises(TypeError):
            await conn.send(["text", b"bytes"])
        # Half a message went out: the connection cannot carry another one.
        server_side = await accepted.next()
        await within(server_side.wait_closed())
        assert server_side.close_code == 1011
        with pytest.raises(ConnectionClosedError) as closed:
            await within(conn.recv())
        assert closed.value.code == 1011


async def test_an_iterable_that_raises_midway_fails_the_connection_with_1011_and_the_error_propagates() -> None:
    def broken() -> Iterator[str]:
        yield "half a message"
        raise LookupError("the source failed")

    accepted = Accepted(idle)
    async with serving(accepted) as server, connect(url(server)) as conn:
        with pytest.raises(LookupError):
            await conn.send(broken())
        server_side = await accepted.next()
        await within(server_side.wait_closed())
        assert server_side.close_code == 1011
        assert conn.close_code == 1011


@pytest.mark.parametrize("message", [42, 1.5, None, {"a": "dict"}, [1, 2]], ids=repr)
async def test_what_is_not_a_message_raises_type_error_and_the_connection_stays_usable(message: object) -> None:
    async with serving() as server, connect(url(server)) as conn:
        with pytest.raises(TypeError):
            await conn.send(message)  # type: ignore[arg-type]
        await conn.send("still fine")
        assert await within(conn.recv()) == "still fine"


# -- async for, recv and the end of the connection --------------------------------


async def test_async_for_ends_quietly_when_the_peer_closes_normally() -> None:
    async def three_then_return(conn: Connection) -> None:
        for i in range(3):
            await conn.send(f"m{i}")

    async with serving(three_then_return) as server, connect(url(server)) as conn:
        received = [message async for message in conn]
        assert received == ["m0", "m1", "m2"]
        assert conn.close_code == 1000


async def test_async_for_raises_connection_closed_error_when_the_peer_drops_tcp() -> None:
    async with RawServer() as raw:
        conn = await within(connect(f"ws://{HOST}:{raw.port}/", compression=None))
        peer = await raw.next()
        await peer.send(peer.core.send_text("last words"))
        peer.abort()
        received = []
        with pytest.raises(ConnectionClosedError) as closed:
            async for message in conn:
                received.append(message)
        assert received == ["last words"]
        assert closed.value.code == 1006
        assert conn.close_code == 1006
        assert conn.close_reason == ""


async def test_recv_returns_every_message_received_before_the_close_then_raises_closed_ok() -> None:
    async def burst_then_close(conn: Connection) -> None:
        for i in range(5):
            await conn.send(str(i))
        await conn.close(1001, "going away")

    async with serving(burst_then_close) as server, connect(url(server)) as conn:
        await within(conn.wait_closed())
        assert [await within(conn.recv()) for _ in range(5)] == ["0", "1", "2", "3", "4"]
        with pytest.raises(ConnectionClosedOK) as closed:
            await conn.recv()
        assert (closed.value.code, closed.value.reason) == (1001, "going away")


async def test_concurrent_recv_raises_runtime_error() -> None:
    async with serving(idle) as server, connect(url(server)) as conn:
        first = asyncio.ensure_future(conn.recv())
        await asyncio.sleep(0.01)
        with pytest.raises(RuntimeError, match="already waiting"):
            await conn.recv()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first


async def test_recv_after_a_cancelled_recv_gets_the_next_message() -> None:
    async with serving() as server, connect(url(server)) as conn:
        waiting = asyncio.ensure_future(conn.recv())
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await conn.send("not lost")
        assert await within(conn.recv()) == "not lost"


async def test_send_after_the_peer_closed_raises_connection_closed() -> None:
    """The producer pattern: send until the peer is gone, and learn it from send."""
    outcome: asyncio.Future[BaseException] = asyncio.get_running_loop().create_future()

    async def producer(conn: Connection) -> None:
        try:
            while True:
                await conn.send("tick")
                await asyncio.sleep(0.001)
        except ConnectionClosed as exc:
            outcome.set_result(exc)

    async with serving(producer) as server:
        async with connect(url(server)) as conn:
            assert await within(conn.recv()) == "tick"
        exc = await within(outcome)
        assert isinstance(exc, ConnectionClosedOK)
        assert exc.code == 1000
        with pytest.raises(ConnectionClosedOK):
            await conn.send("after my own close")


async def test_send_after_the_peer_dropped_tcp_raises_connection_closed_error() -> None:
    async with RawServer() as raw:
        conn = await within(connect(f"ws://{HOST}:{raw.port}/"))
        peer = await raw.next()
        peer.abort()
        await within(conn.wait_closed())
        with pytest.raises(ConnectionClosedError) as closed:
            await conn.send("into the void")
        assert closed.value.code == 1006


# -- ping and pong ----------------------------------------------------------------


async def test_ping_returns_an_awaitable_resolving_with_the_latency_in_seconds() -> None:
    async with serving(idle) as server, connect(url(server)) as conn:
        pong = await conn.ping()
        latency = await within(pong)
        assert isinstance(latency, float)
        assert latency >= 0.0
        custom = await within(await conn.ping("custom payload"))
        assert isinstance(custom, float)


async def test_many_pings_in_flight_each_resolve() -> None:
    async with serving(idle) as server, connect(url(server)) as conn:
        waiters = [await conn.ping(f"ping {i}") for i in range(20)]
        latencies = await within(asyncio.gather(*waiters))
        assert len(latencies) == 20 and all(isinstance(x, float) for x in latencies)


async def test_a_ping_with_the_payload_of_one_in_flight_raises_value_error() -> None:
    async with RawServer() as raw:  # a peer that never answers: the first ping stays in flight
        conn = await within(connect(f"ws://{HOST}:{raw.port}/"))
        peer = await raw.next()
        await conn.ping(b"same")
        with pytest.raises(ValueError):
            await conn.ping(b"same")
        with pytest.raises(ValueError):
            await conn.ping(b"x" * 126)
        peer.abort()
        await within(conn.wait_closed())


async def test_a_ping_in_flight_raises_connection_closed_when_the_connection_ends() -> None:
    async with RawServer() as raw:
        conn = await within(connect(f"ws://{HOST}:{raw.port}/"))
        peer = await raw.next()
        pong = await conn.ping()
        assert isinstance(await peer.next_event(), PingReceived)
        peer.abort()
        with pytest.raises(ConnectionClosedError) as closed:
            await within(pong)
        assert closed.value.code == 1006


async def test_ping_on_a_closed_connection_raises_connection_closed() -> None:
    async with serving() as server:
        async with connect(url(server)) as conn:
            pass
        with pytest.raises(ConnectionClosedOK):
            await conn.ping()
        with pytest.raises(ConnectionClosedOK):
            await conn.pong()


async def test_the_peer_answers_a_ping_and_receives_an_unsolicited_pong() -> None:
    async with RawServer() as raw:
        conn = await within(connect(f"ws://{HOST}:{raw.port}/"))
        peer = await raw.next()
        await conn.pong("heartbeat")
        assert await peer.next_event() == PongReceived(b"heartbeat")
        await peer.send(peer.core.send_ping(b"are you there"))
        await peer.send(peer.core.send_text("after the ping"))
        assert await within(conn.recv()) == "after the ping"
        event = await peer.next_event()
        assert isinstance(event, PongReceived) and event.payload == b"are you there"
        peer.abort()
        await within(conn.wait_closed())


# -- closing -----------------------------------------------------------------------


async def test_the_clients_close_code_and_reason_reach_the_server() -> None:
    accepted = Accepted(idle)
    async with serving(accepted) as server:
        conn = await within(connect(url(server)))
        server_side = await accepted.next()
        await within(conn.close(4001, "client is done"))
        await within(server_side.wait_closed())
        assert (server_side.close_code, server_side.close_reason) == (4001, "client is done")
        assert conn.close_code == 4001  # the server's close echoes the code


async def test_the_servers_close_code_and_reason_reach_the_client() -> None:
    async def close_with_reason(conn: Connection) -> None:
        await conn.close(4002, "server is done")

    async with serving(close_with_reason) as server, connect(url(server)) as conn:
        with pytest.raises(ConnectionClosedError) as closed:
            await within(conn.recv())
        assert (closed.value.code, closed.value.reason) == (4002, "server is done")
        assert (conn.close_code, conn.close_reason) == (4002, "server is done")


async def test_close_code_and_reason_are_none_while_open() -> None:
    accepted = Accepted(idle)
    async with serving(accepted) as server, connect(url(server)) as conn:
        server_side = await accepted.next()
        for side in (conn, server_side):
            assert side.close_code is None
            assert side.close_reason is None
            assert not side.closed


async def test_wait_closed_returns_once_the_peer_closed() -> None:
    accepted = Accepted(idle)
    async with serving(accepted) as server:
        conn = await within(connect(url(server)))
        server_side = await accepted.next()
        waiting = asyncio.ensure_future(server_side.wait_closed())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        await conn.close()
        await within(waiting)
        assert server_side.closed and conn.closed


async def test_close_twice_and_close_after_the_end_return_at_once() -> None:
    async with serving() as server:
        conn = await within(connect(url(server)))
        await within(asyncio.gather(conn.close(1000, "first"), conn.close(1001, "second")))
        await within(conn.close(4000, "after the end"))
        assert conn.close_code == 1000


async def test_close_gives_up_on_a_peer_that_never_answers_after_close_timeout() -> None:
    async with RawServer() as raw:
        conn = await within(connect(f"ws://{HOST}:{raw.port}/", close_timeout=0.2))
        peer = await raw.next()
        await within(conn.close())
        assert conn.closed
        assert conn.close_code == 1006
        assert await peer.next_event() == CloseReceived(1000, "")


async def test_close_with_an_invalid_code_raises_value_error() -> None:
    async with serving() as server, connect(url(server)) as conn:
        with pytest.raises(ValueError):
            await conn.close(1006)
        await conn.send("still open")
        assert await within(conn.recv()) == "still open"


# -- attributes ----------------------------------------------------------------------


async def test_request_and_response_on_both_sides() -> None:
    accepted = Accepted(idle)
    async with serving(accepted) as server, connect(url(server, "/chat/room?id=7")) as conn:
        server_side = await accepted.next()
        for side in (conn, server_side):
            assert isinstance(side.request, Request)
            assert side.request.method == "GET"
            assert side.request.target == "/chat/room?id=7"
            assert side.request.headers["Host"] == f"{HOST}:{port_of(server)}"
            assert isinstance(side.response, Response)
            assert side.response.status == 101
            assert side.response.headers["Upgrade"].lower() == "websocket"
        assert conn.response is not None and server_side.response is not None
        assert conn.response.headers["Sec-WebSocket-Accept"] == server_side.response.headers["Sec-WebSocket-Accept"]


async def test_addresses_mirror_each_other() -> None:
    accepted = Accepted(idle)
    async with serving(accepted) as server, connect(url(server)) as conn:
        server_side = await accepted.next()
        assert conn.remote_address == (HOST, port_of(server))
        assert server_side.local_address == (HOST, port_of(server))
        assert conn.local_address == server_side.remote_address
        assert conn.local_address[0] == HOST


async def test_each_connection_has_its_own_uuid() -> None:
    accepted = Accepted(idle)
    async with serving(accepted) as server, connect(url(server)) as a, connect(url(server)) as b:
        ids = {a.id, b.id, (await accepted.next()).id, (await accepted.next()).id}
        assert len(ids) == 4
        assert all(isinstance(i, uuid.UUID) for i in ids)


async def test_subprotocol_is_none_without_one() -> None:
    accepted = Accepted(idle)
    async with serving(accepted) as server, connect(url(server)) as conn:
        assert conn.subprotocol is None
        assert (await accepted.next()).subprotocol is None


async def test_a_server_side_connection_is_a_connection_of_the_server() -> None:
    accepted = Accepted(idle)
    async with serving(accepted) as server, connect(url(server)):
        server_side = await accepted.next()
        assert isinstance(server_side, Connection)
        assert server.connections == {server_side}
    assert server.connections == set()
