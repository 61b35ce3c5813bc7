"""CherryPy floor (reference): the least a WebSocket server inside CherryPy can spend per handshake and close.

Run in bench/.venvs/integrations: ``python cherrypy_floor.py PORT``. Not a WebSocket
library and not a competitor: CherryPy and cheroot as ``ws4py_cherrypy.py`` runs them
(``cherrypy.quickstart``, the same settings), the connection taken over from cheroot
the way ws4py takes it (``ws4py.server.cherrypyserver.install_gateway``), and then
nothing but the socket work. The page handler on ``/ws`` checks nothing: it answers
101 with the ``Sec-WebSocket-Accept`` of the request's key, through CherryPy's
response; once cheroot has sent it, the socket is registered, from the worker
thread, with one epoll thread that per readable event does one ``recv``, and for a
close frame sends a close frame back and closes the socket: no WebSocket object,
no manager, no callbacks, no locks, no limits, no UTF-8 check, no wake-up of the
poller. The handshake + close row only (an echo row would hang: data frames are
dropped). Whatever no server of this design beats, no WebSocket library inside
CherryPy beats either: its column says how far above ws4py 0.6.0 any can go.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from typing import Any

import cherrypy
from _common import configure_cherrypy, parse_args, prepare

from ws4py.protocol.handshake import accept_key
from ws4py.server.cherrypyserver import GATEWAY_KEY, install_gateway

CLOSE_1000 = b"\x88\x02\x03\xe8"


class Poller:
    """One epoll thread: each socket gets one close frame back, then is closed."""

    def __init__(self) -> None:
        self.epoll = select.epoll()
        self.socks: dict[int, socket.socket] = {}
        threading.Thread(target=self.run, name="floor poller", daemon=True).start()

    def add(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.socks[sock.fileno()] = sock
        self.epoll.register(sock.fileno(), select.EPOLLIN)

    def run(self) -> None:
        while True:
            for fd, _events in self.epoll.poll():
                sock = self.socks[fd]
                try:
                    data = sock.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data and data[0] & 0x0F != 0x8:
                    continue  # not a close frame: dropped (the floor serves the handshake row only)
                if data:
                    with contextlib.suppress(OSError):
                        sock.send(CLOSE_1000)
                self.epoll.unregister(fd)
                del self.socks[fd]
                sock.close()


class Handover:
    """What ws4py's gateway hands the connection to: registered with the poller once the 101 is out."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def start_with(self, received: bytes = b"") -> None:
        if received:  # the client waits for the 101 before it sends: never in this row
            raise RuntimeError("bytes with the handshake")

    def terminate(self) -> None:
        self.sock.close()


class Root:
    @cherrypy.expose  # type: ignore[misc]
    def index(self) -> str:
        return "some HTML with a websocket javascript connection"

    @cherrypy.expose  # type: ignore[misc]
    def ws(self) -> None:
        request, response = cherrypy.serving.request, cherrypy.serving.response
        environ = request.wsgi_environ
        response.status = "101 Switching Protocols"
        response.headers["Upgrade"] = "websocket"
        response.headers["Connection"] = "Upgrade"
        response.headers["Sec-WebSocket-Accept"] = accept_key(request.headers["Sec-WebSocket-Key"])
        response.headers.pop("Content-Type", None)
        environ[GATEWAY_KEY].upgrade_to(Handover(environ["ws4py.socket"]))


def main() -> None:
    args = parse_args(__doc__ or "")
    prepare()
    configure_cherrypy(args.port)
    poller = Poller()

    def handle(handover: Any, _address: Any = None) -> None:
        poller.add(handover.sock)

    cherrypy.engine.subscribe("handle-websocket", handle)
    # What ws4py's WebSocketPlugin does at engine start (priority 70: before the server listens).
    cherrypy.engine.subscribe("start", lambda: install_gateway(cherrypy.server), priority=70)
    cherrypy.quickstart(Root(), "/")


if __name__ == "__main__":
    main()
