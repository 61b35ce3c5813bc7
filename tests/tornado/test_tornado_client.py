"""ws4py.client.tornadoclient.TornadoWebSocketClient on current Tornado, over real sockets.

Its peers: this project's asyncio server (``ws4py.asyncio.serve``), its
threaded server (wsgiref + manager) and the ``websockets`` library's server,
over ws:// and wss:// (tests/threaded's trustme CA). Each test runs one event
loop (``asyncio.run``), on which Tornado's IOLoop is the current one, bounded by
:data:`TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Coroutine
from typing import Any

import pytest
import trustme
import websockets.asyncio.server
from aio_support import Accepted, RawServer, serving
from threaded_support import TIMEOUT, RecordingWebSocket, ServeFactory
from tornado.ioloop import IOLoop

from ws4py.client.tornadoclient import TornadoWebSocketClient
from ws4py.exc import HandshakeError, StreamClosed
from ws4py.messaging import BinaryMessage, Message, PongControlMessage
from ws4py.protocol import CloseReceived, ConnectionFailed, TextReceived


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a test's coroutine on a fresh loop, failing it instead of hanging."""
    return asyncio.run(asyncio.wait_for(coroutine, TIMEOUT * 2))


class Recording(TornadoWebSocketClient):
    """Records its callbacks; ``wait_*`` wait for them (on the loop)."""

    close_timeout = 2.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.opened_count = 0
        self.messages: asyncio.Queue[Message] = asyncio.Queue()
        self.pongs: asyncio.Queue[PongControlMessage] = asyncio.Queue()
        self.closed_with: asyncio.Future[tuple[int, Any]] = asyncio.get_running_loop().create_future()
        self.errors: list[BaseException] = []

    def opened(self) -> None:
        self.opened_count += 1

    def received_message(self, message: Message) -> None:
        self.messages.put_nowait(message)

    def ponged(self, pong: PongControlMessage) -> None:
        self.pongs.put_nowait(pong)

    def closed(self, code: int, reason: Any = None) -> None:
        assert not self.closed_with.done(), "closed() called twice"
        self.closed_with.set_result((code, reason))

    def unhandled_error(self, error: BaseException) -> None:
        self.errors.append(error)

    async def next_message(self) -> Message:
        return await asyncio.wait_for(self.messages.get(), TIMEOUT)

    async def wait_closed(self) -> tuple[int, Any]:
        return await asyncio.wait_for(asyncio.shield(self.closed_with), TIMEOUT)


async def exchange_everything(client: Recording) -> None:
    """Text, binary, a message object, a fragmented message and a ping, each echoed back."""
    await asyncio.wait_for(client.connect(), TIMEOUT)
    assert client.opened_count == 1
    await client.send("h\u00e9llo")
    text = await client.next_message()
    assert text.is_text and str(text) == "h\u00e9llo"
    client.send(b"\x00\xff", binary=True)
    got = await client.next_message()
    assert got.is_binary and got.data == b"\x00\xff"
    client.send(BinaryMessage(b"\x01"))
    assert (await client.next_message()).data == b"\x01"
    client.send(chunk for chunk in ("frag", "ment", "ed"))
    assert str(await client.next_message()) == "fragmented"
    client.ping(b"are you there")
    pong = await asyncio.wait_for(client.pongs.get(), TIMEOUT)
    assert pong.data == b"are you there"


def _tls_options(tls_ca: trustme.CA, tmp_path: Any) -> dict[str, Any]:
    ca_file = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca_file))
    return {"ca_certs": str(ca_file)}


