"""The CherryPy snippet of ws4py's "Server" page: an echo server on port 9000.

Run: python examples/cherrypy_echo_server.py [PORT]  (then connect to ws://localhost:9000/ws)

As on the page, apart from Python 3 and the port, which may be given (argument or
``PORT`` in the environment) so that tests can pick a free one.
"""

import os
import sys

import cherrypy

from ws4py.server.cherrypyserver import WebSocketPlugin, WebSocketTool
from ws4py.websocket import EchoWebSocket

port = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", 9000))

cherrypy.config.update({"server.socket_port": port})
WebSocketPlugin(cherrypy.engine).subscribe()
cherrypy.tools.websocket = WebSocketTool()


class Root:
    @cherrypy.expose
    def index(self):
        return "some HTML with a websocket javascript connection"

    @cherrypy.expose
    def ws(self):
        # you can access the class instance through
        handler = cherrypy.request.ws_handler  # noqa: F841 - as on the page


cherrypy.quickstart(
    Root(), "/", config={"/ws": {"tools.websocket.on": True, "tools.websocket.handler_cls": EchoWebSocket}}
)
