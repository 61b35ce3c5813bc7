"""A WSGI application that upgrades requests to WebSocket.

Contract with the WSGI server: it puts the connection's socket in
``environ['ws4py.socket']``; after the application returned, it finds the
new websocket in ``environ['ws4py.websocket']``, writes the 101 response
without closing the socket, and hands the websocket to a manager (or runs
it). :mod:`ws4py.server.wsgirefserver` does all of that for wsgiref.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..exc import HandshakeError
from ..protocol import DeflateOptions, Headers, Request, ServerHandshake
from ..protocol.deflate import EXTENSION_NAME
from ..protocol.http11 import REASONS
from ..websocket import WebSocket

__all__ = ["WebSocketWSGIApplication", "request_from_environ"]


def request_from_environ(environ: dict[str, Any]) -> Request:
    """The HTTP request a WSGI ``environ`` describes (headers from its ``HTTP_*`` keys)."""
    headers = Headers()
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.add(key[5:].replace("_", "-"), value)
    target = environ.get("PATH_INFO", "/") or "/"
    if environ.get("QUERY_STRING"):
        target += "?" + environ["QUERY_STRING"]
    return Request(environ.get("REQUEST_METHOD", "GET"), target, headers)


class WebSocketWSGIApplication:
    """Upgrade each request to a WebSocket run by an instance of ``handler_cls``.

    ``protocols`` lists the subprotocols the server speaks, in its order of
    preference; ``extensions`` may contain ``"permessage-deflate"`` to
    accept compression. A request that is not a valid WebSocket upgrade gets
    a plain-text HTTP error saying why (400, 403, 405, or 426 with the
    supported version).
    """

    def __init__(
        self,
        protocols: list[str] | None = None,
        extensions: list[str] | None = None,
        handler_cls: type[WebSocket] = WebSocket,
    ) -> None:
        self.protocols = protocols
        self.extensions = extensions
        self.handler_cls = handler_cls

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        handshake = ServerHandshake(
            subprotocols=self.protocols,
            compression=DeflateOptions() if EXTENSION_NAME in (self.extensions or ()) else None,
        )
        try:
            headers = handshake.negotiate(request_from_environ(environ))
            sock = environ.get("ws4py.socket")
            if sock is None:
                raise HandshakeError("this WSGI server does not hand over its socket (ws4py.socket)", 500)
        except HandshakeError as exc:
            body = f"{exc.msg}\n".encode()
            status = exc.status or 400
            start_response(
                f"{status} {REASONS.get(status, 'Error')}",
                [*exc.headers, ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))],
            )
            return [body]
        start_response("101 Switching Protocols", headers)
        protocols = [handshake.subprotocol] if handshake.subprotocol else []
        extensions = [EXTENSION_NAME] if handshake.extensions else []
        websocket = self.make_websocket(sock, protocols, extensions, environ)
        websocket.protocol = handshake.connection(max_message_size=websocket.max_message_size)
        return []

    def make_websocket(
        self, sock: Any, protocols: list[str], extensions: list[str], environ: dict[str, Any]
    ) -> WebSocket:
        """Create the websocket and leave it in ``environ['ws4py.websocket']`` for the server."""
        websocket = self.handler_cls(sock, protocols, extensions, environ.copy())
        environ["ws4py.websocket"] = websocket
        return websocket