# -- this project's asyncio server ---------------------------------------------------


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
def test_talks_to_the_asyncio_server(secure: bool, tls_ca: trustme.CA, tls_server_context: Any, tmp_path: Any) -> None:
    async def main() -> None:
        accepted = Accepted()
        async with serving(accepted, ssl=tls_server_context if secure else None) as server:
            port = server.sockets[0].getsockname()[1]
            scheme = "wss" if secure else "ws"
            client = Recording(
                f"{scheme}://localhost:{port}/chat?room=1",
                protocols=["chat"],
                ssl_options=_tls_options(tls_ca, tmp_path) if secure else None,
            )
            await exchange_everything(client)
            conn = await accepted.next()
            assert conn.request is not None and conn.request.target == "/chat?room=1"
            assert client.local_address[1] != port and client.peer_address[1] == port
            client.close(4000, "client d\u00f6ne")
            assert await client.wait_closed() == (4000, "")  # the server's echo of our code
            assert client.terminated and client.client_terminated and client.server_terminated
            assert (conn.close_code, conn.close_reason) == (4000, "client d\u00f6ne")
            with pytest.raises(StreamClosed):
                client.send("after the end")

    run(main())


# -- this project's threaded server --------------------------------------------------


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
def test_talks_to_the_threaded_server_which_closes_first(
    secure: bool, serve: ServeFactory, tls_ca: trustme.CA, tls_server_context: Any, tmp_path: Any
) -> None:
    server = serve(RecordingWebSocket, ssl_context=tls_server_context if secure else None)

    async def main() -> None:
        url = server.url("/t").replace("127.0.0.1", "localhost")
        client = Recording(url, ssl_options=_tls_options(tls_ca, tmp_path) if secure else None)
        await asyncio.wait_for(client.connect(), TIMEOUT)
        peer = await asyncio.to_thread(server.accept)
        client.send("to the server")
        received = await asyncio.to_thread(peer.wait_messages, 1)
        assert str(received[0]) == "to the server"
        peer.send(b"\x02\x03", binary=True)
        assert (await client.next_message()).data == b"\x02\x03"
        peer.close(4001, "server is done")
        assert await client.wait_closed() == (4001, b"server is done")
        assert (await asyncio.to_thread(peer.wait_closed))[0] == 4001

    run(main())


def test_a_server_that_vanishes_ends_the_client_with_1006(serve: ServeFactory) -> None:
    server = serve(RecordingWebSocket)

    async def main() -> None:
        client = Recording(server.url())
        await asyncio.wait_for(client.connect(), TIMEOUT)
        peer = await asyncio.to_thread(server.accept)
        peer.close_connection()  # TCP goes, no close frame
        assert await client.wait_closed() == (1006, "Going away")
        assert client.terminated

    run(main())


def test_0_6_usage_connect_then_start_the_ioloop_until_closed_stops_it(serve: ServeFactory) -> None:
    """ws4py 0.6's documented pattern: connect() before the IOLoop runs, closed() stops it."""
    server = serve(RecordingWebSocket)
    io_loop = IOLoop()
    seen: list[Any] = []

    class Client(TornadoWebSocketClient):
        def opened(self) -> None:
            self.send("one")

        def received_message(self, message: Message) -> None:
            seen.append(str(message))
            self.close()

        def closed(self, code: int, reason: Any = None) -> None:
            seen.append((code, reason))
            io_loop.stop()

    def server_side() -> None:
        peer = server.accept()
        if str(peer.wait_messages(1)[0]) == "one":
            peer.send("two")

    answering = threading.Thread(target=server_side, name="server-side")
    try:
        client = Client(server.url(), io_loop=io_loop)
        client.connect()  # nothing happens until the IOLoop runs
        answering.start()
        io_loop.call_later(TIMEOUT, io_loop.stop)  # a hang becomes a failure
        io_loop.start()
    finally:
        answering.join(TIMEOUT)
        io_loop.close(all_fds=True)
    assert seen == ["two", (1000, "")]


# -- the websockets library's server ----------------------------------------------------


