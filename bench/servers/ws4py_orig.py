"""The original ws4py 0.6.0 (PyPI), threaded: the wsgiref server + ``WebSocketManager`` of its documentation.

Run in bench/.venvs/ws4py-orig: ``python ws4py_orig.py PORT [--broadcast]``. The
server is the documented snippet, bound to 127.0.0.1:PORT; ``--broadcast``
swaps ``EchoWebSocket`` for a handler that calls ``server.manager.broadcast``.
ws4py 0.6.0 imports and runs on Python 3.11 as it is: no shim is needed.
"""

from __future__ import annotations

from typing import Any
from wsgiref.simple_server import make_server

from _common import BROADCAST_COUNT, BROADCAST_PAYLOAD, BROADCAST_TRIGGER, parse_args, prepare

from ws4py.server.wsgirefserver import WebSocketWSGIRequestHandler, WSGIServer
from ws4py.server.wsgiutils import WebSocketWSGIApplication
from ws4py.websocket import EchoWebSocket, WebSocket

server: Any = None


class BroadcastWebSocket(WebSocket):  # type: ignore[misc]
    def received_message(self, message: Any) -> None:
        if not message.is_binary and message.data == BROADCAST_TRIGGER.encode():
            for _ in range(BROADCAST_COUNT):
                server.manager.broadcast(BROADCAST_PAYLOAD)


def main() -> None:
    global server
    args = parse_args(__doc__ or "")
    prepare()
    handler_cls = BroadcastWebSocket if args.broadcast else EchoWebSocket
    server = make_server(
        "127.0.0.1",
        args.port,
        server_class=WSGIServer,
        handler_class=WebSocketWSGIRequestHandler,
        app=WebSocketWSGIApplication(handler_cls=handler_cls),
    )
    server.initialize_websockets_manager()
    server.serve_forever()


if __name__ == "__main__":
    main()
