"""Flow control: write_limit makes send wait for a slow reader; max_queue pauses reading for a slow consumer.

Both ends live in this process, so the kernel's socket buffers fill up
first; the tests then look at what ws4py holds itself (the transport's
write buffer, the queue of received messages) and check that nothing is
lost once the slow side catches up.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import pytest
from aio_support import HOST, Accepted, echo, eventually, port_of, raw_client, serving, url, within

from ws4py.asyncio import Connection, ConnectionClosedOK, connect, serve
from ws4py.protocol import BinaryReceived, CloseReceived, TextReceived

KIB = 1024
#: Larger than one read of either loop (256 KiB): a read completes at most one such message.
LARGE = 300 * KIB


def numbered(i: int, size: int) -> bytes:
    return struct.pack("!I", i) + bytes([i % 251]) * (size - 4)


async def stalled(progress: list[int], settle: float = 0.1) -> int:
    """Wait until ``progress`` stops growing for ``settle`` seconds; its length then."""
    while True:
        count = len(progress)
        await asyncio.sleep(settle)
        if len(progress) == count:
            return count


async def test_send_waits_while_a_peer_that_never_reads_leaves_the_buffer_over_write_limit() -> None:
    write_limit = 64 * KIB
    message_size = 16 * KIB
    sent: list[int] = []
    buffered: list[int] = []
    stop = asyncio.Event()

    async def producer(conn: Connection) -> None:
        assert conn.transport is not None
        i = 0
        while not stop.is_set():
            await conn.send(numbered(i, message_size))
            sent.append(i)
            buffered.append(conn.transport.get_write_buffer_size())
            i += 1
        await conn.send("end")

    accepted = Accepted(producer)
    async with serving(accepted, compression=None, write_limit=write_limit) as server:
        peer = await raw_client(port_of(server), rcvbuf=16 * KIB)  # reads nothing until told
        try:
            server_side = await accepted.next()
            assert server_side.transport is not None
            transport = server_side.transport
            await eventually(
                lambda: transport.get_write_buffer_size() > write_limit, what="the buffer over write_limit"
            )
            count = await stalled(sent)
            assert not server_side.closed
            assert transport.get_write_buffer_size() > write_limit  # send is waiting, not failing
            # ws4py holds at most write_limit plus the message that crossed it.
            assert max(buffered) <= write_limit + message_size + 14
            stop.set()
            events = await peer.until_close()
        finally:
            await peer.close()
    assert len(sent) >= count
    assert events[-2:] == [TextReceived("end"), CloseReceived(1000, "")]
    assert events[:-2] == [BinaryReceived(numbered(i, message_size)) for i in range(len(sent))]


async def test_large_messages_to_a_reader_that_stalls_arrive_whole_and_in_order() -> None:
    # A large frame goes out as header and payload in one vectored write when
    # nothing is queued, and what the socket does not take goes to the
    # transport: here the socket fills in the middle of payloads, and later
    # frames find bytes queued before them.
    sizes = [64 * KIB, 1024 * KIB + 3, 64 * KIB + 1, LARGE, 2048 * KIB, 70 * KIB]
    done = asyncio.Event()

    async def producer(conn: Connection) -> None:
        assert conn.transport is not None
        conn.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * KIB)
        for i, size in enumerate(sizes):
            await conn.send(numbered(i, size) if i % 2 else numbered(i, size).decode("latin-1"))
        done.set()

    accepted = Accepted(producer)
    # A write_limit above the total: no send waits, each finds the previous one's bytes queued.
    async with serving(accepted, compression=None, write_limit=8 * 1024 * KIB) as server:
        peer = await raw_client(port_of(server), rcvbuf=16 * KIB)
        try:
            await within(done.wait())
            server_side = await accepted.next()
            assert server_side.transport is not None
            assert server_side.transport.get_write_buffer_size() > 3 * 1024 * KIB
            events = await peer.until_close()
        finally:
            await peer.close()
    expected = [
        BinaryReceived(numbered(i, size)) if i % 2 else TextReceived(numbered(i, size).decode("latin-1"))
        for i, size in enumerate(sizes)
    ]
    assert len(events) == len(sizes) + 1
    assert events[:-1] == expected
    assert events[-1] == CloseReceived(1000, "")


async def test_a_fragmented_send_waits_between_fragments_for_a_slow_reader() -> None:
    write_limit = 32 * KIB
    produced: list[int] = []
    stop = asyncio.Event()

    async def fragments() -> AsyncIterator[bytes]:
        i = 0
        while not stop.is_set():
            produced.append(i)
            yield numbered(i, 16 * KIB)
            i += 1

    async def producer(conn: Connection) -> None:
        await conn.send(fragments())

    accepted = Accepted(producer)
    async with serving(accepted, compression=None, write_limit=write_limit) as server:
        peer = await raw_client(port_of(server), rcvbuf=16 * KIB)
        try:
            server_side = await accepted.next()
            assert server_side.transport is not None
            await stalled(produced)
            assert server_side.transport.get_write_buffer_size() <= write_limit + 16 * KIB + 14
            stop.set()
            events = await peer.until_close()
        finally:
            await peer.close()
    assert events == [BinaryReceived(b"".join(numbered(i, 16 * KIB) for i in produced)), CloseReceived(1000, "")]


@pytest.mark.parametrize(
    ("max_queue", "max_queue_bytes", "queued_at_most"),
    [(4, None, 4), (16, 64 * KIB, 2)],
    ids=["max_queue", "max_queue_bytes"],
)
async def test_reading_pauses_at_max_queue_or_max_queue_bytes_and_no_message_is_lost(
    max_queue: int, max_queue_bytes: int | None, queued_at_most: int
) -> None:
    # LARGE messages: a read never completes two, so the queue stops at exactly the bound
    # (max_queue_bytes lets a second message in, so that one alone never pauses reading).
    release = asyncio.Event()
    received: list[bytes] = []
    queue_lengths: list[int] = []

    async def slow_consumer(conn: Connection) -> None:
        await release.wait()
        async for message in conn:
            assert isinstance(message, bytes)
            received.append(message)

    accepted = Accepted(slow_consumer)
    async with serving(accepted, compression=None, max_queue=max_queue, max_queue_bytes=max_queue_bytes) as server:
        async with connect(url(server), compression=None, write_limit=64 * KIB) as conn:
            server_side = await accepted.next()
            sent: list[int] = []

            async def sender() -> None:
                i = 0
                while not release.is_set():
                    await conn.send(numbered(i, LARGE))
                    sent.append(i)
                    i += 1

            sending = asyncio.ensure_future(sender())
            assert conn.transport is not None
            client_transport = conn.transport
            while True:
                queue_lengths.append(len(server_side._messages or ()))
                count = len(sent)
                await asyncio.sleep(0.05)
                if len(sent) == count and client_transport.get_write_buffer_size() > 64 * KIB:
                    break  # the client's writes are blocked: its buffer grows, the server reads no more
            queue_lengths.append(len(server_side._messages or ()))
            assert queue_lengths[-1] == queued_at_most
            assert max(queue_lengths) <= queued_at_most
            release.set()
            await within(sending)
        await eventually(lambda: len(accepted.finished) == 1, what="the handler finished")
    assert len(received) == len(sent)
    assert all(message == numbered(i, LARGE) for i, message in enumerate(received))


async def test_a_handler_that_keeps_up_with_reads_of_several_large_messages_never_has_reading_paused() -> None:
    # Four 64 KiB messages a read are over max_queue_bytes (64 KiB), but an echo
    # takes them all as soon as it runs: reading pauses only if they are still
    # queued then (no pause and resume, two epoll_ctl calls, per read).
    pauses: list[int] = []
    count = 64

    async def echo_counting(conn: Connection) -> None:
        transport = conn.transport
        assert transport is not None
        original = transport.pause_reading
        try:
            transport.pause_reading = lambda: (pauses.append(1), original())[1]  # type: ignore[method-assign]
        except AttributeError:  # uvloop's transports take no attribute: counted on asyncio's loop
            pauses.append(-1)
        async for message in conn:
            await conn.send(message)

    limit = 64 * 1024 * KIB  # no send waits
    async with (
        serving(echo_counting, compression=None, write_limit=limit) as server,
        connect(url(server), compression=None, write_limit=limit) as conn,
    ):
        for i in range(count):
            await conn.send(numbered(i, 64 * KIB))
        for i in range(count):
            assert await within(conn.recv()) == numbered(i, 64 * KIB)
    if pauses == [-1]:
        pytest.skip("uvloop: pause_reading cannot be counted")
    assert pauses == []


@pytest.mark.parametrize("kind", [str, bytes])
async def test_with_small_messages_reading_still_pauses_and_the_queue_holds_at_most_one_read_more(
    kind: type[str] | type[bytes],
) -> None:
    max_queue = 8
    release = asyncio.Event()
    received: list[str | bytes] = []

    def message(i: int) -> str | bytes:
        text = f"{i:08}" + "x" * 92  # 100 characters: 106 bytes on the wire
        return text if kind is str else text.encode()

    async def slow_consumer(conn: Connection) -> None:
        await release.wait()
        async for message in conn:
            received.append(message)

    accepted = Accepted(slow_consumer)
    async with serving(accepted, compression=None, max_queue=max_queue) as server:
        async with connect(url(server), compression=None, write_limit=16 * KIB) as conn:
            server_side = await accepted.next()
            sent: list[int] = []

            async def sender() -> None:
                i = 0
                while not release.is_set():
                    await conn.send(message(i))
                    sent.append(i)
                    i += 1

            sending = asyncio.ensure_future(sender())
            await stalled(sent)
            # Every message of the read that crossed max_queue is queued: one read is at most 256 KiB.
            assert max_queue <= len(server_side._messages or ()) <= max_queue + 256 * KIB // 106
            release.set()
            await within(sending)
        await eventually(lambda: len(accepted.finished) == 1, what="the handler finished")
    # Each message kept its own content, however many reads it was queued across.
    assert received == [message(i) for i in range(len(sent))]


@pytest.mark.parametrize("compression", ["deflate", None])
async def test_messages_a_client_has_not_read_yet_keep_their_content_across_reads(compression: str | None) -> None:
    count = 2000

    async def burst(conn: Connection) -> None:
        for i in range(count):
            await conn.send(numbered(i, 100 + i % 50))
        await conn.send("done")
        await conn.wait_closed()

    async with (
        serving(burst, compression=compression) as server,
        connect(url(server), compression=compression, max_queue=count + 1, max_queue_bytes=None) as conn,
    ):
        while not conn._messages or conn._messages[-1].data != "done":
            await asyncio.sleep(0.01)  # everything arrives, over many reads, before the first recv
        received = [await within(conn.recv()) for _ in range(count)]
        assert received == [numbered(i, 100 + i % 50) for i in range(count)]
        assert await within(conn.recv()) == "done"


async def test_a_closed_peer_while_send_waits_for_the_buffer_does_not_hang_send() -> None:
    outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def producer(conn: Connection) -> None:
        try:
            while True:
                await conn.send(bytes(64 * KIB))
        except ConnectionClosedOK:
            outcome.set_result("closed ok")
        except Exception as exc:
            outcome.set_result(type(exc).__name__)

    accepted = Accepted(producer)
    async with serving(accepted, compression=None, write_limit=32 * KIB, close_timeout=0.2) as server:
        peer = await raw_client(port_of(server), rcvbuf=16 * KIB)
        try:
            server_side = await accepted.next()
            assert server_side.transport is not None
            await eventually(lambda: server_side.transport.get_write_buffer_size() > 32 * KIB)  # type: ignore[union-attr]
            peer.abort()
            assert await within(outcome) == "ConnectionClosedError"
        finally:
            await peer.close()


@pytest.mark.parametrize(("name", "value"), [("max_queue", 0), ("write_limit", -1)])
async def test_invalid_limits_raise_value_error(name: str, value: int) -> None:
    with pytest.raises(ValueError):
        serve(lambda conn: conn.wait_closed(), HOST, 0, **{name: value})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        connect(f"ws://{HOST}:9/", **{name: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"max_queue": 0}, "max_queue must be at least 1"),
        ({"max_queue_bytes": -1}, "max_queue_bytes must not be negative"),
        ({"write_limit": -1}, "write_limit must not be negative"),
    ],
)
def test_flow_control_settings_out_of_range_are_refused_with_their_name(setting: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        serve(echo, HOST, 0, **setting)  # type: ignore[arg-type]
