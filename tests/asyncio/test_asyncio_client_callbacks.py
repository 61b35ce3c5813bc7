"""The callbacks client (``ws4py.async_websocket.connect``, ``WebSocketClientProtocol``).

- Its callbacks behave exactly as the server side's (``WebSocketProtocol``):
  each scenario is played by a raw peer against a callbacks server, then
  against the callbacks client, and both record the same calls (order, close
  codes, ``unhandled_error``) while the peer sees the same frames.
- Faults of its own: a server that stops reading or never reads, floods
  pings, or shows a certificate that fails verification.
- Corking: what its callbacks send in one read goes out in one write, what
  a task sends in one write when it yields (or every ``CORK_LIMIT`` frames).
- Its API: ``connect`` returns the handler, ``loop.create_connection`` with
  a ``ClientHandshake``, arguments refused with ``ValueError``.

What it shares with ``ws4py.asyncio.connect`` (options, refusals, timeouts,
proxies, unix, TLS) is in test_asyncio_client.py (``open_client``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, ClassVar

import pytest
from aio_support import HOST, RawPeer, RawServer, eventually, port_of, raw_client, serving, tls_contexts, within

from ws4py.async_websocket import (
    EchoWebSocket,
    WebSocket,
    WebSocketClientProtocol,
    WebSocketProtocol,
    connect,
)
from ws4py.asyncio.endpoint import Options
from ws4py.asyncio.writing import CORK_LIMIT
from ws4py.exc import StreamClosed
from ws4py.messaging import Message, PongControlMessage
from ws4py.protocol import (
    BinaryReceived,
    ClientHandshake,
    CloseReceived,
    Event,
    PingReceived,
    PongReceived,
    TextReceived,
)

KIB = 1024

# -- recording the callbacks -----------------------------------------------------------------


class Recording(WebSocket):
    """Records every callback as plain tuples (a message as its kind and data), to compare sides."""

    instances: ClassVar[list[Recording]] = []

    def __init__(self, proto: Any) -> None:
        super().__init__(proto)
        self.calls: list[tuple[Any, ...]] = []
        self.ended = asyncio.get_running_loop().create_future()
        type(self).instances.append(self)

    def opened(self) -> None:
        self.calls.append(("opened",))

    def received_message(self, message: Message) -> None:
        self.calls.append(("message", "binary" if message.is_binary else "text", bytes(message.data)))

    def ponged(self, pong: PongControlMessage) -> None:
        self.calls.append(("ponged", bytes(pong.data)))

    def closed(self, code: int, reason: str | None = None) -> None:
        self.calls.append(("closed", code, str(reason)))
        self.ended.set_result(None)

    def unhandled_error(self, error: BaseException) -> None:
        self.calls.append(("error", type(error).__name__))


class RaisesInReceived(Recording):
    def received_message(self, message: Message) -> None:
        super().received_message(message)
        raise RuntimeError("a bug in received_message")


class RaisesInOpened(Recording):
    def opened(self) -> None:
        super().opened()
        raise RuntimeError("a bug in opened")


class ClosesFromACallback(Recording):
    def received_message(self, message: Message) -> None:
        super().received_message(message)
        self.send("a")
        self.send(b"b", binary=True)
        self.close(1001, "going away")


def fresh(cls: type[Recording]) -> type[Recording]:
    """A subclass of ``cls`` with its own ``instances``."""
    return type(cls.__name__, (cls,), {"instances": []})


# -- one side or the other, with a raw peer ----------------------------------------------------

SIDES = ["server", "client"]


@contextlib.asynccontextmanager
async def callbacks_with_raw_peer(
    side: str, handler_cls: type[Recording], max_size: int | None = None
) -> AsyncIterator[tuple[Recording, RawPeer]]:
    """The callbacks websocket of ``side`` (``"server"``: ``WebSocketProtocol``; ``"client"``: ``connect``)
    and the raw peer at the other end, without compression, keepalive off, close bounded."""
    handler_cls = fresh(handler_cls)
    options = Options(max_size=max_size, ping_interval=None, close_timeout=1.0)
    if side == "server":
        loop = asyncio.get_running_loop()
        protocols: list[WebSocketProtocol] = []

        def factory() -> WebSocketProtocol:
            protocols.append(WebSocketProtocol(handler_cls, compression=None, options=options))
            return protocols[-1]

        server = await loop.create_server(factory, HOST, 0)
        peer = await raw_client(port_of(server))
        try:
            await eventually(lambda: bool(handler_cls.instances), what="the server's websocket opened")
            yield handler_cls.instances[0], peer
        finally:
            drop(peer)
            server.close()
            for proto in protocols:
                proto.abort()
            await within(server.wait_closed())
            await within(asyncio.gather(*(proto.wait_closed() for proto in protocols)))
        return
    async with RawServer() as raw:
        ws = await within(
            connect(
                f"ws://{HOST}:{raw.port}/",
                handler_cls,
                compression=None,
                max_size=max_size,
                ping_interval=None,
                close_timeout=1.0,
            )
        )
        peer = await raw.next()
        try:
            yield ws, peer
        finally:
            drop(peer)
            ws.terminate()
            await within(ws.wait_closed())


def drop(peer: RawPeer) -> None:
    """Reset the peer's TCP connection unless it is already gone."""
    if not peer.writer.is_closing():
        peer.abort()


