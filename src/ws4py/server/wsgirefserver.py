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

Each request head is read on the server's :class:`~ws4py.manager.WebSocketManager`
loop, with no thread of its own, within :attr:`WSGIServer.handshake_timeout`
seconds for the whole head, so a slow or silent peer delays no one else's
handshake. At most :attr:`WSGIServer.max_pending_handshakes` connections wait
for their head at once: past it, the one that has waited longest is dropped to
make room, so idle connections cannot lock new clients out.

A WebSocket upgrade request is then answered on that loop too: the WSGI
application is called there (so it must not block; a
:class:`~ws4py.server.wsgiutils.WebSocketWSGIApplication` does not), with the
environ wsgiref would give it, and its 101 response is the first thing the
websocket writes. Any other request (no ``Upgrade: websocket``) is handed to
a thread of its own, as wsgiref's threading server would run it, at most
:attr:`WSGIServer.max_plain_requests` at once (503 past it), each dropped after
:attr:`WSGIServer.request_timeout` seconds of a silent peer. On a TLS
listening socket, wsgiref's own loop accepts and a thread per connection does
the TLS handshake and reads the head, under the same timeout and cap. Upgraded
connections all run on the manager; :meth:`WSGIServer.server_close` closes
them with 1001. The server speaks HTTP/1.1 (a request head is parsed strictly
by ws4py's own parser) and logs requests to the ``ws4py`` logger at debug level.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any
from wsgiref import simple_server

from ..channel import READ
from ..exc import HandshakeError
from ..manager import WebSocketManager
from ..protocol import Headers, Request, ServerHandshake
from ..protocol.http11 import HeadReader, serialize_response
from ..sockio import WOULD_BLOCK
from ..websocket import WebSocket

__all__ = ["WSGIServer", "WebSocketWSGIHandler", "WebSocketWSGIRequestHandler", "HandshakeReader", "Acceptor"]

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
        response = serialize_response(101, list(self.headers))  # type: ignore[arg-type]
        if self.request_handler.buffered:
            # On the loop: the websocket writes the 101 first, with what opened() sends.
            websocket.start_with(received=self.leftover, unsent=response)
        else:
            self.stdout.write(response)
            websocket.start_with(received=self.leftover)
        self.headers_sent = True
        self.request_handler.server.link_websocket_to_server(websocket)  # type: ignore[attr-defined]
        self.request_handler.log_request(101)


class _ParsedHeaders(Headers):
    """A head :class:`~ws4py.protocol.http11.HeadReader` parsed already, as wsgiref's
    ``get_environ`` reads ``handler.headers`` (an :class:`email.message.Message` there)."""

    __slots__ = ()

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.get_all(name)
        return values[0] if values else default  # the first, as email.message does

    def get_content_type(self) -> str:
        # Asked for only without a Content-Type field: email.message's default.
        return "text/plain"


class WebSocketWSGIRequestHandler(simple_server.WSGIRequestHandler):
    """Runs the app on a request head: read by :class:`WSGIServer` on its loop (``head``),
    or read here within the server's ``handshake_timeout``.

    ``buffered``: the response is written to :attr:`wfile`, a buffer (the
    server's loop sends it), not to the socket.
    """

    handler_class = WebSocketWSGIHandler

    def __init__(
        self,
        request: Any,
        client_address: Any,
        server: socketserver.BaseServer,
        head: tuple[bytes, bytes] | None = None,
        buffered: bool = False,
        parsed: Request | None = None,
    ) -> None:
        self.head = head
        self.buffered = buffered
        #: The request ``head`` holds, parsed already (its fields are not parsed again).
        self.parsed = parsed
        #: What was written to the buffer (``buffered``), once the request is handled.
        self.output = b""
        super().__init__(request, client_address, server)

    def setup(self) -> None:
        if not self.buffered:
            super().setup()
            return
        self.connection = self.request
        self.rfile = io.BytesIO()
        self.wfile = io.BytesIO()

    def finish(self) -> None:
        if self.buffered:
            self.output = self.wfile.getvalue()  # type: ignore[attr-defined]
        super().finish()

    def handle(self) -> None:
        if self.head is not None:  # read on the server's loop, which counted a plain request
            self._run(self.head)
            return
        head = self._read_head()
        if head is None:
            return
        server = self.server
        if not isinstance(server, WSGIServer) or self.parsed is None or _is_upgrade(self.parsed):
            self._run(head)
        elif server.plain_request_admitted():
            try:
                self._run(head)
            finally:
                server.plain_request_done()
        else:
            with contextlib.suppress(OSError):
                self.connection.sendall(BUSY)

    def _run(self, head: tuple[bytes, bytes]) -> None:
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

    def parse_request(self) -> bool:
        """wsgiref's parse, or, for a head parsed already (strictly, by ws4py's parser),
        the same attributes taken from it."""
        request = self.parsed
        if request is None:
            return super().parse_request()
        self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        self.request_version = self.requestline.rsplit(" ", 1)[-1]
        self.command, self.path = request.method, request.target
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")  # as http.server does (gh-87389)
        self.close_connection = True
        self.headers = _ParsedHeaders(request.headers.items())  # type: ignore[assignment]
        return True

    def _read_head(self) -> tuple[bytes, bytes] | None:
        """The request head and the bytes after it; ``None`` if the peer failed to send one."""
        sock = self.connection
        reader = HeadReader(is_request=True)
        received = bytearray()
        deadline = time.monotonic() + getattr(self.server, "handshake_timeout", 10.0)
        server = self.server
        if isinstance(server, WSGIServer):
            server.handshake_pending(self, lambda: _shut(sock))
        try:
            if isinstance(sock, ssl.SSLSocket):
                # Left to this thread by WSGIServer.get_request(), within the same deadline.
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                sock.do_handshake()
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
                head = reader.feed(chunk)
                if isinstance(head, Request):  # a reader made with is_request=True
                    self.parsed = head
                    break
        except HandshakeError as exc:
            with contextlib.suppress(OSError):
                sock.sendall(ServerHandshake.reject(exc))
            return None
        except OSError:
            return None
        finally:
            if isinstance(server, WSGIServer):
                server.handshake_done(self)
            # A plain request's body and response: a silent peer holds this thread that long.
            sock.settimeout(getattr(server, "request_timeout", None))
        leftover = reader.leftover
        return bytes(received[: len(received) - len(leftover)]), leftover

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)


