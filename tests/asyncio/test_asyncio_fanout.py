"""The fan-out send of broadcast(): ``ws4py.fanout.send_ready`` (C and its twin) and broadcast's direct path.

The first broadcast of a loop round sends the shared frame straight to the
sockets of the connections whose outlet is armed (nothing queued; one
``send()`` each, in one call); what a socket does not take goes to its
transport, in order, and every rule of broadcast stays: slow peers skipped,
closed ones skipped, TLS never written around. Every test runs on both
``send_ready`` implementations
and (tests/asyncio/conftest.py) on asyncio's loop and uvloop.
"""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from aio_support import HOST, TIMEOUT, Accepted, eventually, port_of, serving, tls_contexts, url, within

from ws4py import fanout
from ws4py.async_websocket import WebSocket, WebSocketProtocol
from ws4py.asyncio import Connection, Skipped, broadcast, connect
from ws4py.asyncio.broadcast import STRAIGHT_PER_ROUND
from ws4py.asyncio.writing import CORK_LIMIT
from ws4py.messaging import Message

pytestmark = pytest.mark.usefixtures("each_send_ready")

KIB = 1024


async def idle(conn: Connection) -> None:
    await conn.wait_closed()


# -- plain sockets ------------------------------------------------------------------------


@pytest.fixture
def tcp_pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    """Three connected TCP pairs on 127.0.0.1: (sender, non-blocking; receiver, blocking with a timeout)."""
    pairs = []
    with socket.create_server((HOST, 0)) as listener:
        for _ in range(3):
            sender = socket.create_connection(listener.getsockname())
            receiver, _ = listener.accept()
            sender.setblocking(False)
            receiver.settimeout(TIMEOUT)
            pairs.append((sender, receiver))
    try:
        yield pairs
    finally:
        for sender, receiver in pairs:
            sender.close()
            receiver.close()


