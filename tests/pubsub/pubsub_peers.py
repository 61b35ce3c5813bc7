"""A chat-room server for the pub/sub tests, run as a subprocess.

``python pubsub_peers.py KIND BROKER``: a WebSocket server on 127.0.0.1 (a free
port, printed as ``ready PORT``) where each connection subscribes to the
channel ``room`` of ``ws4py.pubsub.broker_from_url(BROKER)`` (``memory://`` or
a Redis URL), says ``subscribed``, and publishes to the room each text message
it receives. KIND:
``asyncio`` (``ws4py.asyncio.serve``), ``threaded`` (wsgiref with the
manager) or ``gevent`` (monkey-patched first; ws4py's gevent server). Each gap
the broker reports is printed as ``GAP CHANNEL PUBLISHER MISSED``. SIGTERM:
close the broker and the server, exit 0.
"""

from __future__ import annotations

import sys

if sys.argv[1] == "gevent":
    from gevent import monkey

    monkey.patch_all()

import signal
import threading

from ws4py.messaging import Message
from ws4py.pubsub import Broker, Gap, broker_from_url, get_broker, set_broker
from ws4py.websocket import WebSocket


def report_gap(gap: Gap) -> None:
    print("GAP", gap.channel, gap.publisher, gap.missed, flush=True)


class RoomWebSocket(WebSocket):
    """The threaded and gevent kind: subscribes when opened, publishes what it receives."""

    def opened(self) -> None:
        get_broker().subscribe(self, "room")
        self.send("subscribed")

    def received_message(self, message: Message) -> None:
        get_broker().publish("room", message.data.decode())


def serve_asyncio(broker: Broker) -> None:
    import asyncio

    from ws4py.asyncio import Connection, serve

    async def handler(websocket: Connection) -> None:
        broker.subscribe(websocket, "room")
        await websocket.send("subscribed")
        async for message in websocket:
            broker.publish("room", message)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        async with serve(handler, "127.0.0.1", 0, close_timeout=2) as server:
            print("ready", server.sockets[0].getsockname()[1], flush=True)
            await stop

    asyncio.run(main())


def serve_threaded() -> None:
    from wsgiref.simple_server import make_server

    from ws4py.server.wsgirefserver import WebSocketWSGIRequestHandler, WSGIServer
    from ws4py.server.wsgiutils import WebSocketWSGIApplication

    httpd = make_server(
        "127.0.0.1",
        0,
        server_class=WSGIServer,
        handler_class=WebSocketWSGIRequestHandler,
        app=WebSocketWSGIApplication(handler_cls=RoomWebSocket),
    )
    httpd.initialize_websockets_manager()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=httpd.shutdown).start())
    print("ready", httpd.server_address[1], flush=True)
    httpd.serve_forever(poll_interval=0.05)
    httpd.server_close()


def serve_gevent() -> None:
    import gevent.event

    import gevent
    from ws4py.server.geventserver import WebSocketServer

    server = WebSocketServer(("127.0.0.1", 0), websocket_class=RoomWebSocket, log=None)
    server.start()
    stopped = gevent.event.Event()

    def stop() -> None:
        server.stop(timeout=2)
        stopped.set()

    gevent.signal_handler(signal.SIGTERM, lambda: gevent.spawn(stop))
    print("ready", server.server_port, flush=True)
    stopped.wait()


def main(kind: str, url: str) -> None:
    broker = broker_from_url(url)
    broker.on_gap = report_gap
    set_broker(broker)
    try:
        {"asyncio": lambda: serve_asyncio(broker), "threaded": serve_threaded, "gevent": serve_gevent}[kind]()
    finally:
        broker.close()
    print("stopped", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