def _shut(sock: socket.socket) -> None:
    """End a connection whose head a thread is reading: its ``recv()`` returns at once.

    The TCP shutdown alone (``SSLSocket.shutdown`` would also drop the TLS state
    under the reading thread)."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


#: The answer to a plain request past :attr:`WSGIServer.max_plain_requests`.
BUSY = serialize_response(503, [("Content-Length", "0"), ("Connection", "close")])


def _is_upgrade(request: Request) -> bool:
    return "websocket" in (request.headers.get("Upgrade") or "").lower()


class HandshakeReader:
    """A request head read on a loop with no thread of its own (a :class:`ws4py.channel.Channel`).

    It reads until the head is complete, then hands it to
    :meth:`WSGIServer.head_received`; a peer that has not sent a whole head
    by ``deadline`` (monotonic) is dropped, and one whose head breaks the
    parser's rules gets the error response.
    """

    __slots__ = ("client_address", "deadline", "loop", "reader", "received", "server", "sock")

    wanted_events = READ

    def __init__(
        self, server: WSGIServer, sock: socket.socket, client_address: Any, loop: Any, deadline: float
    ) -> None:
        self.server = server
        self.sock = sock
        self.client_address = client_address
        self.loop = loop
        self.deadline = deadline
        self.reader = HeadReader(is_request=True)
        self.received = bytearray()

    def fileno(self) -> int:
        return self.sock.fileno()

    def next_deadline(self) -> float | None:
        return self.deadline

    def on_attached(self) -> None:
        self.server.handshake_pending(self, self.closed_by_loop)

    def on_writable(self) -> None:
        pass

    def _finish(self) -> bool:
        """Leave the loop and the server's pending handshakes; False if it had already."""
        self.server.handshake_done(self)
        return bool(self.loop.detach(self))

    def on_readable(self) -> None:
        sock = self.sock
        try:
            chunk = sock.recv(16384)
            while chunk and isinstance(sock, ssl.SSLSocket) and sock.pending():
                chunk += sock.recv(16384)
        except WOULD_BLOCK:
            return
        except OSError:
            self.closed_by_loop()
            return
        if not chunk:
            self.closed_by_loop()
            return
        self.received += chunk
        try:
            request = self.reader.feed(chunk)
        except HandshakeError as exc:
            self._finish()
            self.server.answer_and_close(sock, ServerHandshake.reject(exc))
            return
        if request is None:
            return
        self._finish()
        leftover = self.reader.leftover
        raw = bytes(self.received[: len(self.received) - len(leftover)])
        self.server.head_received(sock, self.client_address, (raw, leftover), request)  # type: ignore[arg-type]

    def on_timer(self, now: float) -> None:
        if now >= self.deadline:
            logger.info("Dropping %s: no complete request head in time", self.client_address)
            self.closed_by_loop()

    def handler_failed(self, error: Exception) -> None:
        logger.error("Dropping %s after an error", self.client_address, exc_info=error)
        self.closed_by_loop()

    def closed_by_loop(self) -> None:
        if self._finish():
            self.server.shutdown_request(self.sock)

    def __repr__(self) -> str:
        return f"<HandshakeReader {self.client_address}>"