def frame_from(peer: RawPeer, opcode: int, payload: bytes) -> bytes:
    """A frame of any ``opcode`` (even a reserved one) and payload, masked (zero mask) when ``peer`` is a client."""
    length = len(payload)
    masked = 0x80 if peer.core.is_client else 0
    if length < 126:
        header = bytes([0x80 | opcode, masked | length])
    else:
        header = bytes([0x80 | opcode, masked | 126]) + struct.pack("!H", length)
    return header + (b"\0\0\0\0" if masked else b"") + payload


async def answer_close(peer: RawPeer) -> list[Event]:
    """The peer's events up to the websocket's close, then the peer's answer to it."""
    events = await peer.until_close()
    await peer.send(peer.core.data_to_send())
    return events


async def close_client(ws: WebSocket, peer: RawPeer) -> None:
    """The client closes; the raw server answers, then ends TCP as a server does."""
    ws.close()
    await answer_close(peer)
    peer.writer.close()
    await within(ws.wait_closed())


# The scenarios: what the peer does to the websocket; each returns what the peer saw.


async def messages_ping_pong_then_the_peer_closes(ws: Recording, peer: RawPeer) -> list[Event]:
    await peer.send(peer.core.send_text("text") + peer.core.send_binary(b"\x00bin") + peer.core.send_ping(b"x"))
    await eventually(lambda: len(ws.calls) == 3, what="two messages")
    ws.ping("p")
    seen = [await peer.next_event(), await peer.next_event()]
    await peer.send(peer.core.data_to_send())  # the pong to "p"
    await eventually(lambda: len(ws.calls) == 4, what="ponged")
    await peer.send(peer.core.send_close(4000, "bye"))
    return seen + await peer.until_close()


async def invalid_utf8(ws: Recording, peer: RawPeer) -> list[Event]:
    await peer.send(peer.core.send_text("fine") + frame_from(peer, 0x1, b"\xc3\x28"))
    return await answer_close(peer)


async def a_reserved_opcode(ws: Recording, peer: RawPeer) -> list[Event]:
    await peer.send(frame_from(peer, 0x3, b""))
    return await answer_close(peer)


async def a_message_over_max_size(ws: Recording, peer: RawPeer) -> list[Event]:
    await peer.send(peer.core.send_binary(bytes(1000)) + peer.core.send_binary(bytes(1001)))
    return await answer_close(peer)


async def a_message_to_a_callback(ws: Recording, peer: RawPeer) -> list[Event]:
    await peer.send(peer.core.send_text("go"))
    return await answer_close(peer)


async def nothing_but_the_close(ws: Recording, peer: RawPeer) -> list[Event]:
    return await answer_close(peer)


async def the_peer_resets_mid_message(ws: Recording, peer: RawPeer) -> list[Event]:
    await peer.send(peer.core.send_text("whole") + peer.core.send_binary(bytes(10 * KIB))[: 5 * KIB])
    await eventually(lambda: len(ws.calls) == 2, what="the whole message")
    peer.abort()
    return []


async def the_peer_ends_tcp_mid_message(ws: Recording, peer: RawPeer) -> list[Event]:
    await peer.send(peer.core.send_binary(bytes(10 * KIB))[: 5 * KIB])
    peer.writer.write_eof()
    return []


Scenario = Callable[[Recording, RawPeer], Awaitable[list[Event]]]

