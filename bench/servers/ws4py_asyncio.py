"""ws4py (this repository), ``ws4py.asyncio``: echo, or broadcast with ``ws4py.asyncio.broadcast``.

Run in bench/.venvs/threaded: ``python ws4py_asyncio.py PORT [--broadcast] [--uvloop]``.
Compression off, as the load generator never offers it; everything else at
``serve``'s defaults, keepalive included (a ping every 20 s, as websockets does;
no row lasts long enough for it to count).
"""

from __future__ import annotations

from _common import BROADCAST_COUNT, BROADCAST_PAYLOAD, BROADCAST_TRIGGER, run_asyncio

from ws4py.asyncio import Connection, broadcast, serve

clients: set[Connection] = set()


async def echo(ws: Connection) -> None:
    async for message in ws:
        await ws.send(message)


async def broadcaster(ws: Connection) -> None:
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
    async with serve(handler, "127.0.0.1", port, compression=None) as server:
        await server.serve_forever()


if __name__ == "__main__":
    run_asyncio(lambda a: main(a.broadcast, a.port), __doc__ or "")
