"""A WSGI application that upgrades requests to WebSocket.

Contract with the WSGI server: it puts the connection's socket in
``environ['ws4py.socket']``; after the application returned, it finds the
new websocket in ``environ['ws4py.websocket']``, writes the 101 response
without closing the socket, and hands the websocket to a manager (or runs
it). :mod:`ws4py.server.wsgirefserver` does all of that for wsgiref. A server
whose applications may see only a copy of its environ (CherryPy's tree copies
it) also puts an object in ``environ['ws4py.gateway']``, whose
``upgrade_to(websocket)`` the application calls: see
:mod:`ws4py.server.cherrypyserver`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..exc import HandshakeError
from ..protocol import DeflateOptions, Headers, Request, ServerHandshake
from ..protocol.deflate import EXTENSION_NAME
from ..protocol.http11 import REASONS
from ..websocket import WebSocket

__all__ = ["WebSocketWSGIApplication", "request_from_environ", "negotiate_environ", "agreed", "refusal"]


#: Fields the handshake takes once only, whose values hold no comma: a WSGI server
#: joins repeated fields with commas (PEP 3333), so a comma there is a repeat.
_SINGLE_VALUED = frozenset({"HTTP_HOST", "HTTP_ORIGIN", "HTTP_SEC_WEBSOCKET_KEY", "HTTP_SEC_WEBSOCKET_VERSION"})


def request_from_environ(environ: dict[str, Any]) -> Request:
    """The HTTP request a WSGI ``environ`` describes (headers from its ``HTTP_*`` keys).

    A single-valued field the server joined from repeats (``Host: a`` and
    ``Host: b`` as ``HTTP_HOST="a,b"``) comes back as its repeats, so the
    handshake refuses it as it refuses them on the other servers.
    """
    fields: list[tuple[str, str]] = []
    for key, value in environ.items():
        if key[:5] == "HTTP_":
            name = key[5:].replace("_", "-")
            if key in _SINGLE_VALUED and "," in value:
                fields.extend((name, part.strip()) for part in value.split(","))
            else:
                fields.append((name, value.strip()))
    headers = Headers(fields)
    target = environ.get("PATH_INFO", "/") or "/"
    if environ.get("QUERY_STRING"):
        target += "?" + environ["QUERY_STRING"]
    return Request(environ.get("REQUEST_METHOD", "GET"), target, headers)


def negotiate_environ(
    environ: dict[str, Any],
    protocols: list[str] | None = None,
    extensions: list[str] | None = None,
    origins: Iterable[str | None] | None = None,
) -> tuple[ServerHandshake, list[tuple[str, str]]]:
    """The opening handshake of the upgrade request ``environ`` describes: the core's
    :class:`~ws4py.protocol.ServerHandshake` and the headers of its 101 response.

    Raises :class:`~ws4py.exc.HandshakeError` (with the HTTP status) when the
    request is not a valid upgrade (:func:`refusal` is the response to send).
    ``protocols``, ``extensions`` and ``origins`` are as
    :class:`WebSocketWSGIApplication` takes them. Once the 101 is sent,
    ``handshake.connection(...)`` is the websocket's protocol connection.
    """
    handshake = ServerHandshake(
        subprotocols=protocols,
        compression=DeflateOptions() if EXTENSION_NAME in (extensions or ()) else None,
        origins=None if origins is None else list(origins),
    )
    return handshake, handshake.negotiate(request_from_environ(environ))


def agreed(handshake: ServerHandshake) -> tuple[list[str], list[str]]:
    """The subprotocols and extensions a successful ``handshake`` agreed on, as a
    :class:`~ws4py.websocket.WebSocket` takes them."""
    protocols = [handshake.subprotocol] if handshake.subprotocol else []
    extensions = [EXTENSION_NAME] if handshake.extensions else []
    return protocols, extensions


def refusal(exc: HandshakeError) -> tuple[str, list[tuple[str, str]], bytes]:
    """The plain-text HTTP response refusing an upgrade: status line, headers, body."""
    body = f"{exc.msg}\n".encode()
    status = exc.status or 400
    headers = [*exc.headers, ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    return f"{status} {REASONS.get(status, 'Error')}", headers, body


class WebSocketWSGIApplication:
    """Upgrade each request to a WebSocket run by an instance of ``handler_cls``.

    ``protocols`` lists the subprotocols the server speaks, in its order of
    preference; ``extensions`` may contain ``"permessage-deflate"`` to
    accept compression. A request that is not a valid WebSocket upgrade gets
    a plain-text HTTP error saying why (400, 403, 405, or 426 with the
    supported version).

    ``origins`` lists the allowed ``Origin`` values, such as
    ``["https://chat.example.com"]`` (scheme, host and port, compared without
    regard to case; ``None`` in the list admits a request without ``Origin``,
    which browsers always send); any other request is refused with 403. By
    default (``None``) every origin is admitted. Set it when browsers
    connect: the same-origin policy does not apply to WebSocket, so without
    it any web page a user visits can open a connection to this server that
    carries the user's cookies and act on the user's behalf (cross-site
    WebSocket hijacking).
    """

    def __init__(
        self,
        protocols: list[str] | None = None,
        extensions: list[str] | None = None,
        handler_cls: type[WebSocket] = WebSocket,
        origins: Iterable[str | None] | None = None,
    ) -> None:
        self.protocols = protocols
        self.extensions = extensions
        self.handler_cls = handler_cls
        #: The allowed ``Origin`` values, ``None`` for any (see the class docstring).
        self.origins = None if origins is None else list(origins)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            handshake, headers = negotiate_environ(environ, self.protocols, self.extensions, self.origins)
            sock = environ.get("ws4py.socket")
            if sock is None:
                raise HandshakeError("this WSGI server does not hand over its socket (ws4py.socket)", 500)
        except HandshakeError as exc:
            status, error_headers, body = refusal(exc)
            start_response(status, error_headers)
            return [body]
        start_response("101 Switching Protocols", headers)
        protocols, extensions = agreed(handshake)
        websocket = self.make_websocket(sock, protocols, extensions, environ)
        websocket.protocol = handshake.connection(max_message_size=websocket.max_message_size)
        return []

    def make_websocket(
        self, sock: Any, protocols: list[str], extensions: list[str], environ: dict[str, Any]
    ) -> WebSocket:
        """Create the websocket and leave it in ``environ['ws4py.websocket']`` for the server."""
        websocket = self.handler_cls(sock, protocols, extensions, environ.copy())
        environ["ws4py.websocket"] = websocket
        gateway = environ.get("ws4py.gateway")
        if gateway is not None:
            gateway.upgrade_to(websocket)
        return websocket
