"""The callback-style WebSocket on asyncio (ws4py.async_websocket): which callbacks, with what, in which order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import pytest
from aio_support import HOST, eventually, open_tcp, port_of, raw_client, url, within

import ws4py.server.tulipserver
from ws4py.async_websocket import EchoWebSocket, WebSocket, WebSocketProtocol
from ws4py.asyncio import ConnectionClosedError, ConnectionClosedOK, HandshakeError, Options, connect
from ws4py.exc import StreamClosed
from ws4py.messaging import BinaryMessage, Message, PongControlMessage, TextMessage
from ws4py.protocol import (
    BinaryReceived,
    ClientHandshake,
    CloseReceived,
    Connection,
    PongReceived,
    Role,
    TextReceived,
    frames,
)

KIB = 1024


class Recording(WebSocket):
    """Records every callback in ``self.calls`` (and every instance in ``instances``)."""

    instances: ClassVar[list[Recording]] = []

    def __init__(self, proto: WebSocketProtocol) -> None:
        super().__init__(proto)
        self.calls: list[tuple[Any, ...]] = []
        self.closed_once = asyncio.get_running_loop().create_future()
        type(self).instances.append(self)

    def opened(self) -> None:
        self.calls.append(("opened",))

    def received_message(self, message: Message) -> None:
        self.calls.append(("message", message))

    def ponged(self, pong: PongControlMessage) -> None:
        self.calls.append(("ponged", pong))

    def closed(self, code: int, reason: str | None = None) -> None:
        self.calls.append(("closed", code, reason))
        self.closed_once.set_result((code, reason))

    def unhandled_error(self, error: BaseException) -> None:
        self.calls.append(("error", error))


@pytest.fixture
def recording() -> Iterator[type[Recording]]:
    """A fresh Recording class, whose ``instances`` are this test's."""

    class Fresh(Recording):
        instances: ClassVar[list[Recording]] = []

    yield Fresh


@contextlib.asynccontextmanager
async def callback_server(handler_cls: type[WebSocket], **kwargs: Any) -> AsyncIterator[asyncio.Server]:
    """``loop.create_server(lambda: WebSocketProtocol(handler_cls, **kwargs), HOST, 0)``; aborts them at exit."""
    protocols: list[WebSocketProtocol] = []

    def factory() -> WebSocketProtocol:
        protocols.append(WebSocketProtocol(handler_cls, **kwargs))
        return protocols[-1]

    server = await asyncio.get_running_loop().create_server(factory, HOST, 0)
    try:
        yield server
    finally:
        server.close()
        for proto in protocols:
            if proto.transport is not None and not proto.transport.is_closing():
                proto.transport.abort()
        await within(server.wait_closed())
        # closed() comes from connection_lost, one loop iteration after the abort.
        await eventually(lambda: all(p.transport is None or p.ws is None or p.ws.terminated for p in protocols))


async def first(recording: type[Recording]) -> Recording:
    await eventually(lambda: bool(recording.instances), what="a websocket opened")
    return recording.instances[0]


# -- the documented usage -------------------------------------------------------------


async def test_the_seed_snippet_echoes_with_websocket_protocol_from_tulipserver() -> None:
    assert ws4py.server.tulipserver.WebSocketProtocol is WebSocketProtocol
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: WebSocketProtocol(EchoWebSocket), "127.0.0.1", 0)
    try:
        async with connect(url(server)) as conn:
            for message in ("text", b"\x00binary", "ü" * 100_000, bytes(1024 * 1024)):
                await conn.send(message)
                assert await within(conn.recv()) == message
    finally:
        server.close()
        await server.wait_closed()


# -- callbacks ---------------------------------------------------------------------------


