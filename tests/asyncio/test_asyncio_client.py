"""connect(): the three ways to use it, headers, refusals, timeouts, reconnection, proxies, unix and TLS.

The tests taking ``open_client`` run against the callbacks client too
(``ws4py.async_websocket.connect``, through tests/asyncio/callbacks_client.py).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import shutil
import socket
import ssl
import tempfile
from collections.abc import AsyncGenerator, Callable, Iterator
from typing import Any, cast

import pytest
from aio_proxies import ConnectProxy, SocksProxy
from aio_support import HOST, Accepted, RawServer, Records, echo, port_of, serving, tls_contexts, url, within

from ws4py.asyncio import (
    Connection,
    ConnectionClosedError,
    ConnectionClosedOK,
    HandshakeError,
    Server,
    connect,
    serve,
)
from ws4py.protocol import CloseReceived, PingReceived, Request, Response


async def idle(conn: Connection) -> None:
    await conn.wait_closed()


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context): a certificate for ``localhost`` only, from a test CA."""
    return tls_contexts("localhost")


@pytest.fixture
def short_dir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="ws4py-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def reconnecting(uri: str, **kwargs: Any) -> contextlib.aclosing[AsyncGenerator[Connection, None]]:
    """``async for conn in connect(uri)``, closed (with its last connection) when the block ends."""
    return contextlib.aclosing(cast(AsyncGenerator[Connection, None], connect(uri, **kwargs).__aiter__()))


# -- the three ways ----------------------------------------------------------------


async def test_await_connect_returns_an_open_connection() -> None:
    async with serving() as server:
        conn = await within(connect(url(server)))
        assert isinstance(conn, Connection)
        assert conn.open
        await conn.send("awaited")
        assert await within(conn.recv()) == "awaited"
        await within(conn.close())
        assert conn.closed


async def test_async_with_connect_closes_with_1000_on_exit(open_client: Callable[..., Any]) -> None:
    accepted = Accepted(idle)
    async with serving(accepted) as server:
        async with open_client(url(server)) as conn:
            server_side = await accepted.next()
        assert conn.closed
        await within(server_side.wait_closed())
        assert server_side.close_code == 1000


async def test_async_with_connect_closes_on_an_exception_too() -> None:
    async with serving() as server:
        with pytest.raises(KeyError):
            async with connect(url(server)) as conn:
                raise KeyError("in the block")
        assert conn.closed


# -- the request ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{"X-Token": "secret", "X-Trace": "abc"}, [("X-Token", "secret"), ("X-Trace", "abc")]],
    ids=["dict", "list"],
)
async def test_additional_headers_reach_the_server(headers: Any, open_client: Callable[..., Any]) -> None:
    accepted = Accepted(idle)
    async with serving(accepted) as server, open_client(url(server), additional_headers=headers):
        request = (await accepted.next()).request
        assert request is not None
        assert request.headers["X-Token"] == "secret"
        assert request.headers["X-Trace"] == "abc"


async def test_origin_and_the_host_header(open_client: Callable[..., Any]) -> None:
    accepted = Accepted(idle)
    async with serving(accepted) as server, open_client(url(server, "/a?b=c"), origin="https://app.example"):
        request = (await accepted.next()).request
        assert request is not None
        assert request.headers["Origin"] == "https://app.example"
        assert request.headers["Host"] == f"{HOST}:{port_of(server)}"
        assert request.target == "/a?b=c"


async def test_a_uri_without_a_path_asks_for_the_root(open_client: Callable[..., Any]) -> None:
    accepted = Accepted(idle)
    async with serving(accepted) as server, open_client(f"ws://{HOST}:{port_of(server)}"):
        request = (await accepted.next()).request
        assert request is not None and request.target == "/"


async def test_compression_none_offers_no_extension(open_client: Callable[..., Any]) -> None:
    accepted = Accepted(idle)
    async with serving(accepted) as server, open_client(url(server), compression=None) as conn:
        assert conn.request is not None and "Sec-WebSocket-Extensions" not in conn.request.headers
        assert conn.response is not None and "Sec-WebSocket-Extensions" not in conn.response.headers