#: (scenario, handler class, max_size, the calls expected on either side, the peer's last event).
SCENARIOS: dict[str, tuple[Scenario, type[Recording], int | None, list[tuple[Any, ...]] | None, Event | None]] = {
    "messages-pings-peer-closes": (
        messages_ping_pong_then_the_peer_closes,
        Recording,
        None,
        [
            ("opened",),
            ("message", "text", b"text"),
            ("message", "binary", b"\x00bin"),
            ("ponged", b"p"),
            ("closed", 4000, "bye"),
        ],
        CloseReceived(4000, ""),  # the answer echoes the code only
    ),
    "invalid-utf8-1007": (
        invalid_utf8,
        Recording,
        None,
        [("opened",), ("message", "text", b"fine"), ("closed", 1007, "invalid UTF-8 in a text message")],
        CloseReceived(1007, "invalid UTF-8 in a text message"),
    ),
    "reserved-opcode-1002": (a_reserved_opcode, Recording, None, None, None),
    "max-size-1009": (a_message_over_max_size, Recording, 1000, None, None),
    "raises-in-received-message-1011": (
        a_message_to_a_callback,
        RaisesInReceived,
        None,
        [("opened",), ("message", "text", b"go"), ("error", "RuntimeError"), ("closed", 1011, "")],
        CloseReceived(1011, "internal error"),
    ),
    "raises-in-opened-1011": (
        nothing_but_the_close,
        RaisesInOpened,
        None,
        [("opened",), ("error", "RuntimeError"), ("closed", 1011, "")],
        CloseReceived(1011, "internal error"),
    ),
    "closes-from-a-callback": (
        a_message_to_a_callback,
        ClosesFromACallback,
        None,
        [("opened",), ("message", "text", b"go"), ("closed", 1001, "")],
        CloseReceived(1001, "going away"),
    ),
    "peer-resets-1006": (the_peer_resets_mid_message, Recording, None, None, None),
    "peer-fin-mid-message-1006": (the_peer_ends_tcp_mid_message, Recording, None, None, None),
}


async def play(side: str, name: str) -> tuple[list[tuple[Any, ...]], list[Event]]:
    """Play scenario ``name`` against the callbacks of ``side``: the calls recorded and what the peer saw."""
    scenario, handler_cls, max_size, _, _ = SCENARIOS[name]
    async with callbacks_with_raw_peer(side, handler_cls, max_size) as (ws, peer):
        seen = await scenario(ws, peer)
        peer.writer.close()  # TCP ends once the closing handshake is done, as a server ends it
        await within(ws.ended)
        await within(ws.wait_closed())
        assert ws.terminated
    return ws.calls, seen


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_the_client_callbacks_are_called_as_the_server_callbacks_are(name: str) -> None:
    server_calls, server_seen = await play("server", name)
    client_calls, client_seen = await play("client", name)
    assert client_calls == server_calls
    assert client_seen == server_seen
    _, _, _, expected, last = SCENARIOS[name]
    if expected is not None:
        assert client_calls == expected
    if last is not None:
        assert client_seen[-1] == last
    # Every scenario ends with closed(), called once, and nothing after it.
    assert [call[0] for call in client_calls].count("closed") == 1 and client_calls[-1][0] == "closed"


async def test_the_client_ends_each_fault_with_its_close_code_and_answers_pings_before_its_own() -> None:
    # The codes of the scenarios without a fixed list above, on the client side.
    for name, code in (("reserved-opcode-1002", 1002), ("max-size-1009", 1009)):
        calls, seen = await play("client", name)
        assert calls[-1][:2] == ("closed", code)
        assert isinstance(seen[-1], CloseReceived) and seen[-1].code == code
    for name in ("peer-resets-1006", "peer-fin-mid-message-1006"):
        calls, _ = await play("client", name)
        assert calls[-1] == ("closed", 1006, "Going away")
    _, seen = await play("client", "messages-pings-peer-closes")
    assert isinstance(seen[0], PongReceived) and seen[0].payload == b"x"
    assert seen[1] == PingReceived(b"p")


# -- faults -------------------------------------------------------------------------------------


def small_buffers(ws: WebSocket, peer: RawPeer) -> None:
    """A small kernel window between the two: what the peer does not read stays in ws4py's buffer."""
    ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * KIB)
    peer.writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * KIB)