async def test_callbacks_come_in_order_with_their_arguments(recording: type[Recording]) -> None:
    async with callback_server(recording) as server:
        conn = await within(connect(url(server)))
        ws = await first(recording)
        await conn.send("text")
        await conn.send(b"\x00\x01")
        await eventually(lambda: len(ws.calls) == 3)
        ws.ping("are you there")
        await eventually(lambda: len(ws.calls) == 4)
        await conn.close(1000, "bye")
        assert await within(ws.closed_once) == (1000, "bye")
    kinds = [call[0] for call in ws.calls]
    assert kinds == ["opened", "message", "message", "ponged", "closed"]
    text, binary, pong = ws.calls[1][1], ws.calls[2][1], ws.calls[3][1]
    assert isinstance(text, TextMessage) and text.is_text and str(text) == "text" and text.data == b"text"
    assert isinstance(binary, BinaryMessage) and binary.is_binary and binary.data == b"\x00\x01"
    assert isinstance(pong, PongControlMessage) and pong.data == b"are you there"
    assert ws.calls[-1] == ("closed", 1000, "bye")


async def test_opened_runs_before_a_message_that_came_with_the_request(recording: type[Recording]) -> None:
    async with callback_server(recording) as server:
        _, writer = await open_tcp(port_of(server))
        handshake = ClientHandshake(HOST, "/", port=port_of(server))
        early = Connection(Role.CLIENT).send_text("in the same segment")
        writer.write(handshake.request_bytes() + early)
        ws = await first(recording)
        await eventually(lambda: len(ws.calls) == 2)
        assert ws.calls[0] == ("opened",)
        assert str(ws.calls[1][1]) == "in the same segment"
        writer.close()
        await within(ws.closed_once)
    assert ws.calls[-1] == ("closed", 1006, "Going away")  # 0.6's reason with 1006


async def test_the_pong_goes_before_the_answer_to_a_later_message() -> None:
    async with callback_server(EchoWebSocket) as server:
        peer = await raw_client(port_of(server))
        try:
            await peer.send(peer.core.send_ping(b"p") + peer.core.send_text("echo me"))
            pong = await peer.next_event()
            assert isinstance(pong, PongReceived) and pong.payload == b"p"
            assert await peer.next_event() == TextReceived("echo me")
        finally:
            await peer.close()


async def test_messages_before_invalid_utf8_in_the_same_read_are_answered_before_the_1007_close() -> None:
    async with callback_server(EchoWebSocket) as server:
        peer = await raw_client(port_of(server))
        try:
            bad_text = frames.build_frame(0x81, b"\xed\xa0\x80", b"\x01\x02\x03\x04")  # a surrogate
            await peer.send(peer.core.send_text("first") + peer.core.send_binary(b"\x00second") + bad_text)
            assert await peer.next_event() == TextReceived("first")
            assert await peer.next_event() == BinaryReceived(b"\x00second")
            close = await peer.next_event()
            assert isinstance(close, CloseReceived) and close.code == 1007
        finally:
            await peer.close()


async def test_closed_is_called_once_with_1006_when_the_peer_drops_tcp(recording: type[Recording]) -> None:
    async with callback_server(recording) as server:
        peer = await raw_client(port_of(server))
        ws = await first(recording)
        peer.abort()
        assert await within(ws.closed_once) == (1006, "Going away")  # 0.6's reason with 1006
        await peer.close()
    assert [call[0] for call in ws.calls].count("closed") == 1


async def test_an_exception_in_received_message_calls_unhandled_error_and_closes_with_1011(
    recording: type[Recording],
) -> None:
    class Failing(recording):  # type: ignore[valid-type,misc]
        def received_message(self, message: Message) -> None:
            super().received_message(message)
            raise ZeroDivisionError("in the callback")

    async with callback_server(Failing) as server:
        conn = await within(connect(url(server)))
        await conn.send("trigger")
        with pytest.raises(ConnectionClosedError) as closed:
            await within(conn.recv())
        assert (closed.value.code, closed.value.reason) == (1011, "internal error")
        ws = await first(Failing)
        assert await within(ws.closed_once) == (1011, "")
        await conn.close()
    errors = [call[1] for call in ws.calls if call[0] == "error"]
    assert len(errors) == 1 and isinstance(errors[0], ZeroDivisionError)


async def test_an_exception_in_opened_closes_with_1011(recording: type[Recording]) -> None:
    class Failing(recording):  # type: ignore[valid-type,misc]
        def opened(self) -> None:
            raise RuntimeError("in opened")

    async with callback_server(Failing) as server:
        conn = await within(connect(url(server)))
        with pytest.raises(ConnectionClosedError) as closed:
            await within(conn.recv())
        assert closed.value.code == 1011
        ws = await first(Failing)
        await within(ws.closed_once)
        await conn.close()
    assert isinstance(ws.calls[0][1], RuntimeError)


