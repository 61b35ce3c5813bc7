"""A minimal ASGI application served by uvicorn: echo, or broadcast; the WebSocket implementation chosen by ``--ws``.

Run in bench/.venvs/uvicorn::

    python asgi_echo.py PORT --ws IMPL [--broadcast] [--uvloop]

``IMPL`` is what uvicorn's ``--ws`` takes: ``ws4py.server.uvicorn:WebSocketProtocol``,
``websockets-sansio`` or ``wsproto``. Every implementation serves the *same* application,
written against the ASGI spec alone (no framework): the echo app sends each message back
as it came (text as text, bytes as bytes); the broadcast app, on the text message "go",
sends 100 text messages of 64 B to every connected client, awaiting each ``send`` as an
ASGI application must (there is no broadcast in ASGI).

uvicorn runs programmatically (``uvicorn.Config`` + ``uvicorn.Server``, one process), on
127.0.0.1, with ``http="httptools"`` (what ``auto`` picks when it is installed, named so
that every peer parses HTTP the same way), ``loop="asyncio"`` or ``"uvloop"`` (named:
``auto`` would pick uvloop), no lifespan, no access log, log level warning; every ``ws_*``
setting at uvicorn's defaults (16 MiB messages, a queue of 32, a ping every 20 s — no row
lasts long enough for it to count —, permessage-deflate allowed, which the load generator
never offers).
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn
from _common import BROADCAST_COUNT, BROADCAST_PAYLOAD, BROADCAST_TRIGGER, parse_args, prepare

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

NOT_FOUND = {"type": "http.response.start", "status": 404, "headers": [(b"content-length", b"0")]}


async def refuse_http(scope: Scope, send: Send) -> bool:
    """Answers a plain HTTP request with 404; True if ``scope`` was one (the benchmark sends none)."""
    if scope["type"] != "http":
        return False
    await send(NOT_FOUND)
    await send({"type": "http.response.body", "body": b""})
    return True


async def echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts the WebSocket and sends every message back as it came."""
    if await refuse_http(scope, send):
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


clients: set[Send] = set()


async def broadcaster(scope: Scope, receive: Receive, send: Send) -> None:
    """Accepts the WebSocket and, on "go", sends BROADCAST_COUNT messages to every client, one round at a time."""
    if await refuse_http(scope, send):
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    clients.add(send)
    try:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") == BROADCAST_TRIGGER:
                outgoing = {"type": "websocket.send", "text": BROADCAST_PAYLOAD}
                for _ in range(BROADCAST_COUNT):
                    for client in list(clients):
                        try:
                            await client(dict(outgoing))
                        except OSError:  # that client left (the spec's error for a send after a disconnect)
                            clients.discard(client)
    finally:
        clients.discard(send)


def ws_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ws",
        required=True,
        metavar="IMPL",
        help="uvicorn's ws setting: ws4py.server.uvicorn:WebSocketProtocol, websockets-sansio or wsproto",
    )


def main() -> None:
    args = parse_args(__doc__ or "", loop_choice=True, more=ws_option)
    prepare()
    config = uvicorn.Config(
        broadcaster if args.broadcast else echo,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop" if args.uvloop else "asyncio",
        http="httptools",
        ws=args.ws,
        lifespan="off",
        access_log=False,
        log_level="warning",
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
