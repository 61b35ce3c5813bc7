"""The chat on ws4py's asyncio server: the README's main job (``scripts/serve``).

Run: python examples/chat/server.py [--host 127.0.0.1] [--port 9000] [--origin URL]...
then open http://127.0.0.1:9000/ in a few browser tabs. One server does it
all: ``GET /`` answers with the page (``chat.html``, through ``serve``'s
``process_request`` hook), and the page's WebSocket on ``/ws`` joins the
chat. Every message is broadcast to every connected peer with
``ws4py.asyncio.broadcast``; the messages and the rules (names, the 2,000
character limit, join and leave notices) are in ``chatroom.py``, shared with
``examples/echo_cherrypy_server.py``. Ctrl-C or SIGTERM closes every
connection with 1001 and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from chatroom import MAX_MESSAGE_BYTES, PAGE, WS_PATH, Reply, Room, allowed_origins, command_line

from ws4py.asyncio import ServerConnection, broadcast, serve
from ws4py.protocol import Request, Response
from ws4py.protocol.headers import Headers


class ChatServer:
    """The room, the connections that can hear it, and the two handlers ``serve`` calls."""

    def __init__(self) -> None:
        self.room = Room()
        self.peers: set[ServerConnection] = set()
        self.page = PAGE.read_bytes()

    def process_request(self, conn: ServerConnection, request: Request) -> Response | None:
        """``GET /``: the page; ``/ws``: on with the WebSocket handshake; anything else: 404."""
        path = request.target.split("?", 1)[0]
        if path == WS_PATH:
            return None  # the handshake decides (a plain GET there gets 426, an alien Origin 403)
        if path == "/" and request.method == "GET":
            headers = Headers([("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")])
            return Response(200, "OK", headers, self.page)
        return conn.respond(404, "not found: the chat is at /")

    async def handler(self, conn: ServerConnection) -> None:
        """One connection: hear every broadcast, send what the room replies, leave at the end."""
        self.peers.add(conn)
        try:
            async for message in conn:
                self._send(conn, self.room.receive(conn, message))
        finally:
            self.peers.discard(conn)
            self._send(conn, self.room.leave(conn))

    def _send(self, conn: ServerConnection, reply: Reply) -> None:
        # broadcast() writes without waiting; a peer that does not keep up is skipped, not waited for.
        for text in reply.to_sender:
            broadcast([conn], text)
        for text in reply.to_all:
            broadcast(self.peers, text)


async def main(host: str, port: int, origins: list[str]) -> None:
    """Serve the chat on ``host:port`` until cancelled (Ctrl-C) or SIGTERM."""
    chat = ChatServer()
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    async with serve(
        chat.handler,
        host,
        port,
        origins=allowed_origins(host, port, origins),
        process_request=chat.process_request,
        max_size=MAX_MESSAGE_BYTES,
        close_timeout=2,
    ) as server:
        for sock in server.sockets:
            where = "{}:{}".format(*sock.getsockname()[:2])
            print(f"ws4py chat on http://{where}/ (WebSocket ws://{where}{WS_PATH})", flush=True)
        try:
            await server.serve_forever()
        except asyncio.CancelledError:
            print("ws4py chat: stopped", flush=True)


if __name__ == "__main__":
    args = command_line(__doc__)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.host, args.port, args.origin))
