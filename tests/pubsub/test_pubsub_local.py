"""The in-process broker with every kind of connection: delivery, automatic unsubscribe, back-pressure, errors."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from typing import Any

import pytest
from aio_support import HOST, raw_client, serving
from pubsub_support import eventually, run, wait_until, within
from threaded_support import RawClient, RecordingClient, RecordingWebSocket, start_server

from ws4py.async_websocket import WebSocket as AsyncWebSocket
from ws4py.async_websocket import WebSocketProtocol
from ws4py.asyncio import Connection, connect
from ws4py.messaging import Message
from ws4py.pubsub import InProcessBroker


def test_asyncio_server_and_client_connections_receive_what_is_published() -> None:
    async def main() -> None:
        broker = InProcessBroker()
        server_side: list[Connection] = []

        async def handler(websocket: Connection) -> None:
            broker.subscribe(websocket, "room", "room")  # twice: once
            server_side.append(websocket)
            await websocket.wait_closed()

        async with broker, serving(handler) as server:
            port = server.sockets[0].getsockname()[1]
            a = await within(connect(f"ws://{HOST}:{port}"))
            b = await within(connect(f"ws://{HOST}:{port}", compression=None))
            broker.subscribe(a, "clients")  # a client connection frames (and masks) its own
            await eventually(lambda: len(broker.subscribers("room")) == 2, "both subscribed")
            assert broker.subscribed("room") and not broker.subscribed("nobody")
            for n in range(5):
                broker.publish("room", f"text {n}")
            broker.publish("room", b"\x00binary")
            broker.publish("nobody", "lost")
            for client in (a, b):
                assert [await within(client.recv()) for _ in range(6)] == [f"text {n}" for n in range(5)] + [
                    b"\x00binary"
                ]
            broker.publish("clients", "to the server")
            assert await within(server_side[0].recv()) == "to the server"
            await a.close()
            await b.close()
            await eventually(lambda: not broker.subscribers("room"), "closed connections unsubscribed")
            assert not broker.subscribers("clients")

    run(main())


class SubscribingAsyncWebSocket(AsyncWebSocket):
    broker: InProcessBroker

    def opened(self) -> None:
        self.broker.subscribe(self, "room")

    def received_message(self, message: Message) -> None:
        self.broker.publish("room", message.data.decode())


def test_async_websocket_callbacks_publish_and_receive() -> None:
    async def main() -> None:
        broker = SubscribingAsyncWebSocket.broker = InProcessBroker()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: WebSocketProtocol(SubscribingAsyncWebSocket), HOST, 0)
        try:
            port = server.sockets[0].getsockname()[1]
            clients = [await within(connect(f"ws://{HOST}:{port}")) for _ in range(3)]
            await eventually(lambda: len(broker.subscribers("room")) == 3, "three subscribed")
            await clients[0].send("hello")
            for client in clients:
                assert await within(client.recv()) == "hello"
            for client in clients:
                await client.close()
            await eventually(lambda: not broker.subscribers("room"), "closed websockets unsubscribed")
        finally:
            server.close()
            await server.wait_closed()
            broker.close()

    run(main())


class SubscribingWebSocket(RecordingWebSocket):
    broker: InProcessBroker

    def opened(self) -> None:
        super().opened()
        self.broker.subscribe(self, "room")

    def received_message(self, message: Message) -> None:
        super().received_message(message)
        self.broker.publish("room", message.data.decode())


def test_threaded_manager_websockets_publish_and_receive() -> None:
    broker = SubscribingWebSocket.broker = InProcessBroker()
    server = start_server(SubscribingWebSocket)
    clients: list[Any] = []
    try:
        for _ in range(3):
            client = RecordingClient(server.url())
            client.connect()
            clients.append(client)
            server.accept()
        wait_until(lambda: len(broker.subscribers("room")) == 3, "three subscribed")
        clients[0].send("hello")  # published from the manager's thread, in received_message
        for client in clients:
            assert [m.data for m in client.wait_messages(1)] == [b"hello"]
        broker.publish("room", b"\x01from the test thread")
        for client in clients:
            messages = client.wait_messages(2)
            assert [m.data for m in messages] == [b"hello", b"\x01from the test thread"]
            assert [m.is_binary for m in messages] == [False, True]
        for client in clients:
            client.close()
            client.wait_closed()
        wait_until(lambda: not broker.subscribers("room"), "closed websockets unsubscribed")
    finally:
        for client in clients:
            client.terminate()
        server.stop()
        broker.close()


def test_closed_connections_are_let_go_and_unsubscribe_leaves_others() -> None:
    async def main() -> None:
        broker = InProcessBroker()
        refs: list[weakref.ref[Connection]] = []

        async def handler(websocket: Connection) -> None:
            broker.subscribe(websocket, "a", "b")
            refs.append(weakref.ref(websocket))
            await websocket.wait_closed()

        async with broker, serving(handler) as server:
            port = server.sockets[0].getsockname()[1]
            first = await within(connect(f"ws://{HOST}:{port}"))
            second = await within(connect(f"ws://{HOST}:{port}"))
            await eventually(lambda: len(broker.subscribers("a")) == 2, "both subscribed")
            (one, two) = broker.subscribers("b")
            broker.unsubscribe(one, "b")
            assert broker.subscribers("b") == {two}
            broker.unsubscribe(two)  # from every channel
            assert broker.subscribers("a") == {one} and not broker.subscribers("b")
            del one, two
            await first.close()
            await second.close()
            await eventually(lambda: not broker.subscribers("a"), "closed connection let go")
        await asyncio.sleep(0)
        gc.collect()
        assert [ref() for ref in refs] == [None, None], "the broker kept a closed connection alive"

    run(main())


def test_a_subscriber_that_never_reads_is_skipped_not_buffered() -> None:
    """Same policy as broadcast: a peer over write_limit misses messages; the server's memory does not grow."""

    async def main() -> None:
        broker = InProcessBroker()
        server_side: list[Connection] = []

        async def handler(websocket: Connection) -> None:
            broker.subscribe(websocket, "flood")
            server_side.append(websocket)
            await websocket.wait_closed()

        async with broker, serving(handler, write_limit=64 * 1024) as server:
            port = server.sockets[0].getsockname()[1]
            stalled = await raw_client(port, rcvbuf=4096)  # a small window, and it never reads
            reader = await within(connect(f"ws://{HOST}:{port}", max_size=None))
            await eventually(lambda: len(server_side) == 2, "both subscribed")
            message = "x" * 16384
            largest = 0
            for n in range(800):  # 13 MB for each subscriber
                broker.publish("flood", message)
                if n % 16 == 15:
                    assert (await within(reader.recv())) == message
                    await asyncio.sleep(0)
                    largest = max(largest, server_side[0].transport.get_write_buffer_size())
            # write_limit, plus what one burst (16 publishes between two yields) adds before the check applies.
            assert largest <= 64 * 1024 + 16 * (len(message) + 64), f"the stalled peer's buffer grew to {largest}"
            assert server_side[0].open, "a slow peer is skipped, not closed"
            reader.abort()
            stalled.abort()

    run(main())