async def produce(ws: WebSocket, sent: list[int], size: int) -> None:
    """Send numbered binary messages of ``size`` bytes, each followed by ``await ws.drain()``, until closed."""
    with contextlib.suppress(StreamClosed):
        while True:
            ws.send(struct.pack("!I", len(sent)) + bytes(size - 4), binary=True)
            sent.append(len(sent))
            await ws.drain()


async def stalled(progress: list[int], settle: float = 0.1) -> None:
    """Until ``progress`` stops growing for ``settle`` seconds."""
    while True:
        count = len(progress)
        await asyncio.sleep(settle)
        if len(progress) == count:
            return


async def test_drain_waits_for_a_server_that_stops_reading_and_nothing_is_lost_when_it_reads_again() -> None:
    write_limit, size = 32 * KIB, 8 * KIB
    async with RawServer() as raw:
        ws = await within(connect(f"ws://{HOST}:{raw.port}/", Recording, compression=None, write_limit=write_limit))
        peer = await raw.next()
        small_buffers(ws, peer)
        sent: list[int] = []
        producer = asyncio.ensure_future(produce(ws, sent, size))
        try:
            transport = ws.proto.transport
            assert transport is not None
            await eventually(lambda: transport.get_write_buffer_size() > write_limit, what="over write_limit")
            await stalled(sent)
            assert not producer.done()  # waiting in drain, not failing
            assert transport.get_write_buffer_size() <= write_limit + size + 14
        finally:
            producer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await producer
        # The server reads again: everything sent arrives, whole and in order.
        for i in range(len(sent)):
            event = await peer.next_event()
            assert event == BinaryReceived(struct.pack("!I", i) + bytes(size - 4))
        await close_client(ws, peer)


async def test_close_gives_up_after_close_timeout_on_a_server_that_never_reads() -> None:
    async with RawServer() as raw:
        ws = await within(
            connect(f"ws://{HOST}:{raw.port}/", Recording, compression=None, close_timeout=0.3, write_limit=16 * KIB)
        )
        peer = await raw.next()
        small_buffers(ws, peer)
        sent: list[int] = []
        producer = asyncio.ensure_future(produce(ws, sent, 64 * KIB))
        await stalled(sent)
        ws.close(1000, "bye")  # the close frame is stuck behind what the server never reads
        await within(ws.wait_closed(), 5.0)
        await within(producer)  # drain() returns once the connection is gone; send then raises
        assert ws.calls[-1] == ("closed", 1006, "Going away")
        peer.abort()


async def test_a_server_that_floods_pings_and_never_reads_cannot_grow_the_clients_buffer() -> None:
    write_limit = 32 * KIB
    async with RawServer() as raw:
        ws = await within(
            connect(
                f"ws://{HOST}:{raw.port}/", Recording, compression=None, ping_interval=None, write_limit=write_limit
            )
        )
        peer = await raw.next()
        small_buffers(ws, peer)
        transport = ws.proto.transport
        assert transport is not None
        sizes: list[int] = []
        try:
            batch = peer.core.send_ping(b"p" * 125, unique=False) * 8
            for _ in range(2500):  # 20,000 pongs of 127 bytes: far more than any kernel buffer
                peer.writer.write(batch)
                sizes.append(transport.get_write_buffer_size())
                await asyncio.sleep(0)
            await stalled(sizes, 0.05)
            # At most the write that crossed write_limit: the 16 pongs the core may owe per read.
            assert max(sizes) <= write_limit + 16 * 127 + 4 * KIB
        finally:
            peer.abort()
            await within(ws.wait_closed())


class Counts(WebSocket):
    def opened(self) -> None:
        self.received = 0

    def received_message(self, message: Message) -> None:
        self.received += 1


class SmallBuffersEcho(EchoWebSocket):
    def opened(self) -> None:
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            self.sock.setsockopt(socket.SOL_SOCKET, option, 16 * KIB)


