"""WebSocket on gevent's WSGI server (:mod:`gevent.pywsgi`).

::

    from gevent import monkey; monkey.patch_all()
    from ws4py.websocket import EchoWebSocket
    from ws4py.server.geventserver import WSGIServer
    from ws4py.server.wsgiutils import WebSocketWSGIApplication

    server = WSGIServer(('localhost', 9000), WebSocketWSGIApplication(handler_cls=EchoWebSocket))
    server.serve_forever()

or ``WebSocketServer(('127.0.0.1', 9001), websocket_class=EchoWebSocket)``.

Every connection has a greenlet of its own (gevent's :class:`~gevent.server.StreamServer`
spawns one per connection and closes the socket when it returns). On an
upgrade request :class:`WebSocketWSGIHandler` puts the socket in
``environ['ws4py.socket']`` and runs the application; a
:class:`~ws4py.server.wsgiutils.WebSocketWSGIApplication` answers the
handshake and leaves its websocket in ``environ['ws4py.websocket']``. The
handler then writes the 101 response (ws4py's, before anything the
websocket sends), hands the websocket the bytes pywsgi read past the request
head (a first frame sent with the handshake), and drives it in the same
greenlet for its whole life, with a :class:`~ws4py.geventloop.GreenletLoop`,
tracked by the server's :class:`GEventWebSocketPool`: :meth:`WSGIServer.stop`
closes each websocket with 1001. Any other request is pywsgi's, as for any
WSGI application.

For applications written for gevent-websocket, an upgrade request to an
application that is not a ``WebSocketWSGIApplication`` finds a
:class:`WSGIWebSocket` in ``environ['wsgi.websocket']`` (when the handshake is
valid): a blocking API (``receive()``, ``send()``, ``close()``, ``closed``) used
from the application, in the handler's greenlet; the 101 goes out on its first use.

Each request head (and on a TLS server the TLS handshake) must arrive within
:attr:`WSGIServer.handshake_timeout` seconds, or the connection is dropped (a slow or silent peer has its own
greenlet: it delays no one else). The process is expected to be
monkey-patched (``monkey.patch_all()`` first), as gevent's own documentation asks.
"""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections import deque
from typing import Any

from gevent.pool import Pool

from gevent import Timeout, get_hub, getcurrent, kill, pywsgi, sleep, spawn_raw

from ..exc import HandshakeError
from ..geventloop import GreenletLoop
from ..messaging import Message
from ..protocol import ServerHandshake, State
from ..protocol.http11 import parse_fields, serialize_response
from ..sockio import WOULD_BLOCK
from ..websocket import WebSocket, broadcast
from .wsgiutils import WebSocketWSGIApplication, request_from_environ

__all__ = [
    "GEventWebSocketPool",
    "HeadDeadlines",
    "WSGIServer",
    "WebSocketServer",
    "WebSocketWSGIHandler",
    "WSGIWebSocket",
]

logger = logging.getLogger("ws4py")


def _is_upgrade(environ: dict[str, Any]) -> bool:
    return "websocket" in environ.get("HTTP_UPGRADE", "").lower()


