"""Starlette and FastAPI apps served by uvicorn with ws4py's WebSocket implementation.

Both of uvicorn's HTTP parsers (h11, httptools) hand the upgrade over; clients are ws4py's
asyncio client and ``websockets``. One server per (framework, parser), kept for the module.
"""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest
import websockets
from interop_peers import NodeClient
from uvicorn_apps import FRAMEWORKS
from uvicorn_support import Record, Running, http_exchange, run, serving

from ws4py.asyncio import ConnectionClosedError, HandshakeError, connect


@pytest.fixture(
    scope="module",
    params=[("starlette", "h11"), ("fastapi", "httptools"), ("starlette", "httptools"), ("fastapi", "h11")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def server(request: pytest.FixtureRequest) -> Iterator[tuple[Running, Record]]:
    framework, parser = request.param
    record = Record()
    with serving(FRAMEWORKS[framework](record), http=parser) as running:
        yield running, record


@pytest.fixture
def served(server: tuple[Running, Record]) -> tuple[Running, Record]:
    server[1].clear()
    return server


def test_echo_text_and_bytes_with_ws4py_websockets_and_aiohttp_clients(served: tuple[Running, Record]) -> None:
    running, record = served

    async def ws4py_client() -> list[str | bytes]:
        async with connect(running.url("/echo")) as conn:
            await conn.send("héllo")
            await conn.send(b"\x00\xff" * 1000)
            return [await conn.recv(), await conn.recv()]

    async def websockets_client() -> list[str | bytes]:
        async with websockets.connect(running.url("/echo")) as conn:
            await conn.send("text")
            await conn.send(b"bytes")
            return [await conn.recv(), await conn.recv()]

    async def aiohttp_client() -> list[str | bytes]:
        async with aiohttp.ClientSession() as session, session.ws_connect(running.url("/echo")) as conn:
            await conn.send_str("from aiohttp")
            await conn.send_bytes(b"\x01" * 70_000)
            return [(await conn.receive()).data, (await conn.receive()).data]

    assert run(ws4py_client()) == ["héllo", b"\x00\xff" * 1000]
    assert record.get() == ("disconnect", 1000, "")
    assert run(websockets_client()) == ["text", b"bytes"]
    assert record.get() == ("disconnect", 1000, "")
    assert run(aiohttp_client()) == ["from aiohttp", b"\x01" * 70_000]
    assert record.get() == ("disconnect", 1000, "")


def test_the_app_selects_the_subprotocol_and_adds_accept_headers(served: tuple[Running, Record]) -> None:
    running, record = served

    async def client() -> tuple[str | None, str | None, str | bytes, bool]:
        async with connect(running.url("/subprotocol"), subprotocols=["superchat", "chat"]) as conn:
            assert conn.response is not None
            headers = conn.response.headers
            return conn.subprotocol, headers.get("x-accepted"), await conn.recv(), "date" in headers

    assert run(client()) == ("chat", "yes", "chat", True)
    assert record.get() == ("disconnect", 1000, "")


def test_close_code_and_reason_reach_each_side(served: tuple[Running, Record]) -> None:
    running, record = served

    async def app_closes() -> tuple[int | None, str | None]:
        async with connect(running.url("/close")) as conn:
            await conn.send("now")
            await conn.wait_closed()
            return conn.close_code, conn.close_reason

    async def client_closes() -> None:
        async with connect(running.url("/echo")) as conn:
            await conn.close(4002, "client says bye")

    assert run(app_closes()) == (4001, "bye now")
    assert record.get() == ("closed",)
    run(client_closes())
    assert record.get() == ("disconnect", 4002, "client says bye")


def test_a_client_that_vanishes_is_a_disconnect_with_1006(served: tuple[Running, Record]) -> None:
    running, record = served

    async def client() -> None:
        conn = await connect(running.url("/echo"))
        await conn.send("ping")
        assert await conn.recv() == "ping"
        conn.abort()

    run(client())
    assert record.get() == ("disconnect", 1006, "")


def test_the_denial_response_reaches_the_client(served: tuple[Running, Record]) -> None:
    running, record = served
    response, body = http_exchange(running.port, "/deny")
    assert (response.status, response.headers.get("x-deny"), body) == (401, "1", b"go away")
    assert record.get() == ("denied",)


def test_app_failures_answer_500_before_and_close_1011_after_and_the_server_goes_on(
    served: tuple[Running, Record],
) -> None:
    running, record = served
    response, _ = http_exchange(running.port, "/fail-before")
    assert response.status == 500

    async def after() -> int:
        async with connect(running.url("/fail-after")) as conn:
            with pytest.raises(ConnectionClosedError) as info:
                await conn.recv()
            return info.value.code

    assert run(after()) == 1011

    async def refused() -> int | None:
        with pytest.raises(HandshakeError) as info:
            await connect(running.url("/fail-before"))
        return info.value.status

    assert run(refused()) == 500

    async def still_serving() -> str | bytes:
        async with connect(running.url("/echo")) as conn:
            await conn.send("still here")
            return await conn.recv()

    assert run(still_serving()) == "still here"
    assert record.get() == ("disconnect", 1000, "")


def test_nodes_ws_client_echoes_with_permessage_deflate(served: tuple[Running, Record], node: str) -> None:
    running, record = served
    client = NodeClient(running.url("/echo"), node)
    try:
        assert client.extensions_header.startswith("permessage-deflate")
        client.send("from node")
        client.send(b"\x02" * 100_000)
        assert [client.recv(), client.recv()] == ["from node", b"\x02" * 100_000]
        client.close(4003, "node leaves")
    finally:
        client.shutdown()
    assert record.get() == ("disconnect", 4003, "node leaves")
