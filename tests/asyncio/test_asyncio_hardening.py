"""Hardening of the asyncio stacks (issue 20): what a hostile or slow peer can make them hold or leave behind.

- A peer that floods pings and never reads cannot grow the outgoing buffer
  past ``write_limit`` (plus the few pongs the core may owe), on the server
  or the client.
- A large text message is held once (its UTF-8 bytes or its ``str``, not
  both), and the queue's byte bound counts what is really held.
- ``open_timeout`` cancels a ``process_request`` still running.
- The callbacks API: what the callbacks send to many connections goes out in
  one write per connection, in order, complete, the close after the data.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from typing import ClassVar

import pytest
from aio_support import (
    HOST,
    Accepted,
    RawPeer,
    RawServer,
    eventually,
    open_tcp,
    port_of,
    raw_client,
    serving,
    url,
    within,
)

from ws4py.async_websocket import WebSocket, WebSocketProtocol
from ws4py.asyncio import Connection, broadcast, connect
from ws4py.asyncio.writing import CORK_LIMIT
from ws4py.messaging import Message
from ws4py.protocol import ClientHandshake, CloseReceived, Request, Role, TextReceived
from ws4py.protocol import Connection as Core

KIB = 1024
MIB = 1024 * KIB

# -- a peer that sends pings and never reads (item 3) ------------------------------------

#: Enough pings that their pongs (127 bytes each) outgrow any socket buffer the kernel gives.
PINGS = 40_000
#: Pings written per turn of the loop: the receiver reads them in a read of their own each, so
#: it owes a pong for each (the core answers at most the last 16 pings of one read).
BATCH = 8
WRITE_LIMIT = 32 * KIB
#: What may sit above write_limit: the write that crossed it (at most the 16 pongs the core owes).
PONG_SLACK = 16 * 127 + 4 * KIB


def small_send_buffer(conn: Connection) -> None:
    """Shrink the kernel's send buffer of ``conn``: what the peer does not read then stays in ws4py's buffer."""
    assert conn.transport is not None
    conn.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * KIB)


async def flood_pings(peer: RawPeer) -> None:
    """``PINGS`` pings of 125 bytes, a few per turn of the loop, then a text ``"done"``.

    The receiver has handled every ping once it has the text. The peer reads nothing.
    """
    batch = peer.core.send_ping(b"p" * 125, unique=False) * BATCH
    for _ in range(PINGS // BATCH):
        peer.writer.write(batch)
        await asyncio.sleep(0)
    peer.writer.write(peer.core.send_text("done"))


async def test_a_server_stops_growing_its_write_buffer_for_a_peer_that_floods_pings_and_never_reads() -> None:
    buffered: list[int] = []

    async def body(conn: Connection) -> None:
        small_send_buffer(conn)
        assert await conn.recv() == "done"
        assert conn.transport is not None
        buffered.append(conn.transport.get_write_buffer_size())

    accepted = Accepted(body)
    async with serving(accepted, compression=None, ping_interval=None, write_limit=WRITE_LIMIT) as server:
        peer = await raw_client(port_of(server), rcvbuf=4 * KIB)
        try:
            await accepted.next()
            await flood_pings(peer)
            await eventually(lambda: bool(buffered), what="the handler got the text after the pings")
        finally:
            peer.abort()
    assert buffered[0] <= WRITE_LIMIT + PONG_SLACK, f"{buffered[0]} bytes buffered"


async def test_a_client_stops_growing_its_write_buffer_for_a_server_that_floods_pings_and_never_reads() -> None:
    async with (
        RawServer() as raw,
        connect(f"ws://{HOST}:{raw.port}/", compression=None, ping_interval=None, write_limit=WRITE_LIMIT) as client,
    ):
        peer = await raw.next()
        small_send_buffer(client)
        # The raw server reads nothing from here on: a small window.
        peer.writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * KIB)
        try:
            await flood_pings(peer)
            assert await within(client.recv()) == "done"
            assert client.transport is not None
            buffered = client.transport.get_write_buffer_size()
            assert buffered <= WRITE_LIMIT + PONG_SLACK, f"{buffered} bytes buffered"
        finally:
            peer.abort()


async def test_an_echo_server_stops_growing_its_write_buffer_for_a_peer_that_sends_and_never_reads() -> None:
    # Not a regression test (send() always waited for the buffer to drain): the
    # other half of item 3, answers to messages, bounded by the handler's own wait.
    message = "m" * KIB
    buffered: list[int] = []

    async def echo_small_buffer(conn: Connection) -> None:
        small_send_buffer(conn)
        assert conn.transport is not None
        async for received in conn:
            await conn.send(received)
            buffered.append(conn.transport.get_write_buffer_size())

    accepted = Accepted(echo_small_buffer)
    async with serving(accepted, compression=None, ping_interval=None, write_limit=WRITE_LIMIT) as server:
        peer = await raw_client(port_of(server), rcvbuf=4 * KIB)
        try:
            conn = await accepted.next()
            batch = peer.core.send_text(message) * BATCH
            for _ in range(4000 // BATCH):
                peer.writer.write(batch)
                await asyncio.sleep(0)
            await eventually(lambda: len(buffered) > 10, what="the server echoing")
            while True:  # until the handler waits for the peer
                count = len(buffered)
                await asyncio.sleep(0.2)
                if len(buffered) == count:
                    break
            assert conn.transport is not None
            buffered.append(conn.transport.get_write_buffer_size())
        finally:
            peer.abort()
    # What send() gathers while the handler has messages to read (CORK_LIMIT frames) may cross it.
    assert max(buffered) <= WRITE_LIMIT + CORK_LIMIT * (len(message) + 8) + PONG_SLACK


async def test_two_peers_that_both_send_more_than_the_other_reads_at_once_do_not_deadlock() -> None:
    # Why item 3 holds pongs instead of stopping reading while writes are paused:
    # two ws4py peers that both stopped reading would wait for each other forever.
    count = 200
    message = b"x" * (64 * KIB)
    async with (
        serving(compression=None, ping_interval=None) as server,
        connect(url(server), compression=None) as client,
    ):

        async def send_all() -> None:
            for _ in range(count):
                await client.send(message)

        async def receive_all() -> None:
            for _ in range(count):
                assert await client.recv() == message

        await within(asyncio.gather(send_all(), receive_all()))


# -- open_timeout and process_request (item 9) ----------------------------------------------


async def test_open_timeout_cancels_every_process_request_still_running() -> None:
    connections = 20
    started: list[int] = []
    cancelled: list[int] = []
    forever = asyncio.Event()

    async def hook(conn: Connection, request: Request) -> None:
        started.append(1)
        try:
            await forever.wait()
        except asyncio.CancelledError:
            cancelled.append(1)
            raise

    def running_hooks() -> list[asyncio.Task[object]]:
        return [task for task in asyncio.all_tasks() if getattr(task.get_coro(), "__qualname__", "").endswith("hook")]

    async with serving(process_request=hook, open_timeout=0.2) as server:
        streams = [await open_tcp(port_of(server)) for _ in range(connections)]
        try:
            for _, writer in streams:
                writer.write(ClientHandshake(HOST, "/").request_bytes())
            for reader, _ in streams:
                assert await within(reader.read(), 5.0) == b""  # aborted by open_timeout
        finally:
            for _, writer in streams:
                writer.close()
        assert len(started) == connections
        await eventually(lambda: not running_hooks(), timeout=2.0, what="the hooks' tasks gone")
        assert len(cancelled) == connections


# -- one representation of a large text, and the queue's byte bound (item 5) ------------------


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


def send_from_thread(port: int, frames: bytes, done: threading.Event) -> threading.Thread:
    """A blocking raw peer on its own thread: handshake, then ``frames`` (made beforehand: nothing new to trace)."""

    def run() -> None:
        with socket.create_connection((HOST, port)) as sock:
            sock.sendall(ClientHandshake(HOST, "/").request_bytes())
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(1)
            with contextlib.suppress(OSError):  # the test is over and the server dropped us
                sock.sendall(frames)
            done.wait(10.0)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.async_timeout(40)
async def test_a_queued_large_text_message_is_held_once(traced: None) -> None:
    size = 4 * MIB
    count = 3
    core = Core(Role.CLIENT)
    # Not ASCII: its str (one byte a character) and its UTF-8 (two) are different objects.
    texts = [chr(0xE0 + i) * (size // 2) for i in range(count)]
    frames = b"".join(core.send_text(text) for text in texts)
    received: list[str] = []
    measure = asyncio.Event()
    measured = asyncio.Event()

    async def body(conn: Connection) -> None:
        await measure.wait()  # nothing taken from the queue until measured
        measured.set()
        for _ in range(count):
            received.append(await conn.recv())

    accepted = Accepted(body)
    async with serving(accepted, compression=None, ping_interval=None) as server:
        done = threading.Event()
        base = tracemalloc.get_traced_memory()[0]
        thread = send_from_thread(port_of(server), frames, done)
        try:
            conn = await accepted.next()
            transport = conn.transport
            assert transport is not None
            await eventually(lambda: not transport.is_reading(), what="the server paused reading")
            await asyncio.sleep(0.2)  # nothing more comes in
            held = tracemalloc.get_traced_memory()[0] - base
            measure.set()
            await within(measured.wait())
            await eventually(lambda: len(received) == count, what="every message received")
        finally:
            done.set()
            await asyncio.to_thread(thread.join, 10.0)
    assert received == texts
    # One message in the queue as one representation, plus the core's receive
    # buffer (kept for the next large frame) and what one read brought past it.
    assert held <= 2 * size + MIB, f"{held / MIB:.1f} MiB held for {size / MIB:.0f} MiB messages"


# -- the callbacks API: sends of one callback to many connections (item 13) --------------------

MEMBERS = 8
ROUNDS = 50


class Hub(WebSocket):
    """On ``"go"``, sends ``ROUNDS`` messages to every member as a user writes it (``for ws in members``).

    On ``"go and close"`` it also closes every other member after its messages;
    on ``"broadcast"`` it hands the members themselves to :func:`broadcast`.
    """

    members: ClassVar[list[Hub]] = []

    def opened(self) -> None:
        self.members.append(self)

    def received_message(self, message: Message) -> None:
        command = str(message)
        if command == "broadcast":
            assert broadcast(self.members, "to every member") == []
            return
        for i in range(ROUNDS):
            for ws in self.members:
                ws.send(f"message {i}")
        if command == "go and close":
            for ws in self.members:
                if ws is not self:
                    ws.close(1000, "after the data")


@pytest.fixture
def hub() -> Iterator[type[Hub]]:
    class Fresh(Hub):
        members: ClassVar[list[Hub]] = []

    yield Fresh


@contextlib.asynccontextmanager
async def hub_with_peers(hub: type[Hub]) -> AsyncIterator[list[RawPeer]]:
    """A callbacks server of ``hub`` and ``MEMBERS`` raw peers connected to it (the first one commands)."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: WebSocketProtocol(hub, compression=None), HOST, 0)
    peers: list[RawPeer] = []
    try:
        peers = [await raw_client(port_of(server)) for _ in range(MEMBERS)]
        await eventually(lambda: len(hub.members) == MEMBERS, what="every member opened")
        yield peers
    finally:
        for peer in peers:
            peer.abort()
        server.close()
        await within(server.wait_closed())
        await eventually(lambda: all(ws.terminated for ws in hub.members), what="every member closed")


