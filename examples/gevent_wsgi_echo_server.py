"""The second gevent snippet of ws4py's "Server" page: a WSGI echo server on localhost:9000.

Run: python examples/gevent_wsgi_echo_server.py [HOST:PORT]  (then connect to ws://localhost:9000/)
The address may also come from the WS4PY_ADDRESS environment variable (HOST:PORT).
"""

from gevent import monkey

monkey.patch_all()
import os  # noqa: E402 - after the monkey-patching, as the page has it
import sys  # noqa: E402

from ws4py.server.geventserver import WSGIServer  # noqa: E402
from ws4py.server.wsgiutils import WebSocketWSGIApplication  # noqa: E402
from ws4py.websocket import EchoWebSocket  # noqa: E402

address = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("WS4PY_ADDRESS", "localhost:9000")
host, _, port = address.rpartition(":")

server = WSGIServer((host, int(port)), WebSocketWSGIApplication(handler_cls=EchoWebSocket))
server.serve_forever()