# -- sending -------------------------------------------------------------------------------


async def test_send_takes_str_bytes_messages_and_iterables() -> None:
    class Sender(WebSocket):
        def opened(self) -> None:
            self.send("text")
            self.send(b"bytes are text by default")
            self.send(b"\x00\xff", binary=True)
            self.send(bytearray(b"\x01"), binary=True)
            self.send(TextMessage("a text message"))
            self.send(BinaryMessage(b"\x02 a binary message"))
            self.send(iter(["frag", "men", "ted"]))
            self.send((chunk for chunk in [b"\x03", b"\x04"]), binary=True)
            self.send([])
            self.send("x" * (100 * KIB))  # a large frame is written as it is

    async with callback_server(Sender, compression=None) as server, connect(url(server)) as conn:
        expected = [
            "text",
            "bytes are text by default",
            b"\x00\xff",
            b"\x01",
            "a text message",
            b"\x02 a binary message",
            "fragmented",
            b"\x03\x04",
            "",
            "x" * (100 * KIB),
        ]
        assert [await within(conn.recv()) for _ in expected] == expected


async def test_send_of_an_unsupported_type_raises_value_error() -> None:
    outcome: list[BaseException] = []

    class Sender(WebSocket):
        def opened(self) -> None:
            try:
                self.send(42)  # type: ignore[arg-type]
            except ValueError as exc:
                outcome.append(exc)
            self.send("still open")

    async with callback_server(Sender) as server, connect(url(server)) as conn:
        assert await within(conn.recv()) == "still open"
    assert len(outcome) == 1


async def test_send_after_close_raises_stream_closed(recording: type[Recording]) -> None:
    async with callback_server(recording) as server:
        conn = await within(connect(url(server)))
        ws = await first(recording)
        ws.close(4000, "closing first")
        with pytest.raises(StreamClosed):
            ws.send("too late")
        with pytest.raises(StreamClosed):
            ws.ping()
        with pytest.raises(ConnectionClosedError) as closed:
            await within(conn.recv())
        assert (closed.value.code, closed.value.reason) == (4000, "closing first")
        assert await within(ws.closed_once) == (4000, "")
        await conn.close()


async def test_close_from_a_callback_reaches_the_peer_after_what_was_sent_before() -> None:
    class Closer(WebSocket):
        def received_message(self, message: Message) -> None:
            self.send("goodbye")
            self.close(1001, "leaving")

    async with callback_server(Closer) as server, connect(url(server)) as conn:
        await conn.send("close please")
        assert await within(conn.recv()) == "goodbye"
        with pytest.raises(ConnectionClosedOK) as closed:
            await within(conn.recv())
        assert (closed.value.code, closed.value.reason) == (1001, "leaving")


async def test_terminate_drops_the_connection_without_a_close_frame(recording: type[Recording]) -> None:
    async with callback_server(recording) as server:
        conn = await within(connect(url(server)))
        ws = await first(recording)
        assert not ws.terminated
        ws.terminate()
        with pytest.raises(ConnectionClosedError) as closed:
            await within(conn.recv())
        assert closed.value.code == 1006
        assert await within(ws.closed_once) == (1006, "Going away")  # 0.6's reason with 1006
        assert ws.terminated


async def test_0_6s_close_connection_and_termination_flags(recording: type[Recording]) -> None:
    async with callback_server(recording) as server:
        conn = await within(connect(url(server)))
        ws = await first(recording)
        assert not ws.server_terminated and not ws.client_terminated
        ws.close(1000, "server first")
        assert ws.server_terminated and not ws.client_terminated, "our close went out, the client's did not"
        with pytest.raises(ConnectionClosedOK):
            await within(conn.recv())
        assert await within(ws.closed_once) == (1000, "")  # the client's echo of our code
        assert ws.client_terminated and ws.server_terminated and ws.terminated
        dropped = await within(connect(url(server)))
        second = await within(eventually_second(recording))
        second.close_connection()
        with pytest.raises(ConnectionClosedError):
            await within(dropped.recv())
        assert await within(second.closed_once) == (1006, "Going away")


