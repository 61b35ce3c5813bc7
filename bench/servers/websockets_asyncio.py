"""websockets (latest), asyncio server: echo, or broadcast with ``websockets.asyncio.server.broadcast``.

Run in bench/.venvs/websockets: ``python websockets_asyncio.py PORT [--broadcast] [--uvloop]``.
No compression (the load generator never offers it either); keepalive at its default (a ping every 20 s).
"""

from __future__ import annotations

from _common import BROADCAST_COUNT, BROADCAST_PAYLOAD, BROADCAST_TRIGGER, run_asyncio
from websockets.asyncio.server import ServerConnection, broadcast, serve

MAX_SIZE = 2**24  # ws4py's default message limit (websockets' is 1 MiB, which the 1 MiB rows just fit)

clients: set[ServerConnection] = set()


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def broadcaster(ws: ServerConnection) -> None:
    clients.add(ws)
    try:
        async for message in ws:
            if message == BROADCAST_TRIGGER:
                for _ in range(BROADCAST_COUNT):
                    broadcast(clients, BROADCAST_PAYLOAD)
    finally:
        clients.discard(ws)


async def main(broadcasting: bool, port: int) -> None:
    handler = broadcaster if broadcasting else echo
    async with serve(handler, "127.0.0.1", port, compression=None, max_size=MAX_SIZE) as server:
        await server.serve_forever()


if __name__ == "__main__":
    run_asyncio(lambda a: main(a.broadcast, a.port), __doc__ or "")
