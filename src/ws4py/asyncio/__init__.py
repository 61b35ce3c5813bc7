"""ws4py on asyncio: ``serve``, ``connect``, ``broadcast`` and the awaitable :class:`Connection`.

::

    async def echo(websocket):
        async for message in websocket:
            await websocket.send(message)

    async def main():
        async with serve(echo, "127.0.0.1", 8765) as server:
            await server.serve_forever()

The callback-style API of ws4py (``received_message`` and friends) on
asyncio is :mod:`ws4py.async_websocket`; both stand on the same transport
code (:mod:`ws4py.asyncio.endpoint`) and the same protocol core.
"""

from ..exc import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK, HandshakeError
from .broadcast import Skipped, broadcast
from .client import ClientConnection, connect
from .connection import Connection, Data
from .options import Options
from .server import Server, ServerConnection, serve

__all__ = [
    "ClientConnection",
    "Connection",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "Data",
    "HandshakeError",
    "Options",
    "Server",
    "ServerConnection",
    "Skipped",
    "broadcast",
    "connect",
    "serve",
]
