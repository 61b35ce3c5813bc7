"""ws4py inside CherryPy: the Server page's snippet (``WebSocketPlugin`` + ``WebSocketTool``), echo or broadcast.

Run in bench/.venvs/integrations (this repository) or bench/.venvs/orig-integrations
(the original ws4py 0.6.0): ``python ws4py_cherrypy.py PORT [--broadcast]``. The same
file for both: the API is the same. The websocket lives on ``/ws`` (the load
generator gets ``--path /ws``), ``tools.websocket.handler_cls`` is ``EchoWebSocket``;
``--broadcast`` swaps in a handler that calls
``cherrypy.engine.publish('websocket-broadcast', ...)``, the documented way to reach
every peer. The snippet's ``cherrypy.quickstart`` with CherryPy's defaults
(``server.thread_pool`` 10, ``server.socket_queue_size`` 5), bound to 127.0.0.1:PORT,
with quiet logging: no access log, errors to stderr, no autoreloader polling the
files every second. ``--busy-poll SECONDS`` (this repository's ws4py only) sets
``ws4py.loop.EventLoop.busy_poll``, which the plugin's manager runs with.
"""

from __future__ import annotations

from typing import Any

import cherrypy
from _common import BROADCAST_COUNT, BROADCAST_PAYLOAD, BROADCAST_TRIGGER, configure_cherrypy, parse_args, prepare

from ws4py.server.cherrypyserver import WebSocketPlugin, WebSocketTool
from ws4py.websocket import EchoWebSocket, WebSocket


class BroadcastWebSocket(WebSocket):  # type: ignore[misc]
    def received_message(self, message: Any) -> None:
        if not message.is_binary and message.data == BROADCAST_TRIGGER.encode():
            for _ in range(BROADCAST_COUNT):
                cherrypy.engine.publish("websocket-broadcast", BROADCAST_PAYLOAD)


class Root:
    @cherrypy.expose  # type: ignore[misc]
    def index(self) -> str:
        return "some HTML with a websocket javascript connection"

    @cherrypy.expose  # type: ignore[misc]
    def ws(self) -> None:
        # you can access the class instance through
        handler = cherrypy.request.ws_handler  # noqa: F841 (the snippet's line)


def main() -> None:
    args = parse_args(__doc__ or "", busy_poll_choice=True)
    prepare()
    if args.busy_poll is not None:
        from ws4py.loop import EventLoop  # this repository's ws4py only (the reference peers)

        EventLoop.busy_poll = args.busy_poll
    handler_cls = BroadcastWebSocket if args.broadcast else EchoWebSocket
    configure_cherrypy(args.port)
    WebSocketPlugin(cherrypy.engine).subscribe()
    cherrypy.tools.websocket = WebSocketTool()
    cherrypy.quickstart(
        Root(), "/", config={"/ws": {"tools.websocket.on": True, "tools.websocket.handler_cls": handler_cls}}
    )


if __name__ == "__main__":
    main()
