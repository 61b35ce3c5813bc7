"""ws4py on gevent: the Server page's snippet (``geventserver.WSGIServer`` + ``WebSocketWSGIApplication``).

Run in bench/.venvs/integrations (this repository) or bench/.venvs/orig-integrations
(the original ws4py 0.6.0): ``python ws4py_gevent.py PORT [--broadcast]``. The same
file for both: the API is the same. ``monkey.patch_all()`` first, then
``WSGIServer(("127.0.0.1", PORT), WebSocketWSGIApplication(handler_cls=EchoWebSocket))``
and ``serve_forever()``, as written (gevent's pywsgi writes its access-log line per
request to stderr, as the snippet leaves it). ``--broadcast`` swaps in a handler
that, on "go", broadcasts 100 times the way each version offers: ws4py's
``server.pool.broadcast(payload)`` (``GEventWebSocketPool.broadcast``); with
ws4py 0.6.0, whose pool has no broadcast, ``send`` on each open websocket (kept
in a set by ``opened`` / ``closed``), as its users write it. ``--busy-poll SECONDS``
(this repository's ws4py only) sets ``ws4py.geventloop.GreenletLoop.busy_poll``.
"""

from gevent import monkey

monkey.patch_all()

import contextlib  # noqa: E402 (after the monkey-patching, as gevent wants)
from typing import Any  # noqa: E402

from _common import BROADCAST_COUNT, BROADCAST_PAYLOAD, BROADCAST_TRIGGER, parse_args, prepare  # noqa: E402

from ws4py.server.geventserver import WSGIServer  # noqa: E402
from ws4py.server.wsgiutils import WebSocketWSGIApplication  # noqa: E402
from ws4py.websocket import EchoWebSocket, WebSocket  # noqa: E402

server: Any = None
clients: set[Any] = set()


class BroadcastWebSocket(WebSocket):  # type: ignore[misc]
    def opened(self) -> None:
        clients.add(self)

    def closed(self, code: int, reason: Any = None) -> None:
        clients.discard(self)

    def received_message(self, message: Any) -> None:
        if not message.is_binary and message.data == BROADCAST_TRIGGER.encode():
            pool_broadcast = getattr(server.pool, "broadcast", None)
            for _ in range(BROADCAST_COUNT):
                if pool_broadcast is not None:
                    pool_broadcast(BROADCAST_PAYLOAD)
                    continue
                for ws in list(clients):
                    # a peer gone meanwhile (its own greenlet cleans up): the others go on
                    with contextlib.suppress(Exception):
                        ws.send(BROADCAST_PAYLOAD)


def main() -> None:
    global server
    args = parse_args(__doc__ or "", busy_poll_choice=True)
    prepare()
    if args.busy_poll is not None:
        from ws4py.geventloop import GreenletLoop  # this repository's ws4py only (the reference peers)

        GreenletLoop.busy_poll = args.busy_poll
    handler_cls = BroadcastWebSocket if args.broadcast else EchoWebSocket
    server = WSGIServer(("127.0.0.1", args.port), WebSocketWSGIApplication(handler_cls=handler_cls))
    server.serve_forever()


if __name__ == "__main__":
    main()
