"""The first gevent snippet of ws4py's "Server" page: an echo server on 127.0.0.1:9001.

Run: python examples/gevent_echo_server.py [HOST:PORT]  (then connect to ws://127.0.0.1:9001/)
The address may also come from the WS4PY_ADDRESS environment variable (HOST:PORT).
"""

from gevent import monkey

monkey.patch_all()
import os  # noqa: E402 - after the monkey-patching, as the page has it
import sys  # noqa: E402

import gevent  # noqa: E402, F401 - as the page imports it
from ws4py.server.geventserver import WebSocketServer  # noqa: E402
from ws4py.websocket import EchoWebSocket  # noqa: E402

address = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("WS4PY_ADDRESS", "127.0.0.1:9001")
host, _, port = address.rpartition(":")

server = WebSocketServer((host, int(port)), websocket_class=EchoWebSocket)
server.serve_forever()