class QuicklyClosedWebSocket(SubscribingWebSocket):
    close_timeout = 0.3  # the peer never answers the close


def test_a_threaded_subscriber_that_never_reads_is_closed_with_1008() -> None:
    """Same policy as the threaded broadcast: past max_write_buffer the peer is closed, nothing more is buffered."""
    broker = SubscribingWebSocket.broker = InProcessBroker()
    server = start_server(QuicklyClosedWebSocket)
    stalled = RawClient(server.port)  # never reads
    try:
        websocket = server.accept()
        wait_until(lambda: broker.subscribers("room") == {websocket}, "subscribed")
        message = "y" * 65536
        for _ in range(200):  # 13 MB, over max_write_buffer (4 MiB)
            broker.publish("room", message)
        assert websocket.protocol.close_sent == (1008, "write buffer overflow: the peer is not reading")
        wait_until(lambda: not broker.subscribers("room"), "the closed websocket let go", timeout=10)
    finally:
        stalled.close()
        server.stop()
        broker.close()


def test_publishing_from_another_thread_goes_through_the_loop_and_gives_up_on_a_stalled_loop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        broker = InProcessBroker(publish_timeout=0.2, max_pending=1)

        async def handler(websocket: Connection) -> None:
            broker.subscribe(websocket, "room")
            await websocket.send("subscribed")
            await websocket.wait_closed()

        async with broker, serving(handler) as server:
            port = server.sockets[0].getsockname()[1]
            client = await within(connect(f"ws://{HOST}:{port}"))
            assert await within(client.recv()) == "subscribed"
            await asyncio.to_thread(broker.publish, "room", "from a thread")
            assert await within(client.recv()) == "from a thread"
            # The loop is stalled (this thread blocks it): one message waits, the next is given up.
            publishing = threading.Thread(target=lambda: [broker.publish("room", f"m{n}") for n in range(2)])
            publishing.start()
            publishing.join(5)
            assert not publishing.is_alive()
            assert await within(client.recv()) == "m0"
            await client.close()
        assert repr(broker) == "<InProcessBroker 0 channel(s)>"

    run(main())
    assert any("was not delivered to 1 connection(s)" in r.getMessage() for r in caplog.records)


def test_subscribe_refuses_what_is_not_a_connection_or_a_channel() -> None:
    broker = InProcessBroker()
    with pytest.raises(TypeError, match="cannot subscribe"):
        broker.subscribe(object(), "a")
    with pytest.raises(ValueError, match="channel"):
        broker.publish("", "x")
    with pytest.raises(TypeError, match="str or bytes"):
        broker.publish("a", 3)  # type: ignore[arg-type]

    async def main() -> None:
        async with serving() as server:
            port = server.sockets[0].getsockname()[1]
            client = await within(connect(f"ws://{HOST}:{port}"))
            with pytest.raises(ValueError, match="channel"):
                broker.subscribe(client, 3)  # type: ignore[arg-type]
            # Outside its event loop: an asyncio connection cannot be reached safely.
            with pytest.raises(RuntimeError, match="event loop"):
                await asyncio.to_thread(broker.subscribe, client, "a")
            await client.close()

    run(main())
    broker.close()