async def eventually_second(recording: type[Recording]) -> Recording:
    await eventually(lambda: len(recording.instances) >= 2, what="a second connection")
    return recording.instances[1]


async def test_drain_waits_while_the_buffer_is_over_write_limit() -> None:
    sent: list[int] = []
    stop = asyncio.Event()
    done = asyncio.Event()

    class Producer(WebSocket):
        def opened(self) -> None:
            self.task = asyncio.ensure_future(self.produce())

        async def produce(self) -> None:
            try:
                while not stop.is_set():
                    self.send(bytes(16 * KIB), binary=True)
                    sent.append(self.proto.transport.get_write_buffer_size())  # type: ignore[union-attr]
                    await self.drain()
                self.close()
            finally:
                done.set()

    options = Options(write_limit=32 * KIB)
    async with callback_server(Producer, compression=None, options=options) as server:
        peer = await raw_client(port_of(server), rcvbuf=16 * KIB)  # reads nothing until told
        try:
            while True:
                count = len(sent)
                await asyncio.sleep(0.1)
                if len(sent) == count:
                    break
            assert max(sent) <= 32 * KIB + 16 * KIB + 14
            stop.set()
            events = await peer.until_close()
            await within(done.wait())
        finally:
            await peer.close()
    assert len(events) == len(sent) + 1


# -- what the websocket knows ------------------------------------------------------------------


async def test_environ_has_the_path_query_method_and_headers(recording: type[Recording]) -> None:
    async with callback_server(recording) as server:
        port = port_of(server)
        async with connect(url(server, "/chat/room?a=1&b=2"), additional_headers={"X-Custom-Header": "yes"}):
            environ = (await first(recording)).environ
    assert environ["PATH_INFO"] == "/chat/room"
    assert environ["QUERY_STRING"] == "a=1&b=2"
    assert environ["REQUEST_METHOD"] == "GET"
    assert environ["HTTP_X_CUSTOM_HEADER"] == "yes"
    assert environ["HTTP_HOST"] == f"{HOST}:{port}"
    assert environ["HTTP_UPGRADE"] == "websocket"


async def test_protocols_extensions_and_addresses(recording: type[Recording]) -> None:
    async with (
        callback_server(recording, subprotocols=["chat"]) as server,
        connect(url(server), subprotocols=["chat"]) as conn,
    ):
        ws = await first(recording)
        assert ws.protocols == ["chat"]
        assert ws.extensions == ["permessage-deflate"]
        assert ws.local_address == conn.remote_address
        assert ws.peer_address == conn.local_address
        assert ws.sock is not None and ws.sock.fileno() >= 0
    async with callback_server(recording, compression=None) as server, connect(url(server)):
        await eventually(lambda: len(recording.instances) == 2)
        ws = recording.instances[1]
        assert ws.protocols == []
        assert ws.extensions == []


async def test_origins_refuse_a_bad_origin_with_403() -> None:
    async with callback_server(EchoWebSocket, origins=["https://good.example"]) as server:
        with pytest.raises(HandshakeError) as refused:
            await within(connect(url(server), origin="https://evil.example"))
        assert refused.value.status == 403
        async with connect(url(server), origin="https://good.example") as conn:
            await conn.send("ok")
            assert await within(conn.recv()) == "ok"


async def test_options_max_size_fails_a_too_large_message_with_1009(recording: type[Recording]) -> None:
    async with callback_server(recording, options=Options(max_size=100)) as server:
        conn = await within(connect(url(server)))
        await conn.send("x" * 101)
        with pytest.raises(ConnectionClosedError) as closed:
            await within(conn.recv())
        assert closed.value.code == 1009
        ws = await first(recording)
        code, _ = await within(ws.closed_once)
        assert code == 1009
        await conn.close()


async def test_keepalive_pongs_reach_ponged(recording: type[Recording]) -> None:
    options = Options(ping_interval=0.02, ping_timeout=0.02)
    async with callback_server(recording, options=options) as server, connect(url(server)):
        ws = await first(recording)
        await eventually(lambda: sum(call[0] == "ponged" for call in ws.calls) >= 3, what="three keepalive pongs")