class GEventWebSocketPool(Pool):  # type: ignore[misc]
    """The greenlets running websockets, each with its websocket (see :meth:`track`)."""

    #: Seconds :meth:`clear` waits for the closing handshakes before it kills what is left.
    close_timeout = 5.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.websockets: dict[Any, WebSocket] = {}

    def track(self, websocket: WebSocket, greenlet: Any = None) -> Any:
        """Track ``websocket``, run by ``greenlet`` (the calling one by default) until
        :meth:`discard`; returns the greenlet."""
        greenlet = getcurrent() if greenlet is None else greenlet
        self.add(greenlet)
        self.websockets[greenlet] = websocket
        return greenlet

    def discard(self, greenlet: Any) -> None:
        """Stop tracking ``greenlet`` (its websocket is over)."""
        self.websockets.pop(greenlet, None)
        super().discard(greenlet)

    def broadcast(self, message: str | bytes | Message, binary: bool = False) -> None:
        """Send ``message`` to every tracked websocket; never waits (as
        :meth:`ws4py.manager.WebSocketManager.broadcast`): a peer whose write buffer is
        over its ``max_write_buffer`` is closed with 1008 instead of being sent to."""
        broadcast(list(self.websockets.values()), message, binary)

    def clear(self) -> None:
        """Close every websocket with 1001 and wait for their ends (at most
        :attr:`close_timeout` seconds; the greenlets left are then killed)."""
        for websocket in list(self.websockets.values()):
            with contextlib.suppress(Exception):
                websocket.close(1001, "Server is shutting down")
        self.join(timeout=self.close_timeout)
        self.kill(timeout=1)


class WSGIWebSocket:
    """``environ['wsgi.websocket']``: gevent-websocket's blocking API on a ws4py websocket.

    Present on every upgrade request to an application that is not a
    :class:`~ws4py.server.wsgiutils.WebSocketWSGIApplication`. Used from the
    application, in the handler's greenlet: the first call performs the
    handshake (a request that is not a valid upgrade is answered with the
    HTTP error saying why, and the call raises
    :class:`~ws4py.exc.HandshakeError`); :meth:`receive` drives the
    connection until a message comes.
    """

    def __init__(self, environ: dict[str, Any], handler: WebSocketWSGIHandler) -> None:
        self.environ = environ
        self._handler = handler
        self._loop = GreenletLoop()
        self._websocket: _InboxWebSocket | None = None
        #: Whether the handshake was made (True) or refused (the error is answered): the
        #: response is this object's, not the application's.
        self.used = False

    @property
    def websocket(self) -> _InboxWebSocket:
        """The ws4py websocket underneath (after the handshake)."""
        self._start()
        assert self._websocket is not None
        return self._websocket

    @property
    def started(self) -> bool:
        """Whether the handshake was made."""
        return self._websocket is not None

    def _start(self) -> None:
        if self._websocket is not None:
            return
        if self.used:
            raise HandshakeError("this request is not a valid WebSocket upgrade; it was refused", 400)
        self.used = True
        handshake = ServerHandshake()
        try:
            headers = handshake.negotiate(request_from_environ(self.environ))
        except HandshakeError as exc:
            with contextlib.suppress(OSError):
                self._handler.socket.sendall(ServerHandshake.reject(exc))
            raise
        websocket = _InboxWebSocket(self._handler.socket, [], [], dict(self.environ))
        websocket.protocol = handshake.connection(max_message_size=websocket.max_message_size)
        self._websocket = websocket
        self._handler.start_websocket(websocket, serialize_response(101, headers), self._loop)

    @property
    def closed(self) -> bool:
        """Whether the connection is closing or over."""
        return self.websocket.terminated or self.websocket.protocol.state is not State.OPEN

    def receive(self) -> str | bytes | None:
        """The next message (``str`` for text, ``bytes`` for binary), waiting for it;
        ``None`` once the connection is over."""
        self._start()
        websocket, inbox = self.websocket, self.websocket.inbox
        while not inbox:
            if not self._loop.step(websocket):
                break
        if not inbox:
            return None
        message = inbox.popleft()
        return str(message) if message.is_text else message.data

    def send(self, message: str | bytes, binary: bool | None = None) -> None:
        """Send ``message`` (text for ``str``, binary for bytes unless ``binary`` says),
        waiting until the socket took it. Raises :class:`~ws4py.exc.StreamClosed` once closed."""
        self._start()
        websocket = self.websocket
        websocket.send(message, not isinstance(message, str) if binary is None else binary)
        self._loop.flush(websocket)
        while websocket.wanted_events & 2 and self._loop.step(websocket):
            pass  # written as sendall() writes: all of it before returning

    def close(self, code: int = 1000, message: str | bytes = "") -> None:
        """Close with ``code`` and wait for the end of the closing handshake (bounded)."""
        self._start()
        reason = message.decode() if isinstance(message, bytes) else message
        self.websocket.close(code, reason)
        self.finish()

    def finish(self) -> None:
        """Close (1000) if still open and drive the connection to its end."""
        websocket = self._websocket
        if websocket is None:
            return
        if websocket.protocol.state is State.OPEN:
            websocket.close(1000, "")
        while self._loop.step(websocket):
            pass


