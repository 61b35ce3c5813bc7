"""ws4py's client: the opening handshake on a socket of its own, then a :class:`WebSocket`.

``ws://`` and ``wss://`` URLs (TLS verifies the server's certificate and name
by default), IPv4 and IPv6 hosts, and ``ws+unix:///path`` for a Unix socket.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import time
from typing import Any

from ..exc import HandshakeError
from ..protocol import ClientHandshake, DeflateOptions
from ..protocol.deflate import EXTENSION_NAME
from ..protocol.uri import parse_uri
from ..websocket import WebSocket

__all__ = ["WebSocketBaseClient", "client_ssl_context"]


def client_ssl_context(options: dict[str, Any]) -> ssl.SSLContext:
    """The TLS context a client's ``ssl_options`` describe (see :class:`WebSocketBaseClient`):
    the server's certificate and name verified unless ``cert_reqs`` is ``ssl.CERT_NONE``."""
    context: ssl.SSLContext | None = options.get("context")
    if context is not None:
        return context
    context = ssl.create_default_context(cafile=options.get("ca_certs"))
    if options.get("certfile"):
        context.load_cert_chain(options["certfile"], options.get("keyfile"))
    if options.get("cert_reqs") == ssl.CERT_NONE:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif "check_hostname" in options:
        context.check_hostname = bool(options["check_hostname"])
    if options.get("ciphers"):
        context.set_ciphers(options["ciphers"])
    return context


class WebSocketBaseClient(WebSocket):
    """A client websocket: ``connect()`` performs the handshake, then calls :meth:`handshake_ok`.

    ``protocols`` are the subprotocols to offer; ``extensions`` may contain
    ``"permessage-deflate"`` to offer compression. ``ssl_options`` may hold
    ``ca_certs``, ``certfile``, ``keyfile``, ``cert_reqs`` (``ssl.CERT_NONE``
    turns verification off), ``check_hostname``, ``server_hostname`` or a
    ready ``context``. ``headers`` are extra ``(name, value)`` pairs (one
    named like a default header replaces it); ``exclude_headers`` names
    default headers not to send. After a handshake the negotiated
    subprotocol and extensions are in ``protocols`` and ``extensions``.
    """

    #: Seconds for connecting plus the whole opening handshake.
    open_timeout = 10.0

    def __init__(
        self,
        url: str,
        protocols: list[str] | None = None,
        extensions: list[str] | None = None,
        heartbeat_freq: float | None = None,
        ssl_options: dict[str, Any] | None = None,
        headers: list[tuple[str, str]] | None = None,
        exclude_headers: list[str] | None = None,
    ) -> None:
        super().__init__(None, protocols, extensions, heartbeat_freq=heartbeat_freq)
        self.url = url
        uri = parse_uri(url, unix=True)
        self.scheme = ("wss" if uri.secure else "ws") + ("+unix" if uri.unix_path else "")
        self.secure = uri.secure
        self.unix_socket_path: str | None = uri.unix_path
        self.host = uri.host
        self.port: int | None = uri.port
        self.resource = uri.resource
        self.ssl_options = dict(ssl_options or {})
        self.extra_headers = list(headers or [])
        self.exclude_headers = [name.lower() for name in exclude_headers or []]
        self.key = base64.b64encode(os.urandom(16))
        self.handshake: ClientHandshake | None = None

    @property
    def bind_addr(self) -> Any:
        """What the socket connects to: the Unix socket path or ``(host, port)``."""
        return self.unix_socket_path or (self.host, self.port)

    def connect(self) -> None:
        """Connect and perform the opening handshake, then call :meth:`handshake_ok`.

        Raises :class:`~ws4py.exc.HandshakeError` (with the server's
        ``status``) when the server refuses or answers outside RFC 6455,
        ``TimeoutError`` after :attr:`open_timeout`, ``OSError`` when the
        connection fails. The socket is closed on any failure.
        """
        if self.sock is not None:
            raise RuntimeError("this client is already connected; make a new one to reconnect")
        deadline = time.monotonic() + self.open_timeout
        sock = self._open_socket()
        try:
            if self.secure:
                sock = self._ssl_context().wrap_socket(
                    sock, server_hostname=self.ssl_options.get("server_hostname", self.host)
                )
            handshake = ClientHandshake(
                self.host,
                self.resource,
                port=self.port,
                secure=self.secure,
                subprotocols=self.protocols,
                compression=DeflateOptions() if EXTENSION_NAME in self.extensions else None,
                headers=self.extra_headers,
                exclude_headers=self.exclude_headers,
                key=self.key.decode("ascii"),
            )
            sock.sendall(handshake.request_bytes())
            while True:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                data = sock.recv(4096)
                if not data:
                    raise HandshakeError("the server closed the connection during the handshake", None)
                if handshake.receive_data(data) is not None:
                    break
            sock.settimeout(None)
        except BaseException:
            sock.close()
            raise
        self.handshake = handshake
        self.sock = sock
        self.protocol = handshake.connection(max_message_size=self.max_message_size)
        self.protocols = [handshake.subprotocol] if handshake.subprotocol else []
        self.extensions = [EXTENSION_NAME] if handshake.extensions else []
        # Frames that came with the 101 response: the reader parses them before anything after.
        self.start_with(received=handshake.leftover)
        self.handshake_ok()

    def _open_socket(self) -> socket.socket:
        if self.unix_socket_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.open_timeout)
                sock.connect(self.unix_socket_path)
            except BaseException:
                sock.close()
                raise
            return sock
        sock = socket.create_connection((self.host, self.port or 80), timeout=self.open_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _ssl_context(self) -> ssl.SSLContext:
        return client_ssl_context(self.ssl_options)

    def handshake_ok(self) -> None:
        """Called by :meth:`connect` once the handshake succeeded.

        By default it calls :meth:`opened`. Override it to hand the websocket
        to a :class:`~ws4py.manager.WebSocketManager` (``manager.add(self)``,
        which calls ``opened()`` itself) or call :meth:`run`.
        """
        self._notify_opened()