@pytest.mark.parametrize(
    ("uri", "kwargs"),
    [
        ("http://127.0.0.1/", {}),
        ("ws:///nohost", {}),
        ("ws://127.0.0.1/", {"ssl": ssl.create_default_context()}),
        ("ws://127.0.0.1/", {"compression": "gzip"}),
    ],
    ids=["http-scheme", "no-host", "ssl-for-ws", "unknown-compression"],
)
async def test_invalid_arguments_raise_value_error(uri: str, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        connect(uri, **kwargs)


async def test_an_unsupported_proxy_scheme_raises_value_error() -> None:
    with pytest.raises(ValueError):
        await within(connect("ws://127.0.0.1:9/", proxy="ftp://127.0.0.1:21"))


# -- refusals and timeouts ----------------------------------------------------------------


async def test_a_refused_handshake_raises_handshake_error_with_the_status(open_client: Callable[..., Any]) -> None:
    def refuse(conn: Connection, request: Request) -> Response:
        return conn.respond(403, "forbidden here")

    async with serving(process_request=refuse) as server:
        with pytest.raises(HandshakeError) as refused:
            await within(open_client(url(server)))
        assert refused.value.status == 403
        assert ("Connection", "close") in refused.value.headers


async def test_a_server_that_is_not_there_raises_connection_refused(open_client: Callable[..., Any]) -> None:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        with pytest.raises(ConnectionRefusedError):
            await within(open_client(f"ws://{HOST}:{port}/"))


async def test_open_timeout_bounds_the_handshake_with_a_listener_that_never_answers(
    open_client: Callable[..., Any],
) -> None:
    with socket.socket() as listener:
        listener.bind((HOST, 0))
        listener.listen()  # the kernel accepts; nobody ever reads or answers
        port = listener.getsockname()[1]
        with pytest.raises(asyncio.TimeoutError):  # TimeoutError itself since Python 3.11
            await within(open_client(f"ws://{HOST}:{port}/", open_timeout=0.2), 5.0)


async def test_the_client_refuses_a_response_that_is_not_a_websocket_upgrade(open_client: Callable[..., Any]) -> None:
    async def not_websocket(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(not_websocket, HOST, 0)
    try:
        with pytest.raises(HandshakeError) as refused:
            await within(open_client(url(server)))
        assert refused.value.status == 200
    finally:
        server.close()
        await server.wait_closed()


async def test_the_client_max_size_fails_a_too_large_message_with_1009(open_client: Callable[..., Any]) -> None:
    accepted = Accepted(idle)
    async with serving(accepted) as server, open_client(url(server), max_size=1000) as conn:
        server_side = await accepted.next()
        await server_side.send(b"x" * 1000)
        assert await within(conn.recv()) == b"x" * 1000
        await server_side.send(b"x" * 1001)
        with pytest.raises(ConnectionClosedError) as closed:
            await within(conn.recv())
        assert closed.value.code == 1009
        await within(server_side.wait_closed())
        assert server_side.close_code == 1009


async def test_the_client_keepalive_closes_with_1011_when_the_server_never_answers_pings(
    open_client: Callable[..., Any],
) -> None:
    async with RawServer() as raw:
        uri = f"ws://{HOST}:{raw.port}/"
        conn = await within(open_client(uri, ping_interval=0.1, ping_timeout=0.1, close_timeout=0.2))
        peer = await raw.next()
        events = await peer.until_close()
        assert isinstance(events[0], PingReceived)
        assert events[-1] == CloseReceived(1011, "keepalive ping timeout")
        with pytest.raises(ConnectionClosedError):
            await within(conn.recv())
        await within(conn.wait_closed())
        await peer.close()


# -- reconnection --------------------------------------------------------------------------


async def test_async_for_reconnects_after_the_server_restarts_on_the_same_port() -> None:
    accepted = Accepted()
    server = await serve(accepted, HOST, 0, close_timeout=2.0)
    port = port_of(server)
    restarted: list[Server] = []

    async def restart_later() -> None:
        await asyncio.sleep(0.3)  # a few attempts are refused meanwhile
        restarted.append(await serve(accepted, HOST, port, close_timeout=2.0))

    logger = logging.getLogger("test.asyncio.reconnect")
    connections: list[Connection] = []
    restarter = None
    try:
        with Records(logger) as records:
            async with reconnecting(
                f"ws://{HOST}:{port}/", reconnect_delay=0.02, max_reconnect_delay=0.1, logger=logger
            ) as attempts:
                async for conn in attempts:
                    connections.append(conn)
                    await conn.send(f"connection {len(connections)}")
                    assert await within(conn.recv()) == f"connection {len(connections)}"
                    if len(connections) == 2:
                        break
                    server.close()
                    await within(server.wait_closed())
                    with pytest.raises(ConnectionClosedOK):
                        await within(conn.recv())
                    restarter = asyncio.ensure_future(restart_later())
        assert len(connections) == 2
        assert connections[0].close_code == 1001
        assert connections[1].closed  # closed by the generator's end
        assert any("retrying" in message for message in records.messages(logging.INFO))
    finally:
        if restarter is not None:
            await within(restarter)
        for other in restarted:
            other.close()
            await within(other.wait_closed())


async def test_async_for_does_not_retry_a_403() -> None:
    calls: list[Request] = []

    def refuse(conn: Connection, request: Request) -> Response:
        calls.append(request)
        return conn.respond(403, "never")

    async with serving(process_request=refuse) as server:
        with pytest.raises(HandshakeError) as refused:
            async with reconnecting(url(server), reconnect_delay=0.01) as attempts:
                async for _ in attempts:
                    pytest.fail("a refused handshake gave a connection")
        assert refused.value.status == 403
        assert len(calls) == 1


async def test_async_for_retries_a_503_until_the_server_accepts() -> None:
    calls: list[Request] = []

    def busy_twice(conn: Connection, request: Request) -> Response | None:
        calls.append(request)
        return conn.respond(503, "busy") if len(calls) <= 2 else None

    async with serving(process_request=busy_twice) as server:
        async with reconnecting(url(server), reconnect_delay=0.01) as attempts:
            async for conn in attempts:
                await conn.send("finally")
                assert await within(conn.recv()) == "finally"
                break
        assert len(calls) == 3


async def test_async_for_retries_a_server_that_closes_during_the_handshake() -> None:
    # A server restarting or shedding load closes connections before it answers: worth retrying.
    dropped: list[int] = []

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the whole request, then no answer at all
        dropped.append(1)
        writer.close()

    raw = await asyncio.start_server(drop, HOST, 0)
    port = raw.sockets[0].getsockname()[1]
    real: list[Server] = []

    async def serve_after_two_drops() -> None:
        while len(dropped) < 2:
            await asyncio.sleep(0.01)
        raw.close()
        await raw.wait_closed()
        real.append(await serve(Accepted(), HOST, port, close_timeout=2.0))

    switcher = asyncio.ensure_future(serve_after_two_drops())
    try:
        async with reconnecting(f"ws://{HOST}:{port}/", reconnect_delay=0.02, max_reconnect_delay=0.1) as attempts:
            async for conn in attempts:
                await conn.send("at last")
                assert await within(conn.recv()) == "at last"
                break
        assert len(dropped) == 2
    finally:
        await within(switcher)
        for server in real:
            server.close()
            await within(server.wait_closed())


async def test_async_for_does_not_retry_a_certificate_that_fails_verification(
    tls: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, _ = tls
    async with serving(ssl=server_context, close_timeout=0.2) as server:
        with pytest.raises(ssl.SSLCertVerificationError):
            async with reconnecting(f"wss://localhost:{port_of(server)}/", reconnect_delay=0.01) as attempts:
                async for _ in attempts:
                    pytest.fail("an untrusted certificate gave a connection")
        server.close()
        server.connections.clear()  # a failed TLS handshake stays there (see test_asyncio_server.py)


# -- proxies ------------------------------------------------------------------------------


async def test_through_an_http_connect_proxy(open_client: Callable[..., Any]) -> None:
    async with serving() as server, ConnectProxy() as proxy:
        async with open_client(url(server), proxy=proxy.url) as conn:
            await conn.send("via CONNECT")
            assert await within(conn.recv()) == "via CONNECT"
        assert proxy.targets == [(HOST, port_of(server))]
        [head] = proxy.heads
        assert head.startswith(f"CONNECT {HOST}:{port_of(server)} HTTP/1.1\r\n".encode())
        assert f"Host: {HOST}:{port_of(server)}".encode() in head


async def test_http_proxy_credentials_go_in_proxy_authorization(open_client: Callable[..., Any]) -> None:
    async with serving() as server, ConnectProxy() as proxy:
        proxy_url = proxy.url.replace("http://", "http://us%40er:p%3Ass@")
        async with open_client(url(server), proxy=proxy_url) as conn:
            await conn.send("authenticated")
            assert await within(conn.recv()) == "authenticated"
        expected = base64.b64encode(b"us@er:p:ss").decode()
        assert f"Proxy-Authorization: Basic {expected}".encode() in proxy.heads[0]


async def test_a_proxy_refusing_connect_raises_handshake_error_with_its_status(open_client: Callable[..., Any]) -> None:
    async with serving() as server, ConnectProxy(refuse=407) as proxy:
        with pytest.raises(HandshakeError) as refused:
            await within(open_client(url(server), proxy=proxy.url))
        assert refused.value.status == 407


async def test_tls_through_an_http_connect_proxy(
    tls: tuple[ssl.SSLContext, ssl.SSLContext], open_client: Callable[..., Any]
) -> None:
    server_context, client_context = tls
    async with serving(ssl=server_context) as server, ConnectProxy() as proxy:
        uri = f"wss://localhost:{port_of(server)}/"
        async with open_client(uri, ssl=client_context, proxy=proxy.url) as conn:
            await conn.send("tunnelled TLS")
            assert await within(conn.recv()) == "tunnelled TLS"
        assert proxy.targets == [("localhost", port_of(server))]


@pytest.mark.parametrize(
    ("scheme", "credentials"),
    [("socks5", None), ("socks5", ("alice", "s3cret")), ("socks4", None)],
    ids=["socks5", "socks5-auth", "socks4"],
)
async def test_through_a_socks_proxy(
    scheme: str, credentials: tuple[str, str] | None, open_client: Callable[..., Any]
) -> None:
    async with serving() as server, SocksProxy(credentials) as proxy:
        async with open_client(url(server), proxy=proxy.url(scheme)) as conn:
            await conn.send(f"via {scheme}")
            assert await within(conn.recv()) == f"via {scheme}"
        assert proxy.targets == [(HOST, port_of(server))]
        assert proxy.version == int(scheme[-1])


# -- unix and TLS -------------------------------------------------------------------------------


async def test_unix_connects_to_the_path_and_the_uri_names_the_host(
    short_dir: str, open_client: Callable[..., Any]
) -> None:
    path = os.path.join(short_dir, "ws.sock")
    accepted = Accepted(echo)
    async with serving(accepted, unix=path), open_client("ws://example.com/room", unix=path) as conn:
        await conn.send("local")
        assert await within(conn.recv()) == "local"
        request = (await accepted.next()).request
        assert request is not None
        assert request.headers["Host"] == "example.com"
        assert request.target == "/room"


async def test_wss_with_the_test_ca(
    tls: tuple[ssl.SSLContext, ssl.SSLContext], open_client: Callable[..., Any]
) -> None:
    server_context, client_context = tls
    async with (
        serving(ssl=server_context) as server,
        open_client(f"wss://localhost:{port_of(server)}/", ssl=client_context) as conn,
    ):
        await conn.send("over TLS")
        assert await within(conn.recv()) == "over TLS"
        assert conn.transport is not None
        assert conn.transport.get_extra_info("ssl_object") is not None


async def test_server_hostname_overrides_the_name_checked(
    tls: tuple[ssl.SSLContext, ssl.SSLContext], open_client: Callable[..., Any]
) -> None:
    server_context, client_context = tls
    async with serving(ssl=server_context, close_timeout=0.2) as server:
        try:
            uri = f"wss://{HOST}:{port_of(server)}/"  # the certificate is for localhost only
            async with open_client(uri, ssl=client_context, server_hostname="localhost") as conn:
                await conn.send("checked against localhost")
                assert await within(conn.recv()) == "checked against localhost"
        finally:
            server.close()
            server.connections.clear()  # the failed TLS handshake's connection (see test_asyncio_server.py)