class _InboxWebSocket(WebSocket):
    """The websocket behind :class:`WSGIWebSocket`: messages wait in ``inbox``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inbox: deque[Message] = deque()

    def received_message(self, message: Message) -> None:
        self.inbox.append(message)


#: What pywsgi's own parsing of the header block allows (``http.client``'s limits).
MAX_HEADER_LINE = 65536
MAX_HEADER_LINES = 100
#: The class of the header objects pywsgi makes (an ``email.message.Message``).
_PYWSGI_HEADERS = type(pywsgi.headers_factory(io.BytesIO(b"\r\n")))


def read_header_block(rfile: Any) -> Any:
    """The request's header fields from ``rfile``, as pywsgi's ``MessageClass`` returns them.

    pywsgi parses them with ``http.client.parse_headers``, through the
    ``email`` package: 40 us for a browser's upgrade request, an eighth of a
    whole WebSocket connection's cost on this server. Here each line is read
    as pywsgi reads it and the block checked by the core's parser, then the
    fields go into the same kind of object; a block the core finds irregular
    (an obsolete folding, a bare LF, a line no field...) is handed to pywsgi's
    own parsing as it came, so plain HTTP requests are parsed exactly as before.
    """
    lines: list[bytes] = []
    while True:
        line = rfile.readline(MAX_HEADER_LINE + 1)
        lines.append(line)
        if line == b"\r\n" or len(line) > MAX_HEADER_LINE or len(lines) > MAX_HEADER_LINES:
            break
        if not line.endswith(b"\r\n"):
            return pywsgi.headers_factory(_Replay(lines, rfile))  # a bare LF, or the end of the stream
    if line != b"\r\n":
        return pywsgi.headers_factory(_Replay(lines, rfile))  # over a limit: pywsgi's answer
    try:
        fields = parse_fields([line[:-2] for line in lines[:-1]], MAX_HEADER_LINES)
    except HandshakeError:
        return pywsgi.headers_factory(_Replay(lines, rfile))
    headers = _PYWSGI_HEADERS()
    for name, value in fields:
        headers[name] = value
    return headers


class _Replay:
    """``rfile`` with ``lines`` put back in front of it (for ``http.client.parse_headers``)."""

    def __init__(self, lines: list[bytes], rfile: Any) -> None:
        self._lines = deque(lines)
        self._rfile = rfile

    def readline(self, limit: int = -1) -> bytes:
        if self._lines:
            return self._lines.popleft()
        return self._rfile.readline(limit)  # type: ignore[no-any-return]


class WebSocketWSGIHandler(pywsgi.WSGIHandler):  # type: ignore[misc]
    """pywsgi's handler; an upgrade request's websocket runs in its greenlet (see the module)."""

    _upgrade_headers: list[tuple[str, str]] | None = None
    server: WSGIServer

    def MessageClass(self, rfile: Any, *args: Any) -> Any:
        """The request's header fields: :func:`read_header_block`."""
        return read_header_block(rfile)

    def handle_one_request(self) -> Any:
        # The whole head within the timeout (not per read: a trickle would never end it).
        self.server.head_deadlines.watch(getcurrent(), self.server.handshake_timeout)
        try:
            return super().handle_one_request()
        finally:
            self.server.head_deadlines.forget(getcurrent())

    def get_environ(self) -> dict[str, Any]:
        self.server.head_deadlines.forget(getcurrent())  # the head is in
        return super().get_environ()  # type: ignore[no-any-return]

    def start_response(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if status.startswith("101") and "ws4py.socket" in self.environ:
            # Written by ws4py's serializer (pywsgi would add a Content-Length to a 101).
            self._upgrade_headers = list(headers)
            # What pywsgi's log reads; "sent" so that it writes no head of its own.
            self.status, self.code, self.headers_sent = status.encode("latin-1"), 101, True
            return self._refuse_write
        return super().start_response(status, headers, exc_info)

    def format_request(self) -> str:
        line: str = super().format_request()
        # pywsgi logs a status it did not set itself as bytes.
        return line.replace(" b'101' ", " 101 ", 1) if self.code == 101 else line

    @staticmethod
    def _refuse_write(data: bytes) -> None:
        if data:
            raise RuntimeError("a 101 response has no body")

    def run_application(self) -> None:
        environ = self.environ
        if not _is_upgrade(environ):
            super().run_application()
            return
        environ["ws4py.socket"] = self.socket
        self._upgrade_headers = None
        compat = None
        if not isinstance(self.application, WebSocketWSGIApplication):
            compat = environ["wsgi.websocket"] = WSGIWebSocket(environ, self)
        try:
            self.result = self.application(environ, self.start_response)
            if compat is None or not compat.used:
                self.process_result()
        except Exception as exc:
            if compat is None or not compat.used:
                raise
            if compat.started:
                logger.error("Closing %s after an error in its application", compat.websocket, exc_info=True)
                with contextlib.suppress(Exception):
                    compat.websocket.close(1011, "internal error")
            elif not isinstance(exc, HandshakeError):
                logger.error("Error in an application after its handshake was refused", exc_info=True)
        finally:
            close = getattr(self.result, "close", None)
            self.result = None
            if close is not None:
                close()
        if compat is not None and compat.used:
            self.close_connection = True
            compat.finish()
            return
        websocket = environ.pop("ws4py.websocket", None)
        if websocket is None or self._upgrade_headers is None:
            return  # refused: the application's response was written
        self.close_connection = True
        self.start_websocket(websocket, serialize_response(101, self._upgrade_headers))

    def _buffered_after_head(self) -> bytes:
        """The bytes pywsgi read past the request head (a first frame sent with it), and
        the socket's reader released."""
        rfile = self.rfile
        self.socket.setblocking(False)
        try:
            # read1 returns the buffered bytes if there are any, else one read of the socket
            # (non-blocking now: nothing, or what came meanwhile; all of it is the websocket's).
            data = rfile.read1(65536) or b""
        except WOULD_BLOCK:
            data = b""
        except OSError:
            data = b""
        with contextlib.suppress(OSError):
            rfile.close()  # its reference would keep the descriptor open after the websocket closed it
        return bytes(data)

    def start_websocket(self, websocket: WebSocket, response: bytes, loop: GreenletLoop | None = None) -> None:
        """Write ``response`` (the 101) first, give ``websocket`` what came with the head, and
        run it: in this greenlet until it is over (without ``loop``), or, with ``loop``, start
        it there for the caller to drive (:class:`WSGIWebSocket`)."""
        websocket.start_with(received=self._buffered_after_head(), unsent=response)
        if loop is None:
            self.server.run_websocket(websocket)
        elif websocket.bind_loop(loop):
            loop.start(websocket)  # the 101 goes out now; the caller's calls drive it from here


class HeadDeadlines:
    """The deadlines of the greenlets reading a request head: one greenlet, woken four
    times per timeout while any is waiting, drops those past theirs.

    A timer per request (gevent's ``Timeout``) costs more than the rest of the
    handler's own work on a short-lived connection; a deadline here is a
    dictionary entry. A greenlet is dropped between ``timeout`` and ``1.25 x
    timeout`` after its head began, with :class:`TimeoutError` raised where it
    blocks (pywsgi answers or closes, as for any error while reading).
    """

    def __init__(self) -> None:
        self._deadlines: dict[Any, float] = {}
        self._tick = 1.0
        self._reaper: Any = None

    def watch(self, greenlet: Any, timeout: float) -> None:
        """Give ``greenlet`` until ``timeout`` seconds from now to finish its head."""
        self._deadlines[greenlet] = time.monotonic() + timeout
        self._tick = timeout / 4
        if self._reaper is None:
            self._reaper = spawn_raw(self._reap)

    def forget(self, greenlet: Any) -> None:
        """``greenlet`` has its head (or is gone)."""
        self._deadlines.pop(greenlet, None)

    def stop(self) -> None:
        """Forget every deadline and stop the greenlet that checks them."""
        self._deadlines.clear()
        reaper, self._reaper = self._reaper, None
        if reaper is not None:
            kill(reaper)

    def _reap(self) -> None:
        deadlines = self._deadlines
        throw_soon = get_hub().loop.run_callback
        try:
            while deadlines:
                sleep(self._tick)
                now = time.monotonic()
                for greenlet, deadline in list(deadlines.items()):
                    if deadline <= now:
                        del deadlines[greenlet]
                        # From the hub, as gevent's Timeout does: this greenlet carries on.
                        throw_soon(greenlet.throw, TimeoutError("no complete request head in time"))
        finally:
            if self._reaper is getcurrent():
                self._reaper = None


class WSGIServer(pywsgi.WSGIServer):  # type: ignore[misc]
    """gevent's WSGI server with :class:`WebSocketWSGIHandler` and a :class:`GEventWebSocketPool`
    (``pool``) tracking the websockets; :meth:`stop` closes them with 1001."""

    handler_class = WebSocketWSGIHandler
    #: Seconds a client has to send a whole request head.
    handshake_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pool = GEventWebSocketPool()
        #: The request heads being read, each dropped at :attr:`handshake_timeout`.
        self.head_deadlines = HeadDeadlines()

    def wrap_socket_and_handle(self, client_socket: Any, address: Any) -> Any:
        """On a TLS server, the TLS handshake too within :attr:`handshake_timeout`: a silent
        peer holds its greenlet and socket no longer than one that sends no request head."""
        try:
            with Timeout(self.handshake_timeout, TimeoutError("no TLS handshake in time")):
                ssl_socket = self.wrap_socket(client_socket, **self.ssl_args)
        except OSError as exc:  # ssl.SSLError and TimeoutError among them
            logger.info("Dropping %s: %s", address, exc)
            client_socket.close()
            return None
        with contextlib.closing(ssl_socket):
            return self.handle(ssl_socket, address)

    def run_websocket(self, websocket: WebSocket) -> None:
        """Drive ``websocket`` in the calling greenlet until its connection is over, tracked by :attr:`pool`."""
        loop = GreenletLoop()
        if not websocket.bind_loop(loop):
            return
        greenlet = self.pool.track(websocket)
        try:
            loop.run(websocket)
        finally:
            self.pool.discard(greenlet)

    def stop(self, timeout: float | None = None) -> None:
        """Stop listening, close every websocket with 1001 (waiting for the closing
        handshakes, bounded), then stop as gevent's server does."""
        self.close()
        self.head_deadlines.stop()
        self.pool.clear()
        super().stop(timeout)


class WebSocketServer(WSGIServer):
    """A :class:`WSGIServer` that upgrades every request to a ``websocket_class`` websocket."""

    def __init__(
        self,
        listener: Any,
        websocket_class: type[WebSocket] = WebSocket,
        protocols: list[str] | None = None,
        extensions: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        application = WebSocketWSGIApplication(protocols, extensions, handler_cls=websocket_class)
        super().__init__(listener, application, **kwargs)
