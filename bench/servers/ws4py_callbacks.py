"""ws4py (this repository), the callback style of ``ws4py.async_websocket``: the documented snippet.

Run in bench/.venvs/threaded: ``python ws4py_callbacks.py PORT [--broadcast] [--uvloop]``.
``loop.create_server(lambda: WebSocketProtocol(EchoWebSocket), ...)``;
``--broadcast`` swaps in a handler that calls ``ws4py.asyncio.broadcast``.
"""

from __future__ import annotations

import asyncio

from _common import BROADCAST_COUNT, BROADCAST_PAYLOAD, BROADCAST_TRIGGER, run_asyncio

from ws4py.async_websocket import EchoWebSocket, WebSocket, WebSocketProtocol
from ws4py.asyncio import broadcast
from ws4py.messaging import Message

protocols: set[WebSocketProtocol] = set()


class BroadcastWebSocket(WebSocket):
    def opened(self) -> None:
        protocols.add(self.proto)

    def closed(self, code: int, reason: str | None = None) -> None:
        protocols.discard(self.proto)

    def received_message(self, message: Message) -> None:
        if message.is_text and str(message) == BROADCAST_TRIGGER:
            for _ in range(BROADCAST_COUNT):
                broadcast(protocols, BROADCAST_PAYLOAD)


async def main(broadcasting: bool, port: int) -> None:
    handler_cls = BroadcastWebSocket if broadcasting else EchoWebSocket
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: WebSocketProtocol(handler_cls, compression=None), "127.0.0.1", port, backlog=1024
    )
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    run_asyncio(lambda a: main(a.broadcast, a.port), __doc__ or "")