def data_segments_sent(ws: WebSocket) -> int:
    """The data segments the kernel sent on ``ws``'s socket (``tcpi_data_segs_out`` of ``TCP_INFO``, Linux)."""
    info = ws.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    segments: int = struct.unpack_from("I", info, 156)[0]
    return segments


async def test_what_one_callback_sends_to_many_connections_goes_out_in_one_write_each_in_order(
    hub: type[Hub],
) -> None:
    async with hub_with_peers(hub) as peers:
        before = [data_segments_sent(ws) for ws in hub.members]
        await peers[0].send(peers[0].core.send_text("go"))
        for peer in peers:
            assert [await peer.next_event() for _ in range(ROUNDS)] == [
                TextReceived(f"message {i}") for i in range(ROUNDS)
            ]
        # TCP_NODELAY is on: a write of its own would be a segment of its own.
        assert [data_segments_sent(ws) - b for ws, b in zip(hub.members, before, strict=True)] == [1] * MEMBERS


async def test_a_close_sent_by_a_callback_goes_out_after_the_data_it_sent_before(hub: type[Hub]) -> None:
    async with hub_with_peers(hub) as peers:
        await peers[0].send(peers[0].core.send_text("go and close"))
        for peer in peers[1:]:
            events = await peer.until_close()
            assert events == [TextReceived(f"message {i}") for i in range(ROUNDS)] + [
                CloseReceived(1000, "after the data")
            ]
        assert [await peers[0].next_event() for _ in range(ROUNDS)] == [
            TextReceived(f"message {i}") for i in range(ROUNDS)
        ]


async def test_a_send_from_outside_any_callback_goes_out_at_once(hub: type[Hub]) -> None:
    async with hub_with_peers(hub) as peers:
        hub.members[3].send("from a task")
        assert await peers[3].next_event() == TextReceived("from a task")


async def test_broadcast_takes_the_callback_websockets_themselves(hub: type[Hub]) -> None:
    async with hub_with_peers(hub) as peers:
        assert broadcast(hub.members, "from a task") == []
        await peers[0].send(peers[0].core.send_text("broadcast"))
        for peer in peers:
            assert await peer.next_event() == TextReceived("from a task")
            assert await peer.next_event() == TextReceived("to every member")