def received(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        assert chunk, "the sender closed"
        data += chunk
    return data


def readable(sock: socket.socket, timeout: float) -> bool:
    return bool(select.select([sock], [], [], timeout)[0])


def outlets_of(*socks: socket.socket) -> list[fanout.OutletLike]:
    return [fanout.Outlet(sock.fileno()) for sock in socks]


def test_send_ready_sends_the_data_to_every_armed_outlet(tcp_pairs: list[tuple[socket.socket, socket.socket]]) -> None:
    outlets = outlets_of(*(s for s, _ in tcp_pairs))
    assert fanout.send_ready(outlets, b"\x81\x05hello") == []
    for _, receiver in tcp_pairs:
        assert received(receiver, 7) == b"\x81\x05hello"
    assert [o.fd for o in outlets] == [s.fileno() for s, _ in tcp_pairs]  # still armed


def test_send_ready_skips_an_outlet_that_is_not_armed_and_reports_it(
    tcp_pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    (first, first_peer), (second, second_peer), _ = tcp_pairs
    outlets = outlets_of(first, second)
    outlets[0].fd = -1
    assert fanout.send_ready(outlets, b"\x81\x00") == [(0, -1)]
    assert received(second_peer, 2) == b"\x81\x00"
    assert not readable(first_peer, 0.2)


def test_send_ready_reports_what_a_socket_did_not_take_disarms_it_and_sends_no_more_to_it(
    tcp_pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    (short, short_peer), (ok, ok_peer), _ = tcp_pairs
    short.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * KIB)
    big = bytes(range(256)) * 4 * KIB  # 1 MiB: more than the kernel takes at once
    short_outlet, ok_outlet = outlets_of(short, ok)
    report = dict(fanout.send_ready([short_outlet, short_outlet, ok_outlet], big))
    took = report[0]
    assert 0 < took < len(big)  # a partial send...
    assert short_outlet.fd == -1  # ...disarms the outlet...
    assert report[1] == -1  # ...and nothing more goes to it in the same call: its bytes stay in order
    ok_took = report.get(2, len(big))  # the other socket took what its own buffers could
    assert received(short_peer, took) == big[:took]
    assert not readable(short_peer, 0.2)  # the second listing sent nothing
    assert received(ok_peer, ok_took) == big[:ok_took]


def test_send_ready_reports_a_broken_socket_as_taking_nothing_and_disarms_it(
    tcp_pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    (broken, _), (ok, ok_peer), _ = tcp_pairs
    broken.shutdown(socket.SHUT_WR)  # send() now fails with EPIPE
    outlets = outlets_of(broken, ok)
    assert fanout.send_ready(outlets, b"\x81\x00") == [(0, 0)]
    assert outlets[0].fd == -1
    assert received(ok_peer, 2) == b"\x81\x00"


def test_send_ready_takes_either_outlet_type(tcp_pairs: list[tuple[socket.socket, socket.socket]]) -> None:
    (sender, receiver), _, _ = tcp_pairs
    for outlet_type in {fanout.PythonOutlet, fanout.Outlet}:
        assert fanout.send_ready([outlet_type(sender.fileno())], b"\x81\x00") == []
        assert received(receiver, 2) == b"\x81\x00"


class NotAnOutlet:
    def __init__(self, fd: object) -> None:
        self.fd = fd


@pytest.mark.parametrize("bad", [NotAnOutlet("3"), NotAnOutlet(2.0), object(), 3])
def test_send_ready_refuses_what_is_not_an_outlet_before_sending_anything(
    tcp_pairs: list[tuple[socket.socket, socket.socket]], bad: object
) -> None:
    (sender, receiver), _, _ = tcp_pairs
    with pytest.raises((TypeError, AttributeError)):
        fanout.send_ready([fanout.Outlet(sender.fileno()), bad], b"\x81\x00")  # type: ignore[list-item]
    receiver.setblocking(False)
    with pytest.raises(BlockingIOError):
        receiver.recv(16)  # nothing was sent to the valid one either


def test_owe_marks_the_ready_outlets_only_and_reports_the_others(
    tcp_pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    outlets = outlets_of(*(s for s, _ in tcp_pairs))
    outlets[1].fd = -1
    earlier = fanout.Owed()
    outlets[2].owed = earlier
    owed = fanout.Owed()
    assert fanout.owe(outlets, owed) == [1, 2]
    assert [o.owed for o in outlets] == [owed, None, earlier]
    # An outlet that owes is not ready: send_ready leaves it alone (what it owes goes first).
    assert fanout.send_ready(outlets[:1], b"\x81\x00") == [(0, -1)]
    assert not readable(tcp_pairs[0][1], 0.1)


def test_send_owed_sends_to_the_outlets_that_still_owe_and_leaves_out_those_that_paid(
    tcp_pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    (first, first_peer), (second, second_peer), (third, third_peer) = tcp_pairs
    outlets = outlets_of(first, second, third)
    owed = fanout.Owed()
    assert fanout.owe(outlets, owed) == []
    outlets[1].owed = None  # its owner wrote the frames itself meanwhile
    assert fanout.send_owed(outlets, owed, b"\x81\x01a\x81\x01b") == []
    assert received(first_peer, 6) == received(third_peer, 6) == b"\x81\x01a\x81\x01b"
    assert not readable(second_peer, 0.1)
    assert [o.owed for o in outlets] == [None, None, None]
    assert [o.fd for o in outlets] == [first.fileno(), second.fileno(), third.fileno()]  # still armed


def test_send_owed_reports_a_short_send_and_disarms_that_outlet(
    tcp_pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    (short, short_peer), (ok, _), _ = tcp_pairs
    short.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * KIB)
    big = bytes(range(256)) * 4 * KIB
    outlets = outlets_of(short, ok)
    owed = fanout.Owed()
    fanout.owe(outlets, owed)
    report = dict(fanout.send_owed(outlets, owed, big))
    assert 0 < report[0] < len(big)
    assert outlets[0].fd == -1 and outlets[0].owed is None
    assert received(short_peer, report[0]) == big[: report[0]]


def test_owe_and_send_owed_refuse_none() -> None:
    with pytest.raises(ValueError, match="None"):
        fanout.owe([fanout.Outlet(-1)], None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="None"):
        fanout.send_owed([fanout.Outlet(-1)], None, b"")  # type: ignore[arg-type]


def test_use_refuses_an_unknown_implementation() -> None:
    with pytest.raises(ValueError, match="available"):
        fanout.use("fortran")


# -- broadcast's direct path ---------------------------------------------------------------


def blocking_client(port: int, rcvbuf: int | None = None) -> socket.socket:
    """A WebSocket client on a plain blocking socket (run it in a thread): the test reads its frames itself."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(TIMEOUT)
    sock.connect((HOST, port))
    sock.sendall(
        f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while not head.endswith(b"\r\n\r\n"):  # byte by byte: no frame byte is consumed
        byte = sock.recv(1)
        assert byte, "the server closed during the handshake"
        head += byte
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """One unmasked frame from the server: (opcode, payload)."""
    first, second = received(sock, 2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", received(sock, 2))[0]
    elif length == 127:
        length = struct.unpack("!Q", received(sock, 8))[0]
    return first & 0x0F, received(sock, length)


def read_frames(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    return [read_frame(sock) for _ in range(count)]


async def test_the_first_broadcasts_of_a_round_are_on_the_wire_at_once_and_the_next_wait_for_the_round() -> None:
    accepted = Accepted(idle)
    async with serving(accepted, compression=None) as server:
        client = await asyncio.to_thread(blocking_client, port_of(server))
        try:
            conn = await accepted.next()
            assert conn.arm_outlet()  # a plain socket transport, asyncio's or uvloop's
            straight = [f"now {i}" for i in range(STRAIGHT_PER_ROUND)]
            for message in straight:
                assert broadcast([conn], message) == []
                # The loop has not run since: only a send() from broadcast itself can have put it there.
                assert read_frame(client) == (0x1, message.encode())
            assert broadcast([conn], "after them") == []
            assert broadcast([conn], "and after that") == []
            assert not readable(client, 0.2)  # corked: they leave together when the round ends
            await asyncio.sleep(0)
            frames = await asyncio.to_thread(lambda: [read_frame(client) for _ in range(2)])
            assert frames == [(0x1, b"after them"), (0x1, b"and after that")]
            assert conn.outlet.fd >= 0  # armed again for the next round
        finally:
            client.close()


@pytest.mark.async_timeout(30)
@pytest.mark.parametrize("per_round", [1, STRAIGHT_PER_ROUND + 2], ids=["alone", "more-than-go-straight"])
async def test_order_is_kept_when_a_send_comes_short_and_a_slow_peer_is_then_skipped(per_round: int) -> None:
    """One message a round: each goes straight to the socket. More: the first STRAIGHT_PER_ROUND
    straight, the two after them corked and sent joined when the round ends (from C too). Any may
    come short."""
    accepted = Accepted(idle)
    limit = 256 * KIB
    async with serving(accepted, compression=None, write_limit=limit) as server:
        client = await asyncio.to_thread(blocking_client, port_of(server), 16 * KIB)  # reads nothing for now
        try:
            conn = await accepted.next()
            transport = conn.transport
            assert transport is not None
            transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * KIB)
            size = 10_000  # a binary frame of 10,004 bytes
            sent: list[bytes] = []
            partial = None  # (message number, bytes the transport kept of its frame)
            skipped: list[Skipped] = []
            while not skipped and len(sent) < 2_000:
                for turn in range(per_round):
                    before = transport.get_write_buffer_size()
                    number = len(sent)
                    message = number.to_bytes(4, "big") + bytes([number % 251]) * (size - 4)
                    skipped = broadcast([conn], message)
                    if skipped:
                        break
                    sent.append(message)
                    kept = transport.get_write_buffer_size()
                    if turn < STRAIGHT_PER_ROUND and partial is None and before == 0 and 0 < kept < size + 4:
                        partial = (number, kept)  # the socket took a part; the transport holds the rest
                await asyncio.sleep(0)  # the round ends: the next broadcast may go straight again
            assert partial is not None, "no direct send came short"
            assert partial[0] + 1 < len(sent), "nothing was broadcast after the short send"
            assert skipped == [Skipped(conn, "slow")]
            held = transport.get_write_buffer_size()
            assert held <= limit + per_round * (size + 4)  # bounded: past write_limit, nothing more is queued
            assert broadcast([conn], b"more") == [Skipped(conn, "slow")]
            await asyncio.sleep(0)
            assert transport.get_write_buffer_size() == held
            got = await asyncio.to_thread(lambda: [read_frame(client) for _ in sent])
            assert got == [(0x2, message) for message in sent]  # every byte, in order
        finally:
            client.close()


async def test_a_peer_that_reset_before_the_server_noticed_is_closed_and_the_others_still_receive() -> None:
    accepted = Accepted(idle)
    async with serving(accepted, compression=None) as server:
        gone_client = await asyncio.to_thread(blocking_client, port_of(server))
        gone = await accepted.next()
        client = await asyncio.to_thread(blocking_client, port_of(server))
        other = await accepted.next()
        try:
            # SO_LINGER 0: close() sends a reset at once; the server's loop does not run before the broadcast.
            gone_client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            gone_client.close()
            broadcast([gone, other], "still here")  # may or may not see the reset yet: either way, no error
            broadcast([gone, other], "and again")
            assert read_frame(client) == (0x1, b"still here")
            await within(gone.wait_closed())
            assert broadcast([gone, other], "after") == [Skipped(gone, "closed")]
            frames = await asyncio.to_thread(lambda: [read_frame(client) for _ in range(2)])
            assert frames == [(0x1, b"and again"), (0x1, b"after")]
        finally:
            client.close()


# -- the outlet: armed only while nothing would go before a straight frame ----------------------------


@contextlib.asynccontextmanager
async def plain_clients(count: int) -> AsyncIterator[list[tuple[Connection, socket.socket]]]:
    """``count`` server connections (no compression), each with its blocking client socket (read by the test)."""
    accepted = Accepted(idle)
    async with serving(accepted, compression=None) as server:
        clients: list[socket.socket] = []
        try:
            pairs = []
            for _ in range(count):
                clients.append(await asyncio.to_thread(blocking_client, port_of(server)))
                pairs.append((await accepted.next(), clients[-1]))
            yield pairs
        finally:
            for client in clients:
                client.close()


OUTLET_DISARMERS: dict[str, Callable[[Connection], object]] = {
    "write_frame": lambda conn: conn.write_frame(b"\x81\x01a"),
    "write_frame_soon": lambda conn: conn.write_frame_soon(b"\x81\x01a"),
    "cork_frame": lambda conn: conn.cork_frame(b"\x81\x01a"),
    "write_large_frame": lambda conn: conn.write_large_frame(b"\x82\x03", b"abc"),
    "write_rest": lambda conn: conn.write_rest(b"\x81\x01a", 1),
    "send": lambda conn: conn.send("own"),
    "ping": lambda conn: conn.ping(),
    "start_close": lambda conn: conn.start_close(1000),
    "abort": lambda conn: conn.abort(),
}


@pytest.mark.parametrize("disarm", list(OUTLET_DISARMERS))
async def test_anything_the_connection_writes_or_corks_disarms_its_outlet(disarm: str) -> None:
    async with plain_clients(1) as [(conn, _)]:
        assert conn.arm_outlet()
        assert conn.outlet.fd == conn.transport.get_extra_info("socket").fileno()  # type: ignore[union-attr]
        done = OUTLET_DISARMERS[disarm](conn)
        if asyncio.iscoroutine(done):
            await done
        assert conn.outlet.fd == -1


async def test_a_message_arriving_disarms_the_outlet() -> None:
    async with plain_clients(1) as [(conn, client)]:  # the handler reads nothing: the message only arrives
        assert conn.arm_outlet()
        client.sendall(b"\x81\x83abcd" + bytes(b ^ k for b, k in zip(b"hey", b"abc", strict=True)))  # masked "hey"
        await eventually(lambda: conn.outlet.fd == -1, what="the outlet disarmed")


async def test_a_peer_that_resets_disarms_the_outlet_before_its_socket_is_closed() -> None:
    accepted = Accepted(idle)
    async with serving(accepted, compression=None) as server:
        client = await asyncio.to_thread(blocking_client, port_of(server))
        conn = await accepted.next()
        assert conn.arm_outlet()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client.close()  # a reset: no frame, no EOF, only the transport's error and connection_lost
        await within(conn.wait_closed())
        # Its descriptor number is free for the next socket: a fan-out must not send to it.
        assert conn.outlet.fd == -1
        assert broadcast([conn], "after") == [Skipped(conn, "closed")]


async def test_broadcasts_to_a_tuple_in_one_round_reach_each_client_together_when_the_round_ends() -> None:
    async with plain_clients(3) as pairs:
        conns = tuple(conn for conn, _ in pairs)
        for conn in conns:
            assert conn.arm_outlet()
        for i in range(5):
            assert broadcast(conns, f"m{i}") == []
        assert all(conn.outlet.owed is not None for conn in conns)
        assert not any(readable(client, 0.1) for _, client in pairs)  # owed until the round ends
        await asyncio.sleep(0)
        for _, client in pairs:
            got = await asyncio.to_thread(read_frames, client, 5)
            assert got == [(0x1, f"m{i}".encode()) for i in range(5)]
        assert all(conn.outlet.owed is None and conn.outlet.fd >= 0 for conn in conns)  # armed again


async def test_a_connection_that_writes_before_the_round_ends_writes_what_it_owes_first() -> None:
    async with plain_clients(2) as [(writer, writer_client), (other, other_client)]:
        conns = (writer, other)
        assert broadcast(conns, "first") == []
        await asyncio.sleep(0)  # armed by the round
        assert broadcast(conns, "owed") == []
        await writer.send("its own")  # pays "owed", then writes this
        assert broadcast(conns, "after it") == []  # the writer takes this one on its own, in order
        await asyncio.sleep(0)
        got = await asyncio.to_thread(lambda: [read_frame(writer_client) for _ in range(4)])
        assert got == [(0x1, b"first"), (0x1, b"owed"), (0x1, b"its own"), (0x1, b"after it")]
        got = await asyncio.to_thread(lambda: [read_frame(other_client) for _ in range(3)])
        assert got == [(0x1, b"first"), (0x1, b"owed"), (0x1, b"after it")]


async def test_a_connection_closing_before_the_round_ends_sends_what_it_owes_before_its_close_frame() -> None:
    async with plain_clients(1) as [(conn, client)]:
        conns = (conn,)
        assert conn.arm_outlet()
        assert broadcast(conns, "owed") == []
        conn.start_close(1001, "going away")
        assert broadcast(conns, "too late") == [Skipped(conn, "closed")]
        got = await asyncio.to_thread(lambda: [read_frame(client) for _ in range(2)])
        assert got == [(0x1, b"owed"), (0x8, struct.pack("!H", 1001) + b"going away")]


async def test_a_tuple_broadcast_many_times_in_one_round_sends_before_the_round_ends_when_the_tail_is_full() -> None:
    async with plain_clients(1) as [(conn, client)]:
        conns = (conn,)
        assert conn.arm_outlet()
        count = CORK_LIMIT + 3
        for i in range(count):
            assert broadcast(conns, f"m{i}") == []
        # The first CORK_LIMIT left without waiting for the round: the loop has not run since.
        first = [read_frame(client) for _ in range(CORK_LIMIT)]
        assert first == [(0x1, f"m{i}".encode()) for i in range(CORK_LIMIT)]
        await asyncio.sleep(0)
        rest = await asyncio.to_thread(lambda: [read_frame(client) for _ in range(3)])
        assert rest == [(0x1, f"m{i}".encode()) for i in range(CORK_LIMIT, count)]


async def test_a_callback_that_sends_to_another_connection_and_then_broadcasts_keeps_the_order() -> None:
    """The second connection's outlet was armed; the callback's send corks it, so the broadcast after
    that send waits behind it instead of going straight to the socket."""
    loop = asyncio.get_running_loop()
    protocols: list[WebSocketProtocol] = []

    class Relay(WebSocket):
        def received_message(self, message: Message) -> None:
            other = protocols[1].ws
            assert other is not None
            other.send("from a callback")
            assert broadcast([other], "broadcast after it") == []

    def factory() -> WebSocketProtocol:
        protocols.append(WebSocketProtocol(Relay, compression=None))
        return protocols[-1]

    server = await loop.create_server(factory, HOST, 0)
    try:
        sender = await within(connect(url(server)))
        receiver = await within(connect(url(server)))
        await eventually(lambda: len(protocols) == 2 and all(p.ws is not None for p in protocols))
        assert broadcast([protocols[1]], "arms the outlet") == []
        assert await within(receiver.recv()) == "arms the outlet"
        assert protocols[1].outlet.fd >= 0
        await sender.send("go")
        assert await within(receiver.recv()) == "from a callback"
        assert await within(receiver.recv()) == "broadcast after it"
        await close_each(sender, receiver)
    finally:
        server.close()
        await server.wait_closed()


async def close_each(*clients: Connection) -> None:
    await within(asyncio.gather(*(client.close() for client in clients)))


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context) with a certificate for 127.0.0.1 from a test CA."""
    return tls_contexts("localhost", HOST)


async def test_a_tls_connection_is_never_written_around_its_transport(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, client_context = tls
    accepted = Accepted(idle)
    async with serving(accepted, compression=None, ssl=server_context) as server:
        tls_client = await within(connect(url(server).replace("ws://", "wss://"), ssl=client_context))
        tls_conn = await accepted.next()
        plain_accepted = Accepted(idle)
        async with serving(plain_accepted, compression=None) as plain_server:
            plain_client = await within(connect(url(plain_server)))
            plain_conn = await plain_accepted.next()
            try:
                assert not tls_conn.arm_outlet()
                assert broadcast([tls_conn, plain_conn], "to both") == []
                assert await within(tls_client.recv()) == "to both"
                assert await within(plain_client.recv()) == "to both"
            finally:
                await within(asyncio.gather(tls_client.close(), plain_client.close()))
