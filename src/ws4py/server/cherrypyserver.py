"""WebSocket in CherryPy: a tool that upgrades requests, a plugin that runs the websockets.

::

    import cherrypy
    from ws4py.server.cherrypyserver import WebSocketPlugin, WebSocketTool
    from ws4py.websocket import EchoWebSocket

    cherrypy.config.update({'server.socket_port': 9000})
    WebSocketPlugin(cherrypy.engine).subscribe()
    cherrypy.tools.websocket = WebSocketTool()

    class Root(object):
        @cherrypy.expose
        def ws(self):
            handler = cherrypy.request.ws_handler  # the new EchoWebSocket

    cherrypy.quickstart(Root(), '/', config={'/ws': {'tools.websocket.on': True,
                                                     'tools.websocket.handler_cls': EchoWebSocket}})

:class:`WebSocketTool` answers the opening handshake of the requests it is
turned on for (the core's :class:`~ws4py.protocol.ServerHandshake`: a request
that is not a valid upgrade gets a plain-text HTTP error saying why) and
creates ``handler_cls``'s instance, ``cherrypy.request.ws_handler``.

The connection changes hands through cheroot's supported seams only: the
plugin gives CherryPy's HTTP server a :class:`WebSocketGateway` (cheroot lets
a server choose its WSGI gateway class) whose environ carries the connection's
socket. Once the 101 response is on the wire, the gateway tells cheroot to let
the connection go without closing its socket (``close_connection`` and
``linger``), takes the bytes cheroot had already read past the request head
(frames sent with the handshake) and publishes the websocket on the bus
channel ``handle-websocket``. The worker thread is then free for other
requests: the websockets all run on the :class:`WebSocketPlugin`'s
:class:`~ws4py.manager.WebSocketManager`, one thread for all of them.

The plugin also makes the servers' connections wait for silent or slow peers,
and do the TLS handshake of CherryPy's builtin ``ssl_module``, in cheroot's
selector (:mod:`ws4py.server.cherootconn`): cheroot's builtin adapter would
handshake on the thread that accepts every connection, where one silent peer
holds back every other client for the whole ``socket_timeout``.
"""

from __future__ import annotations

import logging
import ssl
import sys
import threading
from typing import Any

import cherrypy
from cheroot import wsgi as cheroot_wsgi
from cherrypy.process import plugins, servers

from .. import WS_VERSION
from ..exc import HandshakeError
from ..manager import WebSocketManager
from ..messaging import Message
from ..websocket import WebSocket
from .cherootconn import defer_handshakes
from .wsgiutils import agreed, negotiate_environ, refusal

__all__ = [
    "WebSocketTool",
    "WebSocketPlugin",
    "WebSocketGateway",
    "WebSocketGatewayMixin",
    "install_gateway",
    "GATEWAY_KEY",
]

logger = logging.getLogger("ws4py")

#: The environ key of the :class:`WebSocketGateway` serving the request.
GATEWAY_KEY = "ws4py.gateway"
#: Environ keys left out of the websocket's copy: they hold cheroot's connection objects,
#: which would stay in memory as long as the websocket.
_NOT_COPIED = frozenset({GATEWAY_KEY, "wsgi.input", "wsgi.errors"})


class WebSocketGatewayMixin:
    """What turns a cheroot WSGI gateway into one that hands its connection over.

    Its environ carries ``ws4py.socket`` (the connection's socket) and
    :data:`GATEWAY_KEY` (the gateway); an application that accepted an upgrade
    calls :meth:`upgrade_to` (the tool does, and so does a
    :class:`~ws4py.server.wsgiutils.WebSocketWSGIApplication` grafted on
    CherryPy's tree). After the application's 101 response is written,
    the connection is released to the websocket, which is published on the
    bus channel ``handle-websocket`` with the peer's address.
    """

    req: Any
    _websocket: WebSocket | None = None

    def get_environ(self) -> Any:
        environ: dict[str, Any] = super().get_environ()  # type: ignore[misc]
        environ["ws4py.socket"] = self.req.conn.socket
        environ[GATEWAY_KEY] = self
        return environ

    def upgrade_to(self, websocket: WebSocket) -> None:
        """Hand the connection to ``websocket`` once a 101 response is sent."""
        self._websocket = websocket

    def respond(self) -> None:
        self._websocket = None
        super().respond()  # type: ignore[misc]
        websocket, self._websocket = self._websocket, None
        req = self.req
        if websocket is None or not (req.sent_headers and req.status[:3] == b"101"):
            return  # no upgrade, or the application answered otherwise (an error)
        conn = req.conn
        req.close_connection = True  # cheroot reads no other request on it...
        conn.linger = True  # ...and releases the connection without closing its socket
        websocket.start_with(received=_take_over(conn))
        address = (conn.remote_addr, conn.remote_port)
        if not cherrypy.engine.publish("handle-websocket", websocket, address):
            logger.error("No WebSocketPlugin took the websocket of %s: closing it", address)
            websocket.terminate()