@pytest.mark.parametrize("secure", [False, True], ids=["ws", "wss"])
def test_talks_to_websockets(secure: bool, tls_ca: trustme.CA, tls_server_context: Any, tmp_path: Any) -> None:
    async def handler(ws: Any) -> None:
        async for message in ws:
            if message == "bye":
                await ws.close(1001, "going")
                return
            await ws.send(message)

    async def main() -> None:
        ssl_context = tls_server_context if secure else None
        async with websockets.asyncio.server.serve(handler, "127.0.0.1", 0, ssl=ssl_context) as server:
            port = server.sockets[0].getsockname()[1]
            client = Recording(
                f"{'wss' if secure else 'ws'}://localhost:{port}/",
                ssl_options=_tls_options(tls_ca, tmp_path) if secure else None,
            )
            await exchange_everything(client)
            client.send("bye")
            code, reason = await client.wait_closed()
            assert (code, reason) == (1001, "going")

    run(main())


def test_negotiates_a_subprotocol_and_compression_with_websockets() -> None:
    async def echo(ws: Any) -> None:
        async for message in ws:
            await ws.send(message)

    async def main() -> None:
        async with websockets.asyncio.server.serve(echo, "127.0.0.1", 0, subprotocols=["chat"]) as server:
            port = server.sockets[0].getsockname()[1]
            client = Recording(
                f"ws://127.0.0.1:{port}/", protocols=["superchat", "chat"], extensions=["permessage-deflate"]
            )
            await asyncio.wait_for(client.connect(), TIMEOUT)
            assert client.protocols == ["chat"] and client.extensions == ["permessage-deflate"]
            assert client.protocol is not None and client.protocol.deflate is not None, "compression in use"
            text = "compressible " * 1000
            client.send(text)
            assert str(await client.next_message()) == text
            client.close()
            assert (await client.wait_closed())[0] == 1000

    run(main())


# -- failures --------------------------------------------------------------------------


def test_a_refused_handshake_raises_handshake_error_and_calls_closed() -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(refuse, "127.0.0.1", 0)
        async with server:
            port = server.sockets[0].getsockname()[1]
            client = Recording(f"ws://127.0.0.1:{port}/")
            with pytest.raises(HandshakeError) as refused:
                await asyncio.wait_for(client.connect(), TIMEOUT)
            assert refused.value.status == 403 and "403 Forbidden" in str(refused.value)
            code, reason = await client.wait_closed()
            assert code == 1006 and "403 Forbidden" in reason
            assert client.opened_count == 0 and client.errors == [refused.value]

    run(main())


def test_nothing_listening_raises_connection_refused() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now

    async def main() -> None:
        client = Recording(f"ws://127.0.0.1:{port}/")
        with pytest.raises(ConnectionRefusedError):
            await asyncio.wait_for(client.connect(), TIMEOUT)
        assert (await client.wait_closed())[0] == 1006

    run(main())


def test_wss_verifies_the_server_certificate_by_default(tls_server_context: Any) -> None:
    async def main() -> None:
        async with serving(ssl=tls_server_context) as server:
            port = server.sockets[0].getsockname()[1]
            client = Recording(f"wss://localhost:{port}/")  # the test CA is not trusted
            with pytest.raises(ssl.SSLCertVerificationError):
                await asyncio.wait_for(client.connect(), TIMEOUT)

    run(main())


# -- what goes wrong on an open connection --------------------------------------------


def test_a_protocol_error_from_the_server_fails_the_connection_with_1002() -> None:
    async def main() -> None:
        async with RawServer() as raw:
            client = Recording(f"ws://127.0.0.1:{raw.port}/")
            await asyncio.wait_for(client.connect(), TIMEOUT)
            peer = await raw.next()
            await peer.send(b"\xa1\x02hi")  # RSV2 set, no extension agreed
            events = await peer.until_close()
            assert isinstance(events[-1], CloseReceived) and events[-1].code == 1002
            await peer.read_to_eof(timeout=1.0)  # the client half-closed after its close frame (before its 2 s timer)
            await peer.close()  # and reads until the server's end of TCP
            code, _ = await client.wait_closed()
            assert code == 1002

    run(main())


