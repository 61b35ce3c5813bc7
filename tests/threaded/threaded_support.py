"""Helpers for the threaded-stack tests: recording websockets, a wsgiref server, raw peers.

Everything runs on real sockets on 127.0.0.1. The peers that observe the wire
(:class:`RawClient`, :class:`RawServer`) frame and unframe by hand with the
code below, not with ws4py's core, so they are an independent witness of what
ws4py puts on the wire.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import queue
import socket
import ssl
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ws4py.client.threadedclient import WebSocketClient
from ws4py.manager import WebSocketManager
from ws4py.messaging import Message, PongControlMessage
from ws4py.pollers import Poller
from ws4py.server.wsgirefserver import WebSocketWSGIRequestHandler, WSGIServer
from ws4py.server.wsgiutils import WebSocketWSGIApplication
from ws4py.websocket import WebSocket

#: Upper bound of every wait in this directory (seconds).
TIMEOUT = 5.0
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WATCHED_THREADS = ("WebSocketManager", "WebSocketClient")

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


# -- recording websockets ---------------------------------------------------


class Recorder:
    """Mixin recording each callback with the thread it ran on.

    ``calls`` holds ``(callback, argument, thread ident)`` in call order.
    """

    close_timeout = 2.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, Any, int]] = []
        self.cond = threading.Condition()
        self.opened_event = threading.Event()
        self.closed_event = threading.Event()

    def _record(self, kind: str, value: Any) -> None:
        with self.cond:
            self.calls.append((kind, value, threading.get_ident()))
            self.cond.notify_all()

    def opened(self) -> None:
        self._record("opened", None)
        self.opened_event.set()

    def received_message(self, message: Message) -> None:
        self._record("message", message)

    def ponged(self, pong: PongControlMessage) -> None:
        self._record("pong", pong)

    def closed(self, code: int, reason: str | None = None) -> None:
        self._record("closed", (code, reason))
        self.closed_event.set()

    # -- test helpers ----------------------------------------------------

    def values(self, kind: str) -> list[Any]:
        with self.cond:
            return [value for k, value, _ in self.calls if k == kind]

    @property
    def messages(self) -> list[Message]:
        return self.values("message")

    def wait_for(self, kind: str, count: int = 1, timeout: float = TIMEOUT) -> list[Any]:
        """The first ``count`` recorded arguments of ``kind``, waiting for them."""
        with self.cond:
            done = self.cond.wait_for(lambda: len(self.values(kind)) >= count, timeout)
            got = self.values(kind)
        assert done, f"{type(self).__name__}: {len(got)} {kind} call(s) of {count} after {timeout}s"
        return got[:count]

    def wait_messages(self, count: int = 1, timeout: float = TIMEOUT) -> list[Message]:
        return self.wait_for("message", count, timeout)

    def wait_opened(self, timeout: float = TIMEOUT) -> None:
        assert self.opened_event.wait(timeout), "opened() was not called"

    def wait_closed(self, timeout: float = TIMEOUT) -> tuple[int, str | None]:
        assert self.closed_event.wait(timeout), "closed() was not called"
        return self.values("closed")[0]  # type: ignore[no-any-return]


class RecordingWebSocket(Recorder, WebSocket):
    """A server-side websocket that records its callbacks."""


class RecordingClient(Recorder, WebSocketClient):
    """A threaded client that records its callbacks."""


def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT, what: str = "condition") -> None:
    """Poll ``predicate`` (for state that has no callback) until true, at most ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.005)


# -- the wsgiref server -------------------------------------------------------


