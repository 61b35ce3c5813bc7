"""tornado (latest): a ``tornado.websocket.WebSocketHandler`` echo, or broadcast.

Run in bench/.venvs/tornado: ``python tornado_server.py PORT [--broadcast] [--uvloop]``
(tornado runs on asyncio; the benchmark runs it on the default loop only, unless
asked for ``tornado-uvloop``). The handler is tornado's echo demo:
``on_message`` calls ``write_message(message, binary=isinstance(message, bytes))``
without awaiting it. ``websocket_max_message_size=2**24`` (tornado's default is
10 MiB); no compression (``get_compression_options`` returns None by default);
no keepalive (``websocket_ping_interval`` is unset by default). tornado logs
requests only when logging is configured, which this script does not do.
"""

from __future__ import annotations

import asyncio

import tornado.web
import tornado.websocket
from _common import BROADCAST_COUNT, BROADCAST_PAYLOAD, BROADCAST_TRIGGER, run_asyncio

MAX_SIZE = 2**24  # ws4py's default message limit

handlers: set[tornado.websocket.WebSocketHandler] = set()


class Echo(tornado.websocket.WebSocketHandler):
    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))


class Broadcaster(tornado.websocket.WebSocketHandler):
    def open(self, *args: str, **kwargs: str) -> None:
        handlers.add(self)

    def on_close(self) -> None:
        handlers.discard(self)

    def on_message(self, message: str | bytes) -> None:
        if message == BROADCAST_TRIGGER:
            # tornado has no broadcast helper; its chat demo calls write_message on every handler.
            clients = list(handlers)  # a closing handler leaves the set
            for _ in range(BROADCAST_COUNT):
                for handler in clients:
                    handler.write_message(BROADCAST_PAYLOAD)


async def main(broadcasting: bool, port: int) -> None:
    handler = Broadcaster if broadcasting else Echo
    app = tornado.web.Application([(r"/", handler)], websocket_max_message_size=MAX_SIZE)
    app.listen(port, "127.0.0.1")  # backlog: tornado's default, 128
    await asyncio.Event().wait()


if __name__ == "__main__":
    run_asyncio(lambda a: main(a.broadcast, a.port), __doc__ or "")
