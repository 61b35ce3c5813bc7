"""serve() and Server: negotiation, process_request, timers, handler errors, shutdown, unix, TLS, reuse_port."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import ssl
import tempfile
from collections.abc import Awaitable, Callable, Iterator

import pytest
from aio_support import (
    HOST,
    Accepted,
    Records,
    echo,
    eventually,
    http_exchange,
    open_tcp,
    port_of,
    raw_client,
    serving,
    tls_contexts,
    url,
    within,
)

from ws4py.asyncio import (
    Connection,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeError,
    Server,
    connect,
    serve,
)
from ws4py.protocol import (
    ClientHandshake,
    CloseReceived,
    Event,
    Headers,
    PingReceived,
    Request,
    Response,
    Role,
    TextReceived,
)
from ws4py.protocol import Connection as CoreConnection

WS_REQUEST = (
    "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: {version}\r\n{extra}\r\n"
)


def ws_request(path: str = "/", version: str = "13", extra: str = "") -> bytes:
    return WS_REQUEST.format(path=path, host=HOST, version=version, extra=extra).encode()


async def idle(conn: Connection) -> None:
    await conn.wait_closed()


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context) with a certificate for localhost and 127.0.0.1 from a test CA."""
    return tls_contexts("localhost", HOST)


@pytest.fixture
def short_dir() -> Iterator[str]:
    """A directory with a short path (a Unix socket path is limited to about 100 bytes)."""
    path = tempfile.mkdtemp(prefix="ws4py-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


# -- negotiation ------------------------------------------------------------------


async def test_the_server_picks_the_first_of_its_subprotocols_the_client_offers() -> None:
    accepted = Accepted(idle)
    async with (
        serving(accepted, subprotocols=["chat", "superchat"]) as server,
        connect(url(server), subprotocols=["superchat", "chat"]) as conn,
    ):
        server_side = await accepted.next()
        assert conn.subprotocol == server_side.subprotocol == "chat"
        assert conn.response is not None
        assert conn.response.headers["Sec-WebSocket-Protocol"] == "chat"


async def test_no_subprotocol_is_agreed_when_none_in_common() -> None:
    accepted = Accepted(idle)
    async with (
        serving(accepted, subprotocols=["chat"]) as server,
        connect(url(server), subprotocols=["mqtt"]) as conn,
    ):
        assert conn.subprotocol is None
        assert (await accepted.next()).subprotocol is None
        assert conn.response is not None and "Sec-WebSocket-Protocol" not in conn.response.headers


async def test_compression_is_negotiated_by_default() -> None:
    accepted = Accepted()
    async with serving(accepted) as server, connect(url(server)) as conn:
        assert conn.response is not None
        assert conn.response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
        await conn.send("compressible " * 100)
        assert await within(conn.recv()) == "compressible " * 100


async def test_the_server_can_refuse_compression() -> None:
    async with serving(compression=None) as server, connect(url(server)) as conn:
        assert conn.request is not None and "Sec-WebSocket-Extensions" in conn.request.headers  # offered
        assert conn.response is not None and "Sec-WebSocket-Extensions" not in conn.response.headers
        await conn.send("plain " * 100)
        assert await within(conn.recv()) == "plain " * 100


async def test_an_unknown_compression_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        serve(echo, HOST, 0, compression="gzip")


async def test_a_disallowed_origin_is_refused_with_403() -> None:
    async with serving(origins=["https://good.example"]) as server:
        with pytest.raises(HandshakeError) as refused:
            await within(connect(url(server), origin="https://evil.example"))
        assert refused.value.status == 403
        with pytest.raises(HandshakeError) as refused:
            await within(connect(url(server)))  # no Origin at all
        assert refused.value.status == 403
        async with connect(url(server), origin="https://good.example") as conn:
            await conn.send("welcome")
            assert await within(conn.recv()) == "welcome"


async def test_none_in_origins_allows_requests_without_origin() -> None:
    async with serving(origins=["https://good.example", None]) as server, connect(url(server)) as conn:
        await conn.send("no origin")
        assert await within(conn.recv()) == "no origin"


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (ws_request().replace(b"GET", b"POST"), 405),
        (ws_request(extra="").replace(b"Upgrade: websocket\r\n", b""), 400),
    ],
    ids=["garbage", "post", "no-upgrade"],
)
async def test_a_bad_request_gets_an_http_error_and_the_connection_closes(request_bytes: bytes, status: int) -> None:
    accepted = Accepted()
    async with serving(accepted) as server:
        got, _, _ = await http_exchange(port_of(server), request_bytes)
        assert got == status
        await eventually(lambda: not server.connections, what="the refused connection forgotten")
    assert accepted.queue.empty()