class CapturingApp(WebSocketWSGIApplication):
    """The WSGI application, also handing each websocket it makes to the test."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.created: queue.Queue[WebSocket] = queue.Queue()

    def make_websocket(self, sock: Any, protocols: list[str], extensions: list[str], environ: dict[str, Any]) -> Any:
        websocket = super().make_websocket(sock, protocols, extensions, environ)
        self.created.put(websocket)
        return websocket


class _IPv6WSGIServer(WSGIServer):
    address_family = socket.AF_INET6


class Server:
    """A running wsgiref :class:`WSGIServer` with its manager."""

    def __init__(self, httpd: WSGIServer, app: CapturingApp, thread: threading.Thread, scheme: str) -> None:
        self.httpd = httpd
        self.app = app
        self.thread = thread
        self.scheme = scheme
        self.host, self.port = httpd.server_address[:2]  # type: ignore[misc]
        self._stopped = False

    @property
    def manager(self) -> WebSocketManager:
        assert self.httpd.manager is not None
        return self.httpd.manager

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{path}"

    def accept(self, timeout: float = TIMEOUT) -> Any:
        """The next server-side websocket, once its ``opened()`` ran (for recorders)."""
        try:
            websocket = self.app.created.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no websocket was created by the server") from None
        if isinstance(websocket, Recorder):
            websocket.wait_opened(timeout)
        return websocket

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.httpd.shutdown()
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()
        # server_close() joins the manager without a timeout: a hang there must not stall the run.
        closer = threading.Thread(target=self.httpd.server_close, name="server-close", daemon=True)
        closer.start()
        closer.join(TIMEOUT)
        assert not closer.is_alive(), "server_close() never returned"


ServeFactory = Callable[..., Server]


def start_server(
    handler_cls: type[WebSocket] | None = None,
    *,
    protocols: list[str] | None = None,
    extensions: list[str] | None = None,
    poller: Poller | None = None,
    ssl_context: ssl.SSLContext | None = None,
    host: str = "127.0.0.1",
    busy_poll: float | None = None,
) -> Server:
    """A wsgiref :class:`WSGIServer` with its manager, serving on a thread of its own."""
    server_class = _IPv6WSGIServer if ":" in host else WSGIServer
    app = CapturingApp(protocols=protocols, extensions=extensions, handler_cls=handler_cls or RecordingWebSocket)
    httpd = server_class((host, 0), WebSocketWSGIRequestHandler)
    httpd.set_app(app)
    if ssl_context is not None:
        httpd.socket = ssl_context.wrap_socket(httpd.socket, server_side=True)
    if poller is None and busy_poll is None:
        httpd.initialize_websockets_manager()
    else:
        httpd.manager = WebSocketManager(poller, busy_poll=busy_poll)
        httpd.manager.start()
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="wsgiref-server", daemon=True
    )
    thread.start()
    return Server(httpd, app, thread, "wss" if ssl_context is not None else "ws")


# -- raw peers ----------------------------------------------------------------


def accept_key(key: str | bytes) -> str:
    if isinstance(key, str):
        key = key.encode()
    return base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


def parse_close(payload: bytes) -> tuple[int, str]:
    return struct.unpack("!H", payload[:2])[0], payload[2:].decode()


@dataclass
class Frame:
    fin: bool
    rsv1: bool
    opcode: int
    payload: bytes
    masked: bool


def build_frame(opcode: int, payload: bytes = b"", *, fin: bool = True, rsv1: bool = False, mask: bool = True) -> bytes:
    """One frame, built by hand (RFC 6455 section 5.2)."""
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        head = struct.pack("!BB", b0, mask_bit | length)
    elif length < 65536:
        head = struct.pack("!BBH", b0, mask_bit | 126, length)
    else:
        head = struct.pack("!BBQ", b0, mask_bit | 127, length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + _xor(payload, key)


def _xor(data: bytes, key: bytes) -> bytes:
    if not data:
        return b""
    repeated = (key * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(data), "big")


def deflate_message(data: bytes) -> bytes:
    """A permessage-deflate payload for ``data`` (RFC 7692 7.2.1), fresh context."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


class Inflater:
    """Decompresses one direction of a permessage-deflate connection (context takeover)."""

    def __init__(self) -> None:
        self._inflate = zlib.decompressobj(-15)

    def __call__(self, payload: bytes) -> bytes:
        return self._inflate.decompress(payload + b"\x00\x00\xff\xff")


