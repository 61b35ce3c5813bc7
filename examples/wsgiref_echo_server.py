"""The wsgiref snippet of ws4py's "Server" page: an echo server on port 9000.

Run: python examples/wsgiref_echo_server.py  (then connect to ws://localhost:9000/)
"""

from wsgiref.simple_server import make_server

from ws4py.server.wsgirefserver import WebSocketWSGIRequestHandler, WSGIServer
from ws4py.server.wsgiutils import WebSocketWSGIApplication
from ws4py.websocket import EchoWebSocket

server = make_server(
    "",
    9000,
    server_class=WSGIServer,
    handler_class=WebSocketWSGIRequestHandler,
    app=WebSocketWSGIApplication(handler_cls=EchoWebSocket),
)
server.initialize_websockets_manager()
server.serve_forever()
