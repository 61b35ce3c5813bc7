"""websockets (latest), threaded server (``websockets.sync.server.serve``): echo, or broadcast by a loop of ``send``.

Run in bench/.venvs/websockets: ``python websockets_sync.py PORT [--broadcast]``.
No compression (the load generator never offers it either). One thread per connection.
"""

from __future__ import annotations

import contextlib
import threading

from _common import BROADCAST_COUNT, BROADCAST_PAYLOAD, BROADCAST_TRIGGER, parse_args, prepare
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import ServerConnection, serve

MAX_SIZE = 2**24  # ws4py's default message limit (websockets' is 1 MiB, which the 1 MiB rows just fit)

clients: set[ServerConnection] = set()
clients_lock = threading.Lock()


def echo(ws: ServerConnection) -> None:
    for message in ws:
        ws.send(message)


def broadcaster(ws: ServerConnection) -> None:
    with clients_lock:
        clients.add(ws)
    try:
        for message in ws:
            if message == BROADCAST_TRIGGER:
                with clients_lock:
                    targets = list(clients)
                for _ in range(BROADCAST_COUNT):
                    for client in targets:
                        with contextlib.suppress(ConnectionClosed):  # it left: the others still get theirs
                            client.send(BROADCAST_PAYLOAD)
    finally:
        with clients_lock:
            clients.discard(ws)


def main() -> None:
    args = parse_args(__doc__ or "")
    prepare()
    handler = broadcaster if args.broadcast else echo
    with serve(handler, "127.0.0.1", args.port, compression=None, max_size=MAX_SIZE) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