class RawPeer:
    """One end of a WebSocket connection on a bare socket, frame by frame."""

    def __init__(self, sock: socket.socket, buffer: bytes, is_client: bool) -> None:
        self.sock = sock
        self.buffer = bytearray(buffer)
        self.is_client = is_client

    def send_frame(self, opcode: int, payload: bytes = b"", *, fin: bool = True, rsv1: bool = False) -> None:
        self.sock.sendall(build_frame(opcode, payload, fin=fin, rsv1=rsv1, mask=self.is_client))

    def send_text(self, text: str) -> None:
        self.send_frame(OP_TEXT, text.encode())

    def send_close(self, code: int = 1000, reason: str = "") -> None:
        self.send_frame(OP_CLOSE, close_payload(code, reason))

    def _read(self, count: int, deadline: float) -> bytes:
        while len(self.buffer) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"waited for {count} bytes, have {len(self.buffer)}")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed with {len(self.buffer)} of {count} bytes")
            self.buffer += chunk
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    def recv_frame(self, timeout: float = TIMEOUT) -> Frame:
        deadline = time.monotonic() + timeout
        b0, b1 = self._read(2, deadline)
        length = b1 & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read(2, deadline))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read(8, deadline))
        masked = bool(b1 & 0x80)
        key = self._read(4, deadline) if masked else b""
        payload = self._read(length, deadline)
        if masked:
            payload = _xor(payload, key)
        return Frame(bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F, payload, masked)

    def recv_frames_until_close(self, timeout: float = TIMEOUT) -> tuple[list[Frame], Frame]:
        """The frames before the close frame, and the close frame."""
        deadline = time.monotonic() + timeout
        frames = []
        while True:
            frame = self.recv_frame(max(0.0, deadline - time.monotonic()))
            if frame.opcode == OP_CLOSE:
                return frames, frame
            frames.append(frame)

    def assert_eof(self, timeout: float = TIMEOUT) -> None:
        """The peer closes TCP within ``timeout`` without sending anything more."""
        assert not self.buffer, f"unexpected bytes: {bytes(self.buffer)!r}"
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise AssertionError(f"the peer did not close TCP within {timeout}s") from None
        assert data == b"", f"unexpected bytes instead of EOF: {data!r}"

    def assert_silent(self, duration: float) -> None:
        """Nothing arrives and the connection stays open for ``duration`` seconds."""
        assert not self.buffer
        self.sock.settimeout(duration)
        with contextlib.suppress(TimeoutError):
            data = self.sock.recv(65536)
            raise AssertionError(f"expected silence, got {data!r}")

    def close(self) -> None:
        self.sock.close()


class RawClient(RawPeer):
    """A client: connects and performs the opening handshake by hand."""

    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        resource: str = "/",
        headers: tuple[tuple[str, str], ...] = (),
        first_bytes: bytes = b"",
    ) -> None:
        sock = socket.create_connection((host, port), timeout=TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {resource} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *(f"{name}: {value}" for name, value in headers),
        ]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + first_bytes)
        head = b""
        sock.settimeout(TIMEOUT)
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, f"the server closed during the handshake: {head!r}"
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        assert status_line.split(" ")[1] == "101", status_line
        self.response_headers = {
            name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)
        }
        assert self.response_headers["sec-websocket-accept"] == accept_key(key)
        super().__init__(sock, rest, is_client=True)


@dataclass
class Request:
    line: str
    headers: dict[str, str]
    raw: bytes


class RawServer:
    """A listening socket whose peer thread handles one connection by hand.

    ``serve(handler)`` runs ``handler(sock, request)`` on a thread once a client
    connected and sent its request head; errors in the handler fail the test
    at teardown (or at :meth:`join`).
    """

    def __init__(self, family: socket.AddressFamily = socket.AF_INET, address: Any = ("127.0.0.1", 0)) -> None:
        self.listener = socket.socket(family, socket.SOCK_STREAM)
        self.listener.bind(address)
        self.listener.listen(8)
        self.listener.settimeout(TIMEOUT)
        self.address = self.listener.getsockname()
        self.errors: list[BaseException] = []
        self.thread: threading.Thread | None = None
        self.done = threading.Event()

    @property
    def port(self) -> int:
        return self.address[1]  # type: ignore[no-any-return]

    def url(self, path: str = "/") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def serve(self, handler: Callable[[socket.socket, Request], None]) -> None:
        def run() -> None:
            try:
                sock, _ = self.listener.accept()
                with sock:
                    sock.settimeout(TIMEOUT)
                    handler(sock, read_request(sock))
            except BaseException as exc:
                self.errors.append(exc)
            finally:
                self.done.set()

        self.thread = threading.Thread(target=run, name="raw-server", daemon=True)
        self.thread.start()

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join(TIMEOUT)
            assert not self.thread.is_alive(), "the raw server's handler did not finish"
            self.thread = None
        if self.errors:
            raise self.errors[0]

    def close(self) -> None:
        self.listener.close()


def upgrade_request(path: str, port: int, extra: str = "") -> bytes:
    """A WebSocket upgrade request head for ``path``, with ``extra`` header lines."""
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """The head of the HTTP message on ``sock`` (without its blank line) and the bytes read past it."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError(f"closed before the end of the head: {received!r}")
        received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    return head, rest


def read_request(sock: socket.socket) -> Request:
    head, rest = read_head(sock)
    line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in header_lines)}
    return Request(line, headers, head + b"\r\n\r\n" + rest)


def switching_protocols(request: Request, extra_headers: tuple[str, ...] = ()) -> bytes:
    """The 101 response to ``request``."""
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(request.headers['sec-websocket-key'])}",
        *extra_headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()