class WebSocketGateway(WebSocketGatewayMixin, cheroot_wsgi.Gateway_10):
    """cheroot's WSGI 1.0 gateway (CherryPy's default), handing upgraded connections over."""


def _take_over(conn: Any) -> bytes:
    """The bytes cheroot read past the request head: what its reader holds buffered
    and, on TLS, what OpenSSL holds decrypted already (no readiness event would
    announce either). cheroot's file objects hold no reference count on the socket
    (they are plain ``SocketIO``): once cheroot lets go, the websocket alone closes it."""
    rfile = conn.rfile
    chunks = []
    while rfile.has_data():
        chunks.append(rfile.read1(65536))  # from its buffer only: it has data
    sock = conn.socket
    if isinstance(sock, ssl.SSLSocket):
        while sock.pending():
            chunks.append(sock.recv(sock.pending()))
    return b"".join(chunks)


_gateways: dict[type, type] = {}


def install_gateway(server: Any = None) -> None:
    """Give ``server`` (a CherryPy :class:`~cherrypy.process.servers.ServerAdapter` such as
    ``cherrypy.server``, the default) an HTTP server whose gateway hands upgraded
    connections over. The plugin does it for every server subscribed to its bus when
    the engine starts.

    The server's connections also wait for silent or slow peers, and do the TLS
    handshake of CherryPy's builtin ``ssl_module``, in cheroot's selector rather than
    on its accept thread or a worker (:func:`ws4py.server.cherootconn.defer_handshakes`):
    such a peer delays no one and is dropped after ``socket_timeout``."""
    server = cherrypy.server if server is None else server
    if server.httpserver is None and hasattr(server, "httpserver_from_self"):
        # What cherrypy.server's start() does first; done here, the gateway is in place
        # before the server listens.
        server.httpserver, server.bind_addr = server.httpserver_from_self()
    httpserver = server.httpserver
    defer_handshakes(httpserver)
    gateway = getattr(httpserver, "gateway", None)
    if not isinstance(gateway, type) or not issubclass(gateway, cheroot_wsgi.Gateway):
        logger.warning("%r has no cheroot WSGI gateway: it cannot hand connections to websockets", httpserver)
        return
    if issubclass(gateway, WebSocketGatewayMixin):
        return
    if gateway is cheroot_wsgi.Gateway_10:
        httpserver.gateway = WebSocketGateway
    else:  # another WSGI version, or the application's own gateway
        if gateway not in _gateways:
            _gateways[gateway] = type(f"WebSocket{gateway.__name__}", (WebSocketGatewayMixin, gateway), {})
        httpserver.gateway = _gateways[gateway]


def _servers_of(bus: Any) -> list[Any]:
    """The HTTP servers subscribed to ``bus`` (``cherrypy.server`` and any other
    :class:`~cherrypy.process.servers.ServerAdapter`): the owners of its ``start`` listeners."""
    owners = (getattr(listener, "__self__", None) for listener in bus.listeners.get("start", ()))
    return [owner for owner in owners if isinstance(owner, servers.ServerAdapter)]


