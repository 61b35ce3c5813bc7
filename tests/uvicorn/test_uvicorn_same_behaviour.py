"""The same plain ASGI app under uvicorn's ``websockets-sansio`` and ``wsproto`` and under ws4py's.

Only what the ASGI spec (HTTP & WebSocket 2.5, with the ``websocket.http.response`` extension)
defines: the three implementations must agree on each. One server per implementation.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import websockets
from uvicorn_apps import asgi_app
from uvicorn_support import IMPLEMENTATIONS, Record, Running, http_exchange, run, serving

from ws4py.asyncio import connect


@pytest.fixture(scope="module", params=list(IMPLEMENTATIONS))
def server(request: pytest.FixtureRequest) -> Iterator[tuple[Running, Record]]:
    record = Record()
    with serving(asgi_app(record), ws=IMPLEMENTATIONS[request.param], http="httptools") as running:
        yield running, record


@pytest.fixture
def served(server: tuple[Running, Record]) -> tuple[Running, Record]:
    server[1].clear()
    return server


def test_text_and_bytes_are_echoed_as_sent(served: tuple[Running, Record]) -> None:
    running, record = served

    async def client() -> list[str | bytes]:
        async with websockets.connect(running.url("/echo")) as conn:
            await conn.send("text ✓")
            await conn.send(b"\x00bytes\xff")
            return [await conn.recv(), await conn.recv()]

    assert run(client()) == ["text ✓", b"\x00bytes\xff"]
    assert record.get() == ("disconnect", 1000, "")


def test_the_subprotocol_and_headers_of_the_accept_reach_the_client(served: tuple[Running, Record]) -> None:
    running, record = served

    async def client() -> tuple[str | None, str | None, list[str], str | bytes]:
        async with connect(running.url("/subprotocol"), subprotocols=["superchat", "chat"]) as conn:
            assert conn.response is not None
            headers = conn.response.headers
            return conn.subprotocol, headers.get("x-accepted"), headers.get_all("set-cookie"), await conn.recv()

    assert run(client()) == ("chat", "yes", ["a=1", "b=2"], "chat")
    assert record.get() == ("disconnect", 1000, "")


def test_the_apps_close_code_and_reason_reach_the_client(served: tuple[Running, Record]) -> None:
    running, record = served

    async def client() -> tuple[int | None, str | None]:
        async with connect(running.url("/close")) as conn:
            await conn.send("now")
            await conn.wait_closed()
            return conn.close_code, conn.close_reason

    assert run(client()) == (4001, "bye now")
    assert record.get() == ("closed",)


def test_the_clients_close_code_and_reason_reach_the_app(served: tuple[Running, Record]) -> None:
    running, record = served

    async def client() -> None:
        async with connect(running.url("/echo")) as conn:
            await conn.close(4002, "client says bye")

    run(client())
    assert record.get() == ("disconnect", 4002, "client says bye")


def test_a_close_before_the_accept_is_a_403(served: tuple[Running, Record]) -> None:
    running, record = served
    response, _ = http_exchange(running.port, "/reject")
    assert response.status == 403
    event = record.get()
    assert event[0] == "rejected" and event[1]["type"] == "websocket.disconnect"


def test_the_denial_response_reaches_the_client_whole(served: tuple[Running, Record]) -> None:
    running, record = served
    response, body = http_exchange(running.port, "/deny")
    assert (response.status, response.headers.get("x-deny"), body) == (401, "1", b"go away")
    event = record.get()
    assert event[0] == "denied" and event[1]["type"] == "websocket.disconnect"


def test_send_after_the_client_left_raises_an_oserror(served: tuple[Running, Record]) -> None:
    running, record = served

    async def client() -> None:
        async with connect(running.url("/late")) as conn:
            await conn.close(1001, "leaving")

    run(client())
    assert record.get() == ("disconnect", 1001, "leaving")
    event = record.get()
    assert event[0] == "send raised" and isinstance(event[1], OSError)
