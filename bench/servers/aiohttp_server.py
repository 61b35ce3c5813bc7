"""aiohttp (latest): a ``web.Application`` whose handler is a ``WebSocketResponse`` echo, or broadcast.

Run in bench/.venvs/aiohttp: ``python aiohttp_server.py PORT [--broadcast] [--uvloop]``.
``WebSocketResponse(compress=False, max_msg_size=2**24)``: no compression (the
load generator never offers it either), a 16 MiB message limit (aiohttp's
default is 4 MiB), ``autoping``, ``autoclose`` and no heartbeat (aiohttp's
defaults). No access log (``access_log=None``): the other servers print
nothing per handshake either.
"""

from __future__ import annotations

import asyncio

from _common import BROADCAST_COUNT, BROADCAST_PAYLOAD, BROADCAST_TRIGGER, run_asyncio
from aiohttp import WSMsgType, web

MAX_SIZE = 2**24  # ws4py's default message limit

clients: set[web.WebSocketResponse] = set()


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=False, max_msg_size=MAX_SIZE)
    await ws.prepare(request)
    async for msg in ws:  # ends on a close frame, which autoclose has answered
        if msg.type is WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type is WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


async def broadcaster(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(compress=False, max_msg_size=MAX_SIZE)
    await ws.prepare(request)
    clients.add(ws)
    try:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT and msg.data == BROADCAST_TRIGGER:
                # aiohttp has no broadcast helper. Its chat example awaits send_str client after client: an
                # uncompressed send_str writes the frame to the transport at once and only waits (drains) when
                # that client's transport is paused, so this loop seldom suspends. asyncio.gather of the sends,
                # or a task per send, would add a task per message (500,000 for 5,000 clients): slower.
                targets = list(clients)  # the awaits may let a client leave the set
                for _ in range(BROADCAST_COUNT):
                    for client in targets:
                        await client.send_str(BROADCAST_PAYLOAD)
    finally:
        clients.discard(ws)
    return ws


async def main(broadcasting: bool, port: int) -> None:
    app = web.Application()
    app.router.add_get("/", broadcaster if broadcasting else echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)  # backlog: aiohttp's default, 128
    await site.start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    run_asyncio(lambda a: main(a.broadcast, a.port), __doc__ or "")