class WebSocketTool(cherrypy.Tool):  # type: ignore[misc]
    """Upgrades the requests it is turned on for to WebSocket (see the module docstring).

    Its configuration (``tools.websocket.*``, per path): ``handler_cls`` (the
    :class:`~ws4py.websocket.WebSocket` subclass to create), ``protocols`` (the
    subprotocols spoken, in order of preference), ``extensions``
    (``["permessage-deflate"]`` accepts compression), ``heartbeat_freq``
    (seconds between pings) and ``origins`` (the allowed ``Origin`` values,
    403 for any other; every origin by default: see
    :class:`~ws4py.server.wsgiutils.WebSocketWSGIApplication`).
    """

    def __init__(self) -> None:
        super().__init__("before_request_body", self.upgrade)

    def upgrade(
        self,
        protocols: list[str] | None = None,
        extensions: list[str] | None = None,
        version: Any = WS_VERSION,
        handler_cls: type[WebSocket] = WebSocket,
        heartbeat_freq: float | None = None,
        origins: list[str | None] | None = None,
    ) -> None:
        """Answer the handshake: a 101 and ``request.ws_handler``, or a plain-text error
        (the page handler then does not run). ``version`` is kept for 0.6's callers:
        the core speaks version 13."""
        request = cherrypy.serving.request
        response = cherrypy.serving.response
        environ = request.wsgi_environ
        try:
            handshake, headers = negotiate_environ(environ, protocols, extensions, origins)
            gateway = environ.get(GATEWAY_KEY)
            if gateway is None or not cherrypy.engine.listeners.get("handle-websocket"):
                raise HandshakeError(
                    "this server cannot hand connections to websockets: "
                    "subscribe a ws4py.server.cherrypyserver.WebSocketPlugin before the engine starts",
                    500,
                )
        except HandshakeError as exc:
            status, error_headers, body = refusal(exc)
            response.status = status
            for name, value in error_headers:
                response.headers[name] = value
            response.body = body
            request.handler = None  # answered: no page handler
            return
        response.status = "101 Switching Protocols"
        for name, value in headers:
            response.headers[name] = value
        response.headers.pop("Content-Type", None)
        agreed_protocols, agreed_extensions = agreed(handshake)
        websocket = handler_cls(
            environ["ws4py.socket"],
            agreed_protocols,
            agreed_extensions,
            # Interned keys: cheroot makes every HTTP_* name anew per request, and an
            # idle websocket's copy would hold its own (1.7 KiB of its 3.6 KiB).
            {sys.intern(key): value for key, value in environ.items() if key not in _NOT_COPIED},
            heartbeat_freq=heartbeat_freq,
        )
        websocket.protocol = handshake.connection(max_message_size=websocket.max_message_size)
        request.ws_handler = websocket
        gateway.upgrade_to(websocket)


class WebSocketPlugin(plugins.SimplePlugin):  # type: ignore[misc]
    """Runs the websockets of the engine's servers on one :class:`~ws4py.manager.WebSocketManager`.

    Subscribed, it answers the bus channels ``handle-websocket`` (a websocket
    the :class:`WebSocketTool` upgraded) and ``websocket-broadcast``
    (``cherrypy.engine.publish('websocket-broadcast', message)`` sends
    ``message`` to every websocket). When the engine starts it gives
    each HTTP server subscribed to the bus (``cherrypy.server`` and any other)
    its :class:`WebSocketGateway`, and starts the manager; when it stops,
    every websocket is closed with 1001 and its socket released. A manager
    runs once: each start makes a new one (:attr:`manager`).
    """

    def __init__(self, bus: Any) -> None:
        super().__init__(bus)
        #: The manager running the websockets (a new one at each engine start).
        self.manager = WebSocketManager()
        self._lock = threading.Lock()
        self._accepting = False

    def subscribe(self) -> None:
        """Listen to the engine's channels and to ``handle-websocket`` and ``websocket-broadcast``."""
        super().subscribe()
        self.bus.subscribe("handle-websocket", self.handle)
        self.bus.subscribe("websocket-broadcast", self.broadcast)

    def unsubscribe(self) -> None:
        """Stop listening to the bus."""
        super().unsubscribe()
        self.bus.unsubscribe("handle-websocket", self.handle)
        self.bus.unsubscribe("websocket-broadcast", self.broadcast)

    def start(self) -> None:
        """Give the bus's HTTP servers their gateway and start a manager."""
        for server in _servers_of(self.bus):
            install_gateway(server)
        with self._lock:
            if self.manager.ident is not None:  # a thread starts once: a restart needs a new one
                self.manager = WebSocketManager()
            self.manager.start()
            self._accepting = True

    # Before the HTTP server starts listening (75): no request comes before the gateway.
    start.priority = 70  # type: ignore[attr-defined]

    def stop(self) -> None:
        """Close every websocket with 1001 and stop the manager."""
        self.cleanup()

    def handle(self, ws_handler: WebSocket, peer_addr: Any = None) -> None:
        """Run ``ws_handler`` (its 101 is sent) on the manager."""
        with self._lock:
            if self._accepting:
                self.manager.add(ws_handler)
                return
        logger.info("Closing the websocket of %s: the engine is stopping", peer_addr)
        ws_handler.terminate()

    def cleanup(self) -> None:
        """Close every websocket with 1001, stop the manager and wait for it."""
        with self._lock:
            self._accepting = False
            manager = self.manager
        if manager.ident is None:
            return
        manager.close_all(1001, "Server is shutting down")
        manager.stop()  # each websocket gets its close_timeout to finish, then is dropped
        manager.join()

    def broadcast(self, message: str | bytes | Message, binary: bool = False) -> None:
        """Send ``message`` to every websocket, without waiting (see
        :meth:`ws4py.manager.WebSocketManager.broadcast`)."""
        self.manager.broadcast(message, binary)
