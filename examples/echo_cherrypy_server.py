"""The chat on CherryPy: the ``echo_cherrypy_server`` example of ws4py's manager page.

Run: python examples/echo_cherrypy_server.py [--host 127.0.0.1] [--port 9000] [--origin URL]...
then point your browser to http://localhost:9000/ and enter a message: it is
broadcast to every connected peer, the browsers and the 2,000 clients of
``examples/manager_clients.py`` (which connect to ws://localhost:9000/ws and
log what they receive) alike. Ctrl-C stops it; every websocket is closed
with 1001.

The page and the chat's rules are those of ``scripts/serve``'s asyncio chat
(``examples/chat/``): ``chat.html`` at ``/``, and ``chatroom.py``, which turns
each message into replies. Here ws4py's CherryPy tool makes the handshake on
``/ws`` (with the ``Origin`` check) and hands each websocket to the plugin's
manager; a reply for everyone goes out on CherryPy's bus,
``cherrypy.engine.publish("websocket-broadcast", text)``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cherrypy

from ws4py.messaging import Message
from ws4py.server.cherrypyserver import WebSocketPlugin, WebSocketTool
from ws4py.websocket import WebSocket

# The chat's page and rules live beside the asyncio server, in examples/chat/: one copy for both.
sys.path.insert(0, str(Path(__file__).resolve().parent / "chat"))
from chatroom import MAX_MESSAGE_BYTES, PAGE, WS_PATH, Reply, Room, allowed_origins, command_line

ROOM = Room()


class ChatWebSocket(WebSocket):
    """One chat peer: its messages go through the room, the replies to it or to everyone."""

    # Far above the chat's 2,000 characters: an overlong chat message gets a notice, not a 1009.
    max_message_size = MAX_MESSAGE_BYTES

    def received_message(self, message: Message) -> None:
        self.reply(ROOM.receive(self, str(message) if message.is_text else message.data))

    def closed(self, code: int, reason: str | None = None) -> None:
        self.reply(ROOM.leave(self))

    def reply(self, reply: Reply) -> None:
        """Send ``reply``: its own part to this peer, the rest to every websocket of the plugin."""
        for text in reply.to_sender:
            self.send(text)
        for text in reply.to_all:
            cherrypy.engine.publish("websocket-broadcast", text)


class Root:
    """The page at ``/``; the WebSocket at ``/ws`` (the tool answers its handshake)."""

    def __init__(self) -> None:
        self.page = PAGE.read_bytes()

    @cherrypy.expose
    def index(self) -> bytes:
        cherrypy.response.headers["Content-Type"] = "text/html; charset=utf-8"
        cherrypy.response.headers["Cache-Control"] = "no-store"
        return self.page

    @cherrypy.expose
    def ws(self) -> None:
        # The tool made the handshake: cherrypy.request.ws_handler is this peer's ChatWebSocket.
        pass


def main(host: str, port: int, origins: list[str]) -> None:
    """Serve the chat on ``host:port`` until Ctrl-C or SIGTERM."""
    cherrypy.config.update(
        {
            "server.socket_host": host,
            "server.socket_port": port,
            "engine.autoreload.on": False,  # no restart when a file changes: this is a demo, not a dev server
        }
    )
    WebSocketPlugin(cherrypy.engine).subscribe()
    cherrypy.tools.websocket = WebSocketTool()
    config = {
        WS_PATH: {
            "tools.websocket.on": True,
            "tools.websocket.handler_cls": ChatWebSocket,
            "tools.websocket.origins": allowed_origins(host, port, origins),
        }
    }
    # cherrypy.quickstart(Root(), "/", config), spelled out: a Ctrl-C while the engine is still
    # starting would leave quickstart's HTTP server thread running, and the process with it.
    cherrypy.tree.mount(Root(), "", config)
    cherrypy.engine.signals.subscribe()  # SIGTERM, SIGHUP: the engine's own handlers
    try:
        cherrypy.engine.start()
    except KeyboardInterrupt:
        cherrypy.engine.exit()
        return
    print(f"ws4py chat (CherryPy) on http://{host}:{port}/ (WebSocket ws://{host}:{port}{WS_PATH})", flush=True)
    cherrypy.engine.block()  # until Ctrl-C or SIGTERM; then every websocket is closed with 1001


if __name__ == "__main__":
    args = command_line(__doc__)
    main(args.host, args.port, args.origin)
