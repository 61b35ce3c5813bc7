"""ws4py.asyncio on uvloop: the loop running the test is the one the connections use."""

from __future__ import annotations

import asyncio

from aio_support import HOST, echo, url, within

from ws4py.asyncio import connect, serve


async def test_a_connection_opens_and_echoes_on_the_running_loop() -> None:
    server = await serve(echo, HOST, 0, close_timeout=0.5)
    try:
        async with connect(url(server), open_timeout=1.0) as conn:
            await conn.send("on this loop")
            assert await within(conn.recv()) == "on this loop"
    finally:
        server.close()
        await asyncio.wait([asyncio.ensure_future(server.wait_closed())], timeout=2.0)
