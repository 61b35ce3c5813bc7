"""WebSocket on the standard library's :mod:`wsgiref` server.

::

    from wsgiref.simple_server import make_server
    from ws4py.websocket import EchoWebSocket
    from ws4py.server.wsgirefserver import WSGIServer, WebSocketWSGIRequestHandler
    from ws4py.server.wsgiutils import WebSocketWSGIApplication

    server = make_server('', 9000, server_class=WSGIServer,
                         handler_class=WebSocketWSGIRequestHandler,
                         app=WebSocketWSGIApplication(handler_cls=EchoWebSocket))
    server.initialize_websockets_manager()
    server.serve_forever()

Each request is read on a thread of its own, within
:attr:`WSGIServer.handshake_timeout` seconds for the whole head, so a slow
or silent peer delays no one else's handshake. Upgraded connections then
all run on the server's :class:`~ws4py.manager.WebSocketManager`.
:meth:`WSGIServer.server_close` closes them with 1001. The server speaks
HTTP/1.1 (a request head is parsed strictly by ws4py's own parser) and logs
requests to the ``ws4py`` logger at debug level.
"""

from __future__ import annotations

import contextlib
import io
import logging
import socket
import socketserver
import time
from typing import Any
from wsgiref import simple_server

from ..exc import HandshakeError
from ..manager import WebSocketManager
from ..protocol import ServerHandshake
from ..protocol.http11 import HeadReader, serialize_response
from ..websocket import WebSocket

__all__ = ["WSGIServer", "WebSocketWSGIHandler", "WebSocketWSGIRequestHandler"]

logger = logging.getLogger("ws4py")


class _Prefixed(io.RawIOBase):
    """The request body: the bytes read past the head first, then the socket."""

    def __init__(self, prefix: bytes, sock: socket.socket) -> None:
        self._prefix = prefix
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        return self._sock.recv_into(buffer)


class WebSocketWSGIHandler(simple_server.ServerHandler):
    """Runs the WSGI application; on an upgrade, answers 101 and hands over the socket."""

    leftover = b""
    # wsgiref copies the whole process environment into every request's environ
    # (a CGI habit); each websocket keeps a copy of its environ, so leave it out.
    os_environ: dict[str, str] = {}  # noqa: RUF012 - read-only, as in wsgiref
    environ: dict[str, Any]
    request_handler: WebSocketWSGIRequestHandler
    result: Any

    def setup_environ(self) -> None:
        super().setup_environ()
        self.environ["ws4py.socket"] = self.request_handler.connection

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if status.startswith("101"):
            # Upgrade and Connection are hop-by-hop headers, which wsgiref refuses.
            self.status, self.headers = status, headers  # type: ignore[assignment]
            return self.write
        return super().start_response(status, headers, exc_info)

    def finish_response(self) -> None:
        websocket: WebSocket | None = self.environ.get("ws4py.websocket")
        if websocket is None:
            super().finish_response()
            return
        if hasattr(self.result, "close"):
            self.result.close()
        self.stdout.write(serialize_response(101, list(self.headers)))  # type: ignore[arg-type]
        self.headers_sent = True
        websocket.start_with(received=self.leftover)
        self.request_handler.server.link_websocket_to_server(websocket)  # type: ignore[attr-defined]
        self.request_handler.log_request(101)


class WebSocketWSGIRequestHandler(simple_server.WSGIRequestHandler):
    """Reads the request head within the server's ``handshake_timeout``, then runs the app."""

    handler_class = WebSocketWSGIHandler

    def handle(self) -> None:
        head = self._read_head()
        if head is None:
            return
        raw, leftover = head
        self.rfile.close()
        self.rfile = io.BytesIO(raw)
        self.raw_requestline = self.rfile.readline(65537)
        if not self.parse_request():
            return
        self.rfile = io.BufferedReader(_Prefixed(leftover, self.connection))
        handler = self.handler_class(
            self.rfile,
            self.wfile,  # type: ignore[arg-type]
            self.get_stderr(),
            self.get_environ(),
            multithread=True,
        )
        handler.request_handler = self
        handler.leftover = leftover
        handler.run(self.server.get_app())  # type: ignore[attr-defined]

    def _read_head(self) -> tuple[bytes, bytes] | None:
        """The request head and the bytes after it; ``None`` if the peer failed to send one."""
        sock = self.connection
        reader = HeadReader(is_request=True)
        received = bytearray()
        deadline = time.monotonic() + getattr(self.server, "handshake_timeout", 10.0)
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    logger.info("Dropping %s: no complete request head in time", self.client_address)
                    return None
                sock.settimeout(remaining)
                chunk = sock.recv(16384)
                if not chunk:
                    return None
                received += chunk
                if reader.feed(chunk) is not None:
                    break
        except HandshakeError as exc:
            with contextlib.suppress(OSError):
                sock.sendall(ServerHandshake.reject(exc))
            return None
        except OSError:
            return None
        finally:
            sock.settimeout(None)
        leftover = reader.leftover
        return bytes(received[: len(received) - len(leftover)]), leftover

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)


class WSGIServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    """wsgiref's server, with a thread per request and a manager for the websockets."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    #: Seconds a client has to send its whole request head.
    handshake_timeout = 10.0
    manager: WebSocketManager | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._upgraded: set[int] = set()

    def initialize_websockets_manager(self) -> None:
        """Create and start the manager that runs the upgraded connections."""
        self.manager = WebSocketManager()
        self.manager.start()

    def link_websocket_to_server(self, websocket: WebSocket) -> None:
        """Hand ``websocket`` to the manager (started on first use if needed)."""
        if self.manager is None:
            self.initialize_websockets_manager()
        assert self.manager is not None
        self._upgraded.add(id(websocket.sock))
        self.manager.add(websocket)

    def shutdown_request(self, request: Any) -> None:
        if id(request) in self._upgraded:
            self._upgraded.discard(id(request))  # the websocket owns the socket now
            return
        super().shutdown_request(request)

    def server_close(self) -> None:
        """Stop listening, close every websocket with 1001 and wait for the manager."""
        super().server_close()
        if self.manager is not None:
            self.manager.close_all(1001, "Server is shutting down")
            self.manager.stop()
            if self.manager.is_alive():
                self.manager.join()