class Acceptor:
    """The listening socket on the manager's loop (a :class:`ws4py.channel.Channel`):
    each connection it accepts gets a :class:`HandshakeReader` on the same loop, with no
    thread in between (see :meth:`WSGIServer.serve_forever`)."""

    __slots__ = ("loop", "server")

    wanted_events = READ

    #: Connections accepted per readiness event at most (the others wait for the next turn).
    batch = 64

    def __init__(self, server: WSGIServer, loop: Any) -> None:
        self.server = server
        self.loop = loop

    def fileno(self) -> int:
        return self.server.fileno()

    def next_deadline(self) -> float | None:
        return None

    def on_attached(self) -> None:
        pass

    def on_writable(self) -> None:
        pass

    def on_timer(self, now: float) -> None:
        pass

    def on_readable(self) -> None:
        server = self.server
        for _ in range(self.batch):
            try:
                request, client_address = server.get_request()
            except WOULD_BLOCK:
                return
            except OSError:
                logger.warning("accept() failed on %s", server.server_address, exc_info=True)
                return
            server.take_request(request, client_address)

    def handler_failed(self, error: Exception) -> None:
        logger.error("Error while accepting on %s", self.server.server_address, exc_info=error)

    def closed_by_loop(self) -> None:
        self.loop.detach(self)

    def __repr__(self) -> str:
        return f"<Acceptor {self.server.server_address}>"


class WSGIServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    """wsgiref's server, with a manager for the websockets, whose loop also reads
    the request heads and answers the upgrades (see the module docstring)."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    #: Seconds a client has to send its whole request head.
    handshake_timeout = 10.0
    #: Connections waiting for their request head at most. Past it, the one that has
    #: waited longest is dropped to make room: idle or slow peers cannot lock new
    #: clients out (and each is held :attr:`handshake_timeout` seconds at most).
    max_pending_handshakes = 1024
    #: Seconds a plain (non-upgrade) request's thread waits on a silent peer, reading the
    #: body or writing the response, before the connection is dropped.
    request_timeout = 60.0
    #: Plain (non-upgrade) requests running at once, each on a thread of its own. Past it,
    #: a new one is answered 503 at once: slow peers cannot pile up threads.
    max_plain_requests = 256
    manager: WebSocketManager | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._pending: dict[object, Callable[[], None]] = {}  # oldest first
        self._pending_lock = threading.Lock()
        self._plain_running = 0
        super().__init__(*args, **kwargs)
        self._upgraded: set[int] = set()
        self._stop_serving = threading.Event()
        self._not_serving = threading.Event()
        self._not_serving.set()

    def _on_loop(self) -> bool:
        """Whether requests are read on the manager's loop: ws4py's request handler, and no
        TLS on the listening socket (its accept() does the TLS handshake, which may wait)."""
        handler_cls: Any = self.RequestHandlerClass
        return (
            isinstance(handler_cls, type)
            and issubclass(handler_cls, WebSocketWSGIRequestHandler)
            and not isinstance(self.socket, ssl.SSLSocket)
        )

    def get_request(self) -> tuple[Any, Any]:
        """Accept a connection. On a TLS listening socket the TLS handshake is left to the
        thread that reads the request head, within :attr:`handshake_timeout`: done here,
        in ``ssl``'s ``accept()``, one silent peer would stall every later accept."""
        listener = self.socket
        if not isinstance(listener, ssl.SSLSocket):
            return super().get_request()
        sock, address = socket.socket.accept(listener)  # the TCP connection, not yet TLS
        try:
            conn = listener.context.wrap_socket(
                sock,
                server_side=True,
                do_handshake_on_connect=False,
                suppress_ragged_eofs=getattr(listener, "suppress_ragged_eofs", True),
            )
        except BaseException:
            sock.close()
            raise
        return conn, address

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Serve until :meth:`shutdown`: the manager's loop accepts the connections and reads
        their heads (an :class:`Acceptor`); this thread only waits, calling
        :meth:`service_actions` every ``poll_interval`` seconds. On a TLS listening socket,
        or with another request handler class, wsgiref's own loop accepts here."""
        if not self._on_loop():
            super().serve_forever(poll_interval)
            return
        if self.manager is None:
            self.initialize_websockets_manager()
        assert self.manager is not None
        loop = self.manager.loop
        acceptor = Acceptor(self, loop)
        self._not_serving.clear()
        try:
            self.socket.setblocking(False)
            loop.attach(acceptor)
            while not self._stop_serving.wait(poll_interval):
                self.service_actions()
        finally:
            detached = threading.Event()

            def detach() -> None:
                loop.detach(acceptor)
                detached.set()

            loop.call_soon(detach)
            detached.wait(10.0)
            with contextlib.suppress(OSError):
                self.socket.setblocking(True)
            self._stop_serving.clear()
            self._not_serving.set()

    def shutdown(self) -> None:
        """Stop :meth:`serve_forever` and wait until it returned."""
        if not self._on_loop():
            super().shutdown()
            return
        self._stop_serving.set()
        self._not_serving.wait()

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

    def handshake_pending(self, key: object, drop: Callable[[], None]) -> None:
        """``key`` waits for a request head; ``drop()`` ends it. Past
        :attr:`max_pending_handshakes`, the oldest waiting are dropped (on the caller's
        thread: the loop's for the heads it reads)."""
        with self._pending_lock:
            pending = self._pending
            pending[key] = drop
            excess = list(itertools.islice(pending, max(0, len(pending) - self.max_pending_handshakes)))
            dropped = [pending.pop(oldest) for oldest in excess]
        for drop_oldest in dropped:
            logger.info(
                "Dropping a connection of %s: over %d waiting for their request head",
                self.server_address,
                self.max_pending_handshakes,
            )
            drop_oldest()

    def plain_request_admitted(self) -> bool:
        """Whether a plain request may start its thread (under :attr:`max_plain_requests`);
        if so, :meth:`plain_request_done` must follow."""
        with self._pending_lock:
            if self._plain_running >= self.max_plain_requests:
                logger.info("Answering 503: %d plain requests running", self._plain_running)
                return False
            self._plain_running += 1
            return True

    def plain_request_done(self) -> None:
        """A plain request admitted by :meth:`plain_request_admitted` ended."""
        with self._pending_lock:
            self._plain_running -= 1

    def handshake_done(self, key: object) -> None:
        """``key`` no longer waits for its request head (it came, or the connection ended)."""
        with self._pending_lock:
            self._pending.pop(key, None)

    def take_request(self, request: Any, client_address: Any) -> None:
        """An accepted connection (on the loop): :meth:`process_request` unless refused."""
        if not self.verify_request(request, client_address):
            self.shutdown_request(request)
            return
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self.shutdown_request(request)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Read the request head on the manager's loop (a :class:`HandshakeReader`)."""
        handler_cls: Any = self.RequestHandlerClass
        if not (isinstance(handler_cls, type) and issubclass(handler_cls, WebSocketWSGIRequestHandler)):
            super().process_request(request, client_address)  # a thread that reads it all
            return
        if self.manager is None:
            self.initialize_websockets_manager()
        assert self.manager is not None
        loop = self.manager.loop
        request.setblocking(False)
        reader = HandshakeReader(self, request, client_address, loop, time.monotonic() + self.handshake_timeout)
        if loop.in_loop():
            loop.register(reader)  # accepted on the loop: read its head from this turn on
        else:
            loop.attach(reader)

    def head_received(self, sock: Any, client_address: Any, head: tuple[bytes, bytes], request: Request) -> None:
        """A :class:`HandshakeReader` read this head (on the loop): answer an upgrade here,
        run any other request on a thread of its own."""
        if not _is_upgrade(request):
            if not self.plain_request_admitted():
                self.answer_and_close(sock, BUSY)
                return
            sock.settimeout(self.request_timeout)
            thread = threading.Thread(
                target=self._plain_request, args=(sock, client_address, head), name="wsgiref-request", daemon=True
            )
            try:
                thread.start()
            except BaseException:
                self.plain_request_done()
                self.shutdown_request(sock)
                raise
            return
        try:
            handler_cls: Any = self.RequestHandlerClass
            handler = handler_cls(sock, client_address, self, head=head, buffered=True, parsed=request)
        except Exception:
            self.handle_error(sock, client_address)
            self.shutdown_request(sock)
            return
        if id(sock) in self._upgraded:
            self._upgraded.discard(id(sock))  # the websocket owns the socket now
            return
        self.answer_and_close(sock, handler.output)

    def _plain_request(self, sock: Any, client_address: Any, head: tuple[bytes, bytes]) -> None:
        try:
            handler_cls: Any = self.RequestHandlerClass
            handler_cls(sock, client_address, self, head=head)
        except Exception:
            self.handle_error(sock, client_address)
        finally:
            self.plain_request_done()
            self.shutdown_request(sock)

    def answer_and_close(self, sock: Any, response: bytes) -> None:
        """Write a short response without waiting (what the socket takes), then close."""
        with contextlib.suppress(OSError):
            sent = 0
            while sent < len(response):
                sent += sock.send(response[sent:])
        self.shutdown_request(sock)

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
