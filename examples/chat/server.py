"""The chat on ws4py's asyncio server: the README's main job (``scripts/serve``).

Run: python examples/chat/server.py [--host 127.0.0.1] [--port 9000] [--origin URL]...
then open http://127.0.0.1:9000/ in a few browser tabs. One server does it
all: ``GET /`` answers with the page (``chat.html``, through ``serve``'s
``process_request`` hook), and the page's WebSocket on ``/ws`` joins the
chat. The application is ``app.py``'s ``ChatApp`` (what ``python -m ws4py
serve examples.chat.app:ChatApp`` runs on several workers): every message is
published on the room's channel of the in-process broker
(``ws4py.pubsub``), which broadcasts it to every connected peer; the
messages and the rules (names, the 2,000 character limit, join and leave
notices) are in ``chatroom.py``, shared with ``examples/echo_cherrypy_server.py``. Ctrl-C or SIGTERM closes every
connection with 1001 and stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from app import ChatApp
from chatroom import WS_PATH, command_line

from ws4py.asyncio import serve


async def main(host: str, port: int, origins: list[str]) -> None:
    """Serve the chat on ``host:port`` until cancelled (Ctrl-C) or SIGTERM."""
    chat = ChatApp()  # the process's broker: in-process, unless WS4PY_BROKER names another
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    await chat.startup()
    async with serve(chat.handler, host, port, close_timeout=2, **chat.serve_options(host, port, origins)) as server:
        for sock in server.sockets:
            where = "{}:{}".format(*sock.getsockname()[:2])
            print(f"ws4py chat on http://{where}/ (WebSocket ws://{where}{WS_PATH})", flush=True)
        try:
            await server.serve_forever()
        except asyncio.CancelledError:
            print("ws4py chat: stopped", flush=True)
    await chat.shutdown()


if __name__ == "__main__":
    args = command_line(__doc__)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.host, args.port, args.origin))
