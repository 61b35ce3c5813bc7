"""ws4py's asyncio layer over TLS (``wss://``) with a trustme CA, on asyncio's default loop and on uvloop.

* ``ws4py.asyncio.serve`` and the callback-style ``WebSocketProtocol`` on TLS,
  with ``websockets``' and ``aiohttp``'s clients;
* ``ws4py.asyncio.connect`` to ``websockets``' asyncio server on TLS, and
  its refusal of a certificate from an unknown authority.

Each test runs its server and its client on one event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
import trustme
from interop_peers import TIMEOUT, Journal, async_handler
from test_asyncio_interop import LOOP_PARAMS, JournalCallbackWebSocket, check_loop, run_in_new_loop, serve_handler
from websockets.asyncio.client import connect as websockets_connect
from websockets.asyncio.server import serve as websockets_serve

import ws4py.asyncio
from ws4py.async_websocket import WebSocketProtocol
from ws4py.asyncio.endpoint import Options

_paths = itertools.count(1)

#: Many messages at once (what TLS holds beyond one read must be read too), and one of 200 KB.
MESSAGES: list[str | bytes] = [
    *(("record ✓ " * (i * 97 % 4000)) if i % 2 else bytes([i]) * (i * 113 % 5000) for i in range(40)),
    "x" * 200_000,
]


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture(scope="module")
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.fixture(scope="module", params=LOOP_PARAMS)
def loop_name(request: pytest.FixtureRequest) -> str:
    check_loop(request.param)
    return request.param


@pytest.fixture(params=[True, False], ids=["deflate", "no-deflate"])
def compression(request: pytest.FixtureRequest) -> bool:
    return request.param


def _is_deflate(header: str | None) -> bool:
    return header is not None and header.split(";")[0].strip() == "permessage-deflate"


@asynccontextmanager
async def ws4py_tls_server(kind: str, journal: Journal, context: ssl.SSLContext) -> AsyncIterator[int]:
    """ws4py's asyncio server (``serve`` or ``callback``) on TLS, accepting permessage-deflate; yields its port."""
    if kind == "serve":
        async with ws4py.asyncio.serve(
            serve_handler(journal), "127.0.0.1", 0, ssl=context, ping_interval=None, close_timeout=TIMEOUT
        ) as server:
            yield server.sockets[0].getsockname()[1]
        return
    handler = type("EchoHandler", (JournalCallbackWebSocket,), {"journal": journal})
    options = Options(ping_interval=None, close_timeout=TIMEOUT)
    loop = asyncio.get_running_loop()
    protocols: list[WebSocketProtocol] = []

    def factory() -> WebSocketProtocol:
        protocols.append(WebSocketProtocol(handler, options=options))
        return protocols[-1]

    listener = await loop.create_server(factory, "127.0.0.1", 0, ssl=context)
    try:
        yield listener.sockets[0].getsockname()[1]
    finally:
        listener.close()
        await listener.wait_closed()
        for proto in protocols:
            proto.abort()


async def _journal_wait(journal: Journal, path: str, kind: str) -> Any:
    return await asyncio.get_running_loop().run_in_executor(None, journal.wait, path, kind)


@pytest.mark.parametrize("kind", ["serve", "callback"])
def test_ws4py_server_with_websockets_client(
    kind: str, loop_name: str, compression: bool, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    journal = Journal()
    path = f"/tls/{next(_paths)}"

    async def main() -> None:
        async with ws4py_tls_server(kind, journal, server_context) as port:
            async with websockets_connect(
                f"wss://127.0.0.1:{port}{path}",
                ssl=client_context,
                compression="deflate" if compression else None,
                proxy=None,
                open_timeout=TIMEOUT,
                close_timeout=TIMEOUT,
                ping_interval=None,
                max_size=None,
            ) as ws:
                header = ws.response.headers.get("Sec-WebSocket-Extensions")
                assert _is_deflate(header) if compression else header is None, header
                for message in MESSAGES:
                    await ws.send(message)
                assert [await asyncio.wait_for(ws.recv(), TIMEOUT) for _ in MESSAGES] == MESSAGES
                await ws.close(4003, "tls bye")
            assert await _journal_wait(journal, path, "open") == header
            assert await _journal_wait(journal, path, "close") == (4003, "tls bye")

    run_in_new_loop(loop_name, main())


def test_ws4py_server_with_aiohttp_client(
    loop_name: str, compression: bool, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    journal = Journal()
    path = f"/tls/{next(_paths)}"

    async def main() -> None:
        async with ws4py_tls_server("serve", journal, server_context) as port, aiohttp.ClientSession() as session:
            async with session.ws_connect(
                f"wss://127.0.0.1:{port}{path}", ssl=client_context, compress=15 if compression else 0
            ) as ws:
                header = ws._response.headers.get("Sec-WebSocket-Extensions")
                assert _is_deflate(header) if compression else header is None, header
                assert bool(ws.compress) is compression
                for message in MESSAGES:
                    await (ws.send_str(message) if isinstance(message, str) else ws.send_bytes(message))
                received = [(await ws.receive(TIMEOUT)).data for _ in MESSAGES]
                assert received == MESSAGES
                assert await ws.close(code=4003, message=b"tls bye")
            assert await _journal_wait(journal, path, "open") == header
            assert await _journal_wait(journal, path, "close") == (4003, "tls bye")

    run_in_new_loop(loop_name, main())


def test_ws4py_client_with_websockets_server(
    loop_name: str, compression: bool, server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    journal = Journal()
    path = f"/tls/{next(_paths)}"

    async def main() -> None:
        async with websockets_serve(
            async_handler(journal),
            "127.0.0.1",
            0,
            ssl=server_context,
            compression="deflate" if compression else None,
            close_timeout=TIMEOUT,
            max_size=None,
        ) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            async with ws4py.asyncio.connect(
                f"wss://127.0.0.1:{port}{path}",
                ssl=client_context,
                compression="deflate" if compression else None,
                open_timeout=TIMEOUT,
                close_timeout=TIMEOUT,
                ping_interval=None,
            ) as conn:
                assert conn.response is not None
                header = conn.response.headers.get("Sec-WebSocket-Extensions")
                assert _is_deflate(header) if compression else header is None, header
                for message in MESSAGES:
                    await conn.send(message)
                assert [await asyncio.wait_for(conn.recv(), TIMEOUT) for _ in MESSAGES] == MESSAGES
                latency = await asyncio.wait_for(await conn.ping(b"tls ping"), TIMEOUT)
                assert latency >= 0
                await asyncio.wait_for(conn.close(4003, "tls bye"), 2 * TIMEOUT)
                assert conn.close_code == 4003
            expected = ["permessage-deflate"] if compression else []
            assert await _journal_wait(journal, path, "open") == expected
            assert await _journal_wait(journal, path, "close") == (4003, "tls bye")

    run_in_new_loop(loop_name, main())


def test_ws4py_client_refuses_an_unknown_authority(loop_name: str, server_context: ssl.SSLContext) -> None:
    async def main() -> None:
        async with websockets_serve(async_handler(Journal()), "127.0.0.1", 0, ssl=server_context) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            with pytest.raises(ssl.SSLCertVerificationError):
                # The default context: the system's trust store, which does not know the trustme CA.
                await ws4py.asyncio.connect(f"wss://127.0.0.1:{port}/tls/refused", open_timeout=TIMEOUT)

    run_in_new_loop(loop_name, main())