def test_a_server_that_never_answers_the_close_is_dropped_after_close_timeout() -> None:
    async def main() -> None:
        async with RawServer() as raw:
            client = Recording(f"ws://127.0.0.1:{raw.port}/")
            client.close_timeout = 0.2
            await asyncio.wait_for(client.connect(), TIMEOUT)
            peer = await raw.next()
            client.close(1000, "bye")
            assert isinstance(await peer.next_event(), CloseReceived)  # and no answer
            assert await client.wait_closed() == (1006, "Going away")

    run(main())


def test_a_callback_that_raises_closes_with_1011_and_reaches_unhandled_error() -> None:
    class Failing(Recording):
        def received_message(self, message: Message) -> None:
            raise ValueError("the handler failed")

    async def main() -> None:
        async with RawServer() as raw:
            client = Failing(f"ws://127.0.0.1:{raw.port}/")
            await asyncio.wait_for(client.connect(), TIMEOUT)
            peer = await raw.next()
            await peer.send(peer.core.send_text("boom"))
            events = await peer.until_close()
            assert isinstance(events[-1], CloseReceived) and events[-1].code == 1011
            await peer.send(peer.core.data_to_send())  # the echo of the close
            await peer.close()
            assert (await client.wait_closed())[0] == 1011
            assert [type(error) for error in client.errors] == [ValueError]

    run(main())


def test_a_server_that_does_not_read_is_refused_more_and_closed_with_1008() -> None:
    async def main() -> None:
        async with RawServer() as raw:
            client = Recording(f"ws://127.0.0.1:{raw.port}/")
            client.max_write_buffer = 256 * 1024
            await asyncio.wait_for(client.connect(), TIMEOUT)
            peer = await raw.next()
            chunk = b"x" * (256 * 1024)
            with pytest.raises(StreamClosed):
                for _ in range(1000):  # the socket's buffers fill up, then the bound is met
                    client.send(chunk, binary=True)
                    await asyncio.sleep(0)
            events = await peer.until_close()  # reading now: everything, then the close
            assert isinstance(events[-1], CloseReceived) and events[-1].code == 1008
            assert not any(isinstance(event, ConnectionFailed) for event in events)

    run(main())


def test_send_from_another_thread_is_handed_to_the_ioloop() -> None:
    async def main() -> None:
        async with RawServer() as raw:
            client = Recording(f"ws://127.0.0.1:{raw.port}/")
            await asyncio.wait_for(client.connect(), TIMEOUT)
            peer = await raw.next()
            assert await asyncio.to_thread(client.send, "from a thread") is None
            event = await peer.next_event()
            assert isinstance(event, TextReceived) and event.data == "from a thread"
            await asyncio.to_thread(client.close)
            assert isinstance(await peer.next_event(), CloseReceived)
            await peer.send(peer.core.data_to_send())
            await peer.close()
            assert (await client.wait_closed())[0] == 1000

    run(main())


def test_connects_over_a_unix_socket(tmp_path: Any) -> None:
    path = str(tmp_path / "ws.sock")

    async def main() -> None:
        async with serving(unix=path):
            client = Recording(f"ws+unix://{path}")
            await asyncio.wait_for(client.connect(), TIMEOUT)
            client.send("over unix")
            assert str(await client.next_message()) == "over unix"
            client.close()
            assert (await client.wait_closed())[0] == 1000

    run(main())


def test_a_server_that_never_answers_the_handshake_times_out() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # reads the request, answers nothing, until the client leaves
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        async with server:
            client = Recording(f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}/")
            client.open_timeout = 0.2
            with pytest.raises(TimeoutError, match="no WebSocket handshake"):
                await asyncio.wait_for(client.connect(), TIMEOUT)
            assert (await client.wait_closed())[0] == 1006

    run(main())