async def test_a_burst_to_the_callbacks_echo_server_does_not_deadlock() -> None:
    # The callbacks server stops reading while its echoes are not read; a client that
    # stopped reading too while its burst is not read would wait for it forever.
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: WebSocketProtocol(SmallBuffersEcho, compression=None), HOST, 0)
    try:
        ws = await within(connect(f"ws://{HOST}:{port_of(server)}/", Counts, compression=None))
        for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
            ws.sock.setsockopt(socket.SOL_SOCKET, option, 16 * KIB)
        count = 64
        for _ in range(count):  # 4 MiB, far more than the kernel buffers both ways
            ws.send(bytes(64 * KIB), binary=True)
        await within(ws.drain())
        await eventually(lambda: ws.received == count, what="every echo")
        ws.close()
        await within(ws.wait_closed())
    finally:
        server.close()
        await within(server.wait_closed())


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context): a certificate for ``localhost`` from a test CA."""
    return tls_contexts("localhost")


async def test_a_certificate_that_fails_verification_raises_and_calls_no_callback(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, _ = tls
    handler_cls = fresh(Recording)
    async with serving(ssl=server_context, close_timeout=0.2) as server:
        try:
            with pytest.raises(ssl.SSLCertVerificationError):
                # The system trust store does not know the test CA.
                await within(connect(f"wss://localhost:{port_of(server)}/", handler_cls))
        finally:
            server.close()
            server.connections.clear()  # the failed TLS handshake's connection (see test_asyncio_server.py)
    assert handler_cls.instances == []


# -- corking ---------------------------------------------------------------------------------


class Answers(Recording):
    def received_message(self, message: Message) -> None:
        super().received_message(message)
        self.send(f"answer to {message}")


def data_segments_sent(sock: socket.socket) -> int:
    """The data segments the kernel sent on ``sock`` (``tcpi_data_segs_out`` of ``TCP_INFO``, Linux)."""
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    segments: int = struct.unpack_from("I", info, 156)[0]
    return segments


async def test_what_the_callbacks_send_during_one_read_goes_out_in_one_write_in_order() -> None:
    async with RawServer() as raw:
        ws = await within(connect(f"ws://{HOST}:{raw.port}/", Answers, compression=None))
        peer = await raw.next()
        before = data_segments_sent(ws.sock)
        # 20 small messages and a ping in one segment: one read on the client.
        await peer.send(
            b"".join(peer.core.send_text(f"m{i}") for i in range(10))
            + peer.core.send_ping(b"between")
            + b"".join(peer.core.send_text(f"m{i}") for i in range(10, 20))
        )
        events = [await peer.next_event() for _ in range(21)]
        assert events[:10] == [TextReceived(f"answer to m{i}") for i in range(10)]
        assert isinstance(events[10], PongReceived) and events[10].payload == b"between"
        assert events[11:] == [TextReceived(f"answer to m{i}") for i in range(10, 20)]
        # TCP_NODELAY is on: a write of its own would be a segment of its own.
        assert data_segments_sent(ws.sock) - before == 1
        await close_client(ws, peer)


async def test_what_a_task_sends_goes_out_in_one_write_when_it_yields() -> None:
    async with RawServer() as raw:
        ws = await within(connect(f"ws://{HOST}:{raw.port}/", Recording, compression=None))
        peer = await raw.next()
        before = data_segments_sent(ws.sock)
        for i in range(3):
            ws.send(f"from a task {i}")
        assert data_segments_sent(ws.sock) == before  # held until the task yields
        assert [await peer.next_event() for _ in range(3)] == [TextReceived(f"from a task {i}") for i in range(3)]
        assert data_segments_sent(ws.sock) - before == 1
        await close_client(ws, peer)


async def test_a_task_that_sends_without_yielding_writes_every_cork_limit_frames() -> None:
    async with RawServer() as raw:
        ws = await within(connect(f"ws://{HOST}:{raw.port}/", Recording, compression=None))
        peer = await raw.next()
        before = data_segments_sent(ws.sock)
        count = 10 * CORK_LIMIT
        for i in range(count):
            ws.send(f"{i}")
        # Not all held until the task yields: what a cork holds stays bounded.
        assert data_segments_sent(ws.sock) - before >= 2
        assert [await peer.next_event() for _ in range(count)] == [TextReceived(f"{i}") for i in range(count)]
        await close_client(ws, peer)


# -- the API -------------------------------------------------------------------------------------


class Greets(Recording):
    def opened(self) -> None:
        super().opened()
        self.send("hello from opened")


async def test_connect_returns_the_handler_once_opened_ran_and_talks_to_the_callbacks_server() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: WebSocketProtocol(EchoWebSocket), HOST, 0)
    handler_cls = fresh(Greets)
    try:
        ws = await within(connect(f"ws://{HOST}:{port_of(server)}/chat?x=1", handler_cls))
        assert type(ws) is handler_cls and ws.calls[0] == ("opened",)  # the echo may be in already
        assert ws.extensions == ["permessage-deflate"] and ws.protocols == []
        assert ws.environ["PATH_INFO"] == "/chat" and ws.environ["QUERY_STRING"] == "x=1"
        large = "ü" * 300_000
        ws.send(iter(["frag", "ments"]))
        ws.send(large)
        ws.send(bytes(range(256)) * 4096, binary=True)
        await eventually(lambda: len(ws.calls) == 5, what="four echoes")
        assert ws.calls[1:] == [
            ("message", "text", b"hello from opened"),
            ("message", "text", b"fragments"),
            ("message", "text", large.encode()),
            ("message", "binary", bytes(range(256)) * 4096),
        ]
        ws.close(4001, "done")
        await within(ws.wait_closed())
        assert ws.calls[-1] == ("closed", 4001, "")  # the echo of the close has the code only
        with pytest.raises(StreamClosed):
            ws.send("too late")
    finally:
        server.close()
        await within(server.wait_closed())


async def test_the_protocol_on_loop_create_connection_with_a_client_handshake() -> None:
    async with serving() as server:
        loop = asyncio.get_running_loop()
        handler_cls = fresh(Greets)
        handshake = ClientHandshake(HOST, "/", port=port_of(server))
        _, proto = await within(
            loop.create_connection(lambda: WebSocketClientProtocol(handler_cls, handshake), HOST, port_of(server))
        )
        await within(proto.opened)
        ws = proto.ws
        assert isinstance(ws, handler_cls) and ws.calls[0] == ("opened",)
        await eventually(lambda: len(ws.calls) == 2, what="the echo")
        assert ws.calls[1] == ("message", "text", b"hello from opened")
        ws.close()
        await within(ws.wait_closed())
        assert ws.calls[-1] == ("closed", 1000, "")


async def test_a_failed_handshake_raises_from_opened_and_makes_no_websocket() -> None:
    def refuse(conn: Any, request: Any) -> Any:
        return conn.respond(403, "no")

    async with serving(process_request=refuse) as server:
        loop = asyncio.get_running_loop()
        handshake = ClientHandshake(HOST, "/", port=port_of(server))
        _, proto = await within(
            loop.create_connection(lambda: WebSocketClientProtocol(Recording, handshake), HOST, port_of(server))
        )
        with pytest.raises(Exception, match="403"):
            await within(proto.opened)
        await within(proto.wait_closed())
        assert proto.ws is None


@pytest.mark.parametrize(
    ("uri", "kwargs"),
    [
        ("http://127.0.0.1/", {}),
        ("ws://127.0.0.1/", {"ssl": ssl.create_default_context()}),
        ("ws://127.0.0.1/", {"compression": "gzip"}),
        ("ws://127.0.0.1:9/", {"proxy": "ftp://127.0.0.1:21"}),
    ],
    ids=["http-scheme", "ssl-for-ws", "unknown-compression", "proxy-scheme"],
)
async def test_invalid_arguments_raise_value_error(uri: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        await within(connect(uri, Recording, **kwargs))


async def test_a_server_that_ends_the_connection_at_once_gives_closed_after_opened() -> None:
    async with RawServer() as raw:
        handler_cls = fresh(Recording)
        ws = await within(connect(f"ws://{HOST}:{raw.port}/", handler_cls, compression=None))
        peer = await raw.next()
        peer.writer.close()  # FIN, no close frame
        await within(ws.wait_closed())
        assert ws.calls == [("opened",), ("closed", 1006, "Going away")]


class BrokenInit(WebSocket):
    def __init__(self, proto: Any) -> None:
        raise LookupError("a bug in __init__")


async def test_a_handler_whose_constructor_raises_makes_connect_raise_that_error() -> None:
    async with serving() as server:
        with pytest.raises(LookupError, match="a bug in __init__"):
            await within(connect(f"ws://{HOST}:{port_of(server)}/", BrokenInit, open_timeout=None))


async def test_subprotocols_are_offered_and_the_agreed_one_is_in_protocols() -> None:
    async with serving(subprotocols=["chat.v2", "chat.v1"]) as server:
        ws = await within(connect(f"ws://{HOST}:{port_of(server)}/", Recording, subprotocols=["chat.v1"]))
        assert ws.protocols == ["chat.v1"]
        ws.close()
        await within(ws.wait_closed())
