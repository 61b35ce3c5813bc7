"""The asyncio snippet of ws4py's "Server" page: an echo server on port 9007.

As written, with its imports and in today's spelling: a new event loop
instead of ``asyncio.get_event_loop()``; the port may be given on the
command line. Ctrl-C (or SIGTERM) stops the loop, then the server.
Run: python examples/tulip_echo_server.py [PORT]  (then connect to ws://localhost:9007/)
"""

import asyncio
import signal
import sys

from ws4py.async_websocket import EchoWebSocket
from ws4py.server.tulipserver import WebSocketProtocol

port = int(sys.argv[1]) if len(sys.argv) > 1 else 9007

loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
for signum in (signal.SIGINT, signal.SIGTERM):
    loop.add_signal_handler(signum, loop.stop)


def start_server():
    proto_factory = lambda: WebSocketProtocol(EchoWebSocket)  # noqa: E731
    return loop.create_server(proto_factory, "", port)


s = loop.run_until_complete(start_server())
print("serving on", s.sockets[0].getsockname())
loop.run_forever()

s.close()
loop.close()