async def test_an_unsupported_version_gets_426_with_the_supported_version() -> None:
    async with serving() as server:
        status, headers, _ = await http_exchange(port_of(server), ws_request(version="8"))
        assert status == 426
        assert headers["sec-websocket-version"] == "13"


# -- process_request ------------------------------------------------------------------

Hook = Callable[[Connection, Request], "Response | Awaitable[Response | None] | None"]


def sync_and_async(hook: Callable[[Connection, Request], Response | None]) -> list[Hook]:
    async def async_hook(conn: Connection, request: Request) -> Response | None:
        await asyncio.sleep(0.001)
        return hook(conn, request)

    return [hook, async_hook]


def health_check(conn: Connection, request: Request) -> Response | None:
    if request.target == "/healthz":
        return conn.respond(200, "ok")
    if request.target == "/missing":
        return conn.respond(404, "no such page")
    return None


@pytest.mark.parametrize("hook", sync_and_async(health_check), ids=["sync", "async"])
async def test_process_request_answers_plain_http(hook: Hook) -> None:
    async with serving(process_request=hook) as server:
        request = f"GET /missing HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
        status, headers, body = await http_exchange(port_of(server), request)
        assert (status, body) == (404, b"no such page")
        assert headers["content-type"].startswith("text/plain")
        assert headers["content-length"] == str(len(body))
        assert headers["connection"] == "close"
        status, _, body = await http_exchange(port_of(server), b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (status, body) == (200, b"ok")
        async with connect(url(server, "/ws")) as conn:  # None: the handshake goes on
            await conn.send("through")
            assert await within(conn.recv()) == "through"


@pytest.mark.parametrize(
    "hook",
    sync_and_async(lambda conn, request: conn.respond(403, "go away") if "X-Token" not in request.headers else None),
    ids=["sync", "async"],
)
async def test_process_request_refuses_a_handshake_with_its_status(hook: Hook) -> None:
    async with serving(process_request=hook) as server:
        with pytest.raises(HandshakeError) as refused:
            await within(connect(url(server)))
        assert refused.value.status == 403
        async with connect(url(server), additional_headers={"X-Token": "t"}) as conn:
            await conn.send("let in")
            assert await within(conn.recv()) == "let in"


async def test_process_request_sees_the_request_and_the_connection() -> None:
    seen: list[tuple[Connection, Request]] = []

    def hook(conn: Connection, request: Request) -> None:
        seen.append((conn, request))

    accepted = Accepted(idle)
    async with serving(accepted, process_request=hook) as server, connect(url(server, "/p?q=1")):
        server_side = await accepted.next()
        [(conn, request)] = seen
        assert conn is server_side
        assert conn.request is request
        assert request.target == "/p?q=1"
        assert request.headers["Upgrade"] == "websocket"


async def test_a_message_sent_with_the_request_survives_an_async_process_request() -> None:
    async def let_through(conn: Connection, request: Request) -> None:
        await asyncio.sleep(0.05)

    accepted = Accepted()
    async with serving(accepted, process_request=let_through, compression=None) as server:
        reader, writer = await open_tcp(port_of(server))
        try:
            handshake = ClientHandshake(HOST, "/", port=port_of(server))
            early = CoreConnection(Role.CLIENT).send_text("sent with the request")
            writer.write(handshake.request_bytes() + early)
            data = b""
            while handshake.receive_data(data) is None:
                data = await within(reader.read(1))
            core = handshake.connection()
            events: list[Event] = []
            while not events:
                events = core.receive_data(await within(reader.read(65536)))
            assert events[0] == TextReceived("sent with the request")  # echoed
        finally:
            writer.close()


async def test_the_response_of_process_request_keeps_its_headers_and_gets_a_true_content_length() -> None:
    def hook(conn: Connection, request: Request) -> Response:
        return Response(200, "OK", Headers([("X-Custom", "yes"), ("Content-Length", "999")]), b"hello")

    async with serving(process_request=hook) as server:
        status, headers, body = await http_exchange(port_of(server), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (status, body) == (200, b"hello")
        assert headers["x-custom"] == "yes"
        assert headers["content-length"] == "5"


def failing_hook(conn: Connection, request: Request) -> Response | None:
    raise RuntimeError("the hook is broken")


def wrong_type_hook(conn: Connection, request: Request) -> Response | None:
    return "not a response"  # type: ignore[return-value]


@pytest.mark.parametrize(
    "hook",
    [*sync_and_async(failing_hook), wrong_type_hook],
    ids=["raises-sync", "raises-async", "wrong-type"],
)
async def test_a_failing_process_request_answers_500_and_the_server_carries_on(hook: Hook) -> None:
    logger = logging.getLogger("test.asyncio.process_request")
    with Records(logger) as records:
        async with serving(process_request=hook, logger=logger) as server:
            status, _, _ = await http_exchange(port_of(server), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert status == 500
            with pytest.raises(HandshakeError) as refused:
                await within(connect(url(server)))
            assert refused.value.status == 500
            await eventually(lambda: not server.connections, what="refused connections forgotten")
    assert "process_request failed" in records.messages(logging.ERROR)


# -- open_timeout -------------------------------------------------------------------


@pytest.mark.parametrize("sent", [b"", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n"], ids=["nothing", "half-a-request"])
async def test_open_timeout_drops_a_peer_that_never_finishes_its_handshake(sent: bytes) -> None:
    accepted = Accepted()
    async with serving(accepted, open_timeout=0.2) as server:
        reader, writer = await open_tcp(port_of(server))
        try:
            writer.write(sent)
            assert await within(reader.read(), 5.0) == b""  # dropped, without a response
        finally:
            writer.close()
        await eventually(lambda: not server.connections, what="the dropped connection forgotten")
    assert accepted.queue.empty()


async def test_a_slow_async_process_request_is_bounded_by_open_timeout() -> None:
    hook_done = asyncio.Event()

    async def slow_hook(conn: Connection, request: Request) -> None:
        try:
            await asyncio.sleep(0.5)
        finally:
            hook_done.set()

    async with serving(process_request=slow_hook, open_timeout=0.1) as server:
        with pytest.raises((HandshakeError, ConnectionError)):
            await within(connect(url(server)), 5.0)
        await within(hook_done.wait())
        await eventually(lambda: not server.connections, what="the dropped connection forgotten")


# -- keepalive ------------------------------------------------------------------------


async def test_a_peer_that_never_answers_pings_is_closed_with_1011() -> None:
    accepted = Accepted(idle)
    async with serving(accepted, ping_interval=0.2, ping_timeout=0.2, close_timeout=0.3) as server:
        peer = await raw_client(port_of(server))  # completes the handshake, then never answers
        try:
            server_side = await accepted.next()
            await within(server_side.wait_closed(), 5.0)
            events = peer.core.receive_data(await peer.read_to_eof())
            assert isinstance(events[0], PingReceived)
            assert events[-1] == CloseReceived(1011, "keepalive ping timeout")
            assert server_side.close_code == 1006  # the peer never answered the close either
        finally:
            await peer.close()


async def test_a_peer_that_answers_pings_stays_open_across_many_intervals() -> None:
    accepted = Accepted()
    async with (
        serving(accepted, ping_interval=0.05, ping_timeout=0.05) as server,
        connect(url(server), ping_interval=None) as conn,
    ):
        server_side = await accepted.next()
        await asyncio.sleep(0.5)  # ten intervals: ws4py's client answers every ping by itself
        assert server_side.open
        await conn.send("still here")
        assert await within(conn.recv()) == "still here"


async def test_keepalive_pings_go_every_ping_interval_even_with_a_long_ping_timeout() -> None:
    accepted = Accepted(idle)
    async with serving(accepted, ping_interval=0.05, ping_timeout=3.0) as server:
        peer = await raw_client(port_of(server))
        try:
            await accepted.next()
            pings = 0

            async def answer_three_pings() -> None:
                nonlocal pings
                while pings < 3:
                    if isinstance(await peer.next_event(), PingReceived):
                        pings += 1
                        await peer.send(peer.core.data_to_send())  # the pong

            # Three pings are due within 0.15 s, long before a single ping_timeout runs out.
            await within(answer_three_pings(), 1.5)
        finally:
            await peer.close()


async def test_ping_interval_none_turns_keepalive_off() -> None:
    accepted = Accepted(idle)
    async with serving(accepted, ping_interval=None) as server:
        peer = await raw_client(port_of(server))
        try:
            await accepted.next()
            await asyncio.sleep(0.1)
            await peer.send(peer.core.send_close(1000))
            events = peer.core.receive_data(await peer.read_to_eof())
            assert events == [CloseReceived(1000, "")]  # no ping came before the close
        finally:
            await peer.close()


# -- handlers ---------------------------------------------------------------------------


async def test_a_handler_that_raises_closes_with_1011_and_the_server_keeps_serving() -> None:
    async def fragile(conn: Connection) -> None:
        if await conn.recv() == "boom":
            raise ValueError("the handler broke")
        await echo(conn)

    logger = logging.getLogger("test.asyncio.handler")
    with Records(logger) as records:
        async with serving(fragile, logger=logger) as server:
            async with connect(url(server)) as survivor, connect(url(server)) as victim:
                await victim.send("boom")
                with pytest.raises(ConnectionClosedError) as closed:
                    await within(victim.recv())
                assert (closed.value.code, closed.value.reason) == (1011, "internal error")
                await survivor.send("hello")
                await survivor.send("again")
                assert await within(survivor.recv()) == "again"
            async with connect(url(server)) as newcomer:
                await newcomer.send("x")
                await newcomer.send("y")
                assert await within(newcomer.recv()) == "y"
    assert "connection handler failed" in records.messages(logging.ERROR)


async def test_a_handler_that_returns_closes_with_1000() -> None:
    async def brief(conn: Connection) -> None:
        return None

    async with serving(brief) as server, connect(url(server)) as conn:
        with pytest.raises(ConnectionClosedOK):
            await within(conn.recv())
        assert conn.close_code == 1000


# -- shutdown -----------------------------------------------------------------------------


async def test_leaving_async_with_serve_closes_every_connection_with_1001_and_waits_for_handlers() -> None:
    accepted = Accepted()
    async with serve(accepted, HOST, 0, close_timeout=2.0) as server:
        clients = [await within(connect(url(server))) for _ in range(5)]
        for _ in clients:
            await accepted.next()
    assert len(accepted.finished) == 5
    assert server.connections == set()
    for conn in clients:
        with pytest.raises(ConnectionClosedOK) as closed:
            await within(conn.recv())
        assert (closed.value.code, closed.value.reason) == (1001, "server shutting down")
        await within(conn.wait_closed())


async def test_cancelling_serve_forever_shuts_down_gracefully() -> None:
    accepted = Accepted()
    server = await serve(accepted, HOST, 0, close_timeout=2.0)
    forever = asyncio.ensure_future(server.serve_forever())
    port = port_of(server)
    clients = [await within(connect(url(server))) for _ in range(3)]
    for _ in clients:
        await accepted.next()
    forever.cancel()
    with pytest.raises(asyncio.CancelledError):
        await within(forever)
    assert len(accepted.finished) == 3
    assert server.connections == set()
    for conn in clients:
        await within(conn.wait_closed())
        assert conn.close_code == 1001
    with pytest.raises(OSError):
        await within(connect(f"ws://{HOST}:{port}/"))


async def test_a_handler_that_ignores_the_close_is_cancelled_within_the_bound() -> None:
    async def stubborn(conn: Connection) -> None:
        await asyncio.sleep(3600)

    accepted = Accepted(stubborn)
    server = await serve(accepted, HOST, 0, close_timeout=0.2)
    conn = await within(connect(url(server)))
    await accepted.next()
    server.close()
    # close_timeout for the connection, close_timeout more for the handler, and a second.
    await within(server.wait_closed(), 2 * 0.2 + 1.0 + 2.0)
    [error] = accepted.errors
    assert isinstance(error, asyncio.CancelledError)
    assert server.connections == set()
    await within(conn.wait_closed())
    assert conn.close_code == 1001


async def test_shutdown_drops_a_peer_that_never_answers_the_close_after_close_timeout() -> None:
    accepted = Accepted()
    server = await serve(accepted, HOST, 0, close_timeout=0.2)
    peer = await raw_client(port_of(server))
    try:
        await accepted.next()
        server.close()
        await within(server.wait_closed(), 3.0)
        assert accepted.finished and server.connections == set()
        events = peer.core.receive_data(await peer.read_to_eof())
        assert events == [CloseReceived(1001, "server shutting down")]
    finally:
        await peer.close()


async def test_two_concurrent_wait_closed_both_return_once_everything_is_closed() -> None:
    accepted = Accepted(idle)
    server = await serve(accepted, HOST, 0, close_timeout=2.0)  # grace period: 2 * 2 + 1 = 5 s
    conn = await within(connect(url(server)))
    await accepted.next()
    server.close()
    # The client answers the close at once: both waits end long before the grace period.
    await within(asyncio.gather(server.wait_closed(), server.wait_closed()), 3.0)
    await within(conn.wait_closed())


async def test_close_without_closing_connections_stops_listening_only() -> None:
    accepted = Accepted()
    server = await serve(accepted, HOST, 0, close_timeout=2.0)
    port = port_of(server)
    conn = await within(connect(url(server)))
    await accepted.next()
    server.close(close_connections=False)
    with pytest.raises(OSError):
        await within(connect(f"ws://{HOST}:{port}/"))
    await conn.send("still served")
    assert await within(conn.recv()) == "still served"
    await conn.close()
    await within(server.wait_closed())
    assert accepted.finished


async def test_await_serve_starts_listening_and_exposes_its_sockets() -> None:
    server = await serve(echo, HOST, 0)
    try:
        assert isinstance(server, Server)
        [sock] = server.sockets
        assert sock.getsockname()[0] == HOST
        async with connect(url(server)) as conn:
            await conn.send("up")
            assert await within(conn.recv()) == "up"
    finally:
        server.close()
        await within(server.wait_closed())


async def test_the_logger_gets_the_listening_address() -> None:
    logger = logging.getLogger("test.asyncio.listening")
    with Records(logger) as records:
        async with serving(logger=logger) as server:
            port = port_of(server)
    assert f"server listening on ('{HOST}', {port})" in records.messages(logging.INFO)


# -- unix, TLS, reuse_port ------------------------------------------------------------------


async def test_a_unix_socket_server_serves_a_unix_socket_client(short_dir: str) -> None:
    path = os.path.join(short_dir, "ws.sock")
    accepted = Accepted()
    async with serving(accepted, unix=path), connect("ws://localhost/over-unix", unix=path) as conn:
        await conn.send("through a unix socket")
        assert await within(conn.recv()) == "through a unix socket"
        server_side = await accepted.next()
        assert server_side.local_address == path
        assert server_side.request is not None and server_side.request.target == "/over-unix"


async def test_tls_with_a_trusted_certificate(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, client_context = tls
    accepted = Accepted()
    async with serving(accepted, ssl=server_context) as server:
        for host in ("localhost", HOST):
            async with connect(f"wss://{host}:{port_of(server)}/", ssl=client_context) as conn:
                await conn.send("secret")
                assert await within(conn.recv()) == "secret"
                server_side = await accepted.next()
                assert server_side.transport is not None
                assert server_side.transport.get_extra_info("ssl_object") is not None


async def test_a_client_that_does_not_trust_the_certificate_fails_verification(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, _ = tls
    async with serving(ssl=server_context, close_timeout=0.2) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            await within(connect(f"wss://localhost:{port_of(server)}/"))
        server.close()
        server.connections.clear()  # see the next test


async def test_a_failed_tls_handshake_leaves_no_connection_behind(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    server_context, _ = tls
    server = await serve(echo, HOST, 0, ssl=server_context, close_timeout=0.2)
    try:
        reader, writer = await open_tcp(port_of(server))
        writer.write(b"this is not a TLS client hello\r\n\r\n")
        await within(reader.read(), 5.0)
        writer.close()
        await eventually(lambda: not server.connections, 2.0, "the failed TLS connection forgotten")
    finally:
        server.close()
        server.connections.clear()  # else wait_closed waits out 2 * close_timeout + 1 + 5 seconds
        await within(server.wait_closed())


async def test_reuse_port_lets_two_servers_share_a_port() -> None:
    first = await serve(echo, HOST, 0, reuse_port=True)
    port = port_of(first)
    second = await serve(echo, HOST, port, reuse_port=True)
    try:
        assert port_of(second) == port
        for _ in range(4):
            async with connect(f"ws://{HOST}:{port}/") as conn:
                await conn.send("shared")
                assert await within(conn.recv()) == "shared"
        first.close()
        await within(first.wait_closed())
        async with connect(f"ws://{HOST}:{port}/") as conn:  # the second is still there
            await conn.send("still shared")
            assert await within(conn.recv()) == "still shared"
    finally:
        for server in (first, second):
            server.close()
            await within(server.wait_closed())


async def test_without_reuse_port_a_second_server_cannot_bind_the_port() -> None:
    async with serving() as first:
        with pytest.raises(OSError):
            await serve(echo, HOST, port_of(first))
