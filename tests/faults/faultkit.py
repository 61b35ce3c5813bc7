"""Helpers for the fault tests: a real wsgiref server, raw clients, process probes.

Everything here talks over real sockets on 127.0.0.1. The raw client speaks
the opening handshake and frames itself with ws4py's sans-I/O core
(:class:`~ws4py.protocol.ClientHandshake` and ``Connection(Role.CLIENT)``),
so a test controls exactly what the peer does and does not do: stop reading,
send half a frame, reset the connection...
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import struct
import termios
import threading
import time
from collections.abc import Callable
from typing import Any
from wsgiref.simple_server import make_server

from ws4py.manager import WebSocketManager
from ws4py.protocol import ClientHandshake, CloseReceived, Connection, Event
from ws4py.server.wsgirefserver import WebSocketWSGIRequestHandler, WSGIServer
from ws4py.server.wsgiutils import WebSocketWSGIApplication
from ws4py.websocket import WebSocket

HOST = "127.0.0.1"


# -- process probes ----------------------------------------------------------


def fd_count() -> int:
    """Open file descriptors of this process."""
    return len(os.listdir("/proc/self/fd"))


def vmrss() -> int:
    """Resident memory of this process, in bytes."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def unread_bytes(sock: socket.socket) -> int:
    """Bytes in ``sock``'s receive queue that its owner has not read yet (FIONREAD)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def unsent_bytes(sock: socket.socket) -> int:
    """Bytes written to ``sock`` that the peer's kernel has not acknowledged yet (TIOCOUTQ)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]


def manager_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "WebSocketManager" and t.is_alive()]


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.01) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds passed; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(interval)


# -- the server side ----------------------------------------------------------


class Tracker:
    """What the server's websockets went through: opened, closed with which code, when."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.opened: list[WebSocket] = []
        self.closed: dict[int, tuple[int, float]] = {}  # id(websocket) -> (code, monotonic time)
        self.received = 0
        self.pongs = 0
        self.by_peer: dict[Any, WebSocket] = {}

    def on_opened(self, websocket: WebSocket) -> None:
        peer = websocket.peer_address
        with self.cond:
            self.opened.append(websocket)
            self.by_peer[peer] = websocket
            self.cond.notify_all()

    def server_side(self, client: socket.socket, timeout: float = 10.0) -> WebSocket:
        """The server's websocket for the connection of ``client`` (once it is opened)."""
        address = client.getsockname()[:2]
        with self.cond:
            assert self.cond.wait_for(lambda: address in self.by_peer, timeout), (
                f"no websocket opened for the client at {address} within {timeout}s"
            )
            return self.by_peer[address]

    def on_message(self) -> None:
        with self.cond:
            self.received += 1
            self.cond.notify_all()

    def on_pong(self) -> None:
        with self.cond:
            self.pongs += 1
            self.cond.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        with self.cond:
            assert self.cond.wait_for(predicate, timeout), f"{what}: not within {timeout}s"

    def on_closed(self, websocket: WebSocket, code: int) -> None:
        with self.cond:
            self.closed[id(websocket)] = (code, time.monotonic())
            self.cond.notify_all()

    def wait_opened(self, count: int, timeout: float) -> list[WebSocket]:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.opened) >= count, timeout), (
                f"{len(self.opened)}/{count} websockets opened within {timeout}s"
            )
            return list(self.opened)

    def wait_closed(self, websocket: WebSocket, timeout: float) -> tuple[int, float]:
        with self.cond:
            assert self.cond.wait_for(lambda: id(websocket) in self.closed, timeout), (
                f"closed() not called on {websocket!r} within {timeout}s"
            )
            return self.closed[id(websocket)]

    def wait_all_closed(self, timeout: float) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: len(self.closed) >= len(self.opened), timeout), (
                f"{len(self.closed)}/{len(self.opened)} websockets closed within {timeout}s"
            )


def tracked(base: type[WebSocket], tracker: Tracker, **attributes: Any) -> type[WebSocket]:
    """A subclass of ``base`` reporting to ``tracker``, with class ``attributes`` overridden.

    ``heartbeat_freq`` is an instance attribute that the WSGI application never
    passes: given here, it is set in ``__init__``.
    """
    heartbeat_freq = attributes.pop("heartbeat_freq", None)

    def __init__(self: WebSocket, *args: Any, **kwargs: Any) -> None:
        base.__init__(self, *args, **kwargs)
        if heartbeat_freq is not None:
            self.heartbeat_freq = heartbeat_freq

    def opened(self: WebSocket) -> None:
        base.opened(self)
        tracker.on_opened(self)

    def closed(self: WebSocket, code: int, reason: str | None = None) -> None:
        base.closed(self, code, reason)
        tracker.on_closed(self, code)

    def received_message(self: WebSocket, message: Any) -> None:
        tracker.on_message()
        base.received_message(self, message)

    def ponged(self: WebSocket, pong: Any) -> None:
        tracker.on_pong()
        base.ponged(self, pong)

    namespace = {
        "__init__": __init__,
        "opened": opened,
        "closed": closed,
        "received_message": received_message,
        "ponged": ponged,
        **attributes,
    }
    return type(f"Tracked{base.__name__}", (base,), namespace)


class RecordingWSGIServer(WSGIServer):
    """ws4py's WSGIServer, recording the errors its request threads report."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.request_errors: list[str] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        import traceback

        self.request_errors.append(traceback.format_exc())
        super().handle_error(request, client_address)


class Server:
    """ws4py's wsgiref server on 127.0.0.1, port 0, serving in a thread."""

    def __init__(self, handler_cls: type[WebSocket], handshake_timeout: float | None = None) -> None:
        self.handler_cls = handler_cls
        self.httpd: RecordingWSGIServer = make_server(
            HOST,
            0,
            WebSocketWSGIApplication(handler_cls=handler_cls),
            server_class=RecordingWSGIServer,
            handler_class=WebSocketWSGIRequestHandler,
        )
        if handshake_timeout is not None:
            self.httpd.handshake_timeout = handshake_timeout
        self.httpd.initialize_websockets_manager()
        self.port: int = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self._closed = False

    @property
    def manager(self) -> WebSocketManager:
        manager = self.httpd.manager
        assert manager is not None
        return manager

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}/"

    def close(self, timeout: float = 20.0) -> None:
        """``shutdown()`` then ``server_close()`` (which waits for the manager), bounded."""
        if self._closed:
            return
        self._closed = True
        self.httpd.shutdown()
        self._thread.join(timeout)
        closer = threading.Thread(target=self.httpd.server_close, daemon=True)
        closer.start()
        closer.join(timeout)
        assert not closer.is_alive(), f"server_close() did not return within {timeout}s"
        assert not self.manager.is_alive(), "the server's WebSocketManager outlived server_close()"


# -- the client side ----------------------------------------------------------


def connect_raw(port: int, rcvbuf: int | None = None, timeout: float = 10.0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect((HOST, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def reset(sock: socket.socket) -> None:
    """Close ``sock`` with an RST instead of a FIN (SO_LINGER 0)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class RawClient:
    """A client whose every move the test makes: one socket and ws4py's sans-I/O core.

    ``first`` is sent right after the request head, in the same write (frames
    that ride on the handshake).
    """

    def __init__(self, port: int, rcvbuf: int | None = None, timeout: float = 10.0, first: bytes = b"") -> None:
        self.sock = connect_raw(port, rcvbuf, timeout)
        try:
            handshake = ClientHandshake(HOST, "/", port=port)
            self.conn: Connection | None = None
            self.pending: list[Event] = []
            self.sock.sendall(handshake.request_bytes() + first)
            while True:
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("the server closed the connection during the handshake")
                if handshake.receive_data(data) is not None:
                    break
            self.conn = handshake.connection(max_message_size=None)
            if handshake.leftover:
                self.pending += self.conn.receive_data(handshake.leftover)
        except BaseException:
            self.sock.close()
            raise

    def send_text(self, text: str) -> None:
        assert self.conn is not None
        self.sock.sendall(self.conn.send_text(text))

    def send_binary(self, data: bytes) -> None:
        assert self.conn is not None
        self.sock.sendall(self.conn.send_binary(data))

    def flush_replies(self) -> None:
        """Write what the core owes the server (pongs, the close echo)."""
        assert self.conn is not None
        reply = self.conn.data_to_send()
        if reply:
            self.sock.sendall(reply)

    def events(self, count: int, timeout: float) -> list[Event]:
        """Read until ``count`` events (or end of stream) within ``timeout`` seconds."""
        assert self.conn is not None
        deadline = time.monotonic() + timeout
        while len(self.pending) < count:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{len(self.pending)}/{count} events within {timeout}s: {self.pending!r}"
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(262144)
            except TimeoutError:
                continue
            if not data:
                break
            self.pending += self.conn.receive_data(data)
        events, self.pending = self.pending[:count], self.pending[count:]
        return events

    def read_until_close(self, timeout: float) -> tuple[list[Event], bool]:
        """Read everything until the server's close frame or the end of the stream.

        Returns the events (the close last, if one came) and whether the
        connection ended (EOF or reset) instead.
        """
        assert self.conn is not None
        deadline = time.monotonic() + timeout
        events = self.pending
        self.pending = []
        while not events or not isinstance(events[-1], CloseReceived):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"neither a close frame nor the end of the stream within {timeout}s"
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(262144)
            except ConnectionResetError:
                return events, True
            except TimeoutError:
                continue
            if not data:
                return events, True
            events += self.conn.receive_data(data)
        return events, False

    def wait_eof(self, timeout: float) -> bytes:
        """Read until the server ends the connection (EOF or reset); what came before it."""
        return wait_eof(self.sock, timeout)

    def close(self) -> None:
        self.sock.close()


def wait_eof(sock: socket.socket, timeout: float) -> bytes:
    """Read ``sock`` until EOF or a reset within ``timeout`` seconds; the bytes read."""
    deadline = time.monotonic() + timeout
    received = bytearray()
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"the connection did not end within {timeout}s ({len(received)} bytes read)"
        sock.settimeout(remaining)
        try:
            data = sock.recv(262144)
        except ConnectionResetError:
            return bytes(received)
        except TimeoutError:
            continue
        if not data:
            return bytes(received)
        received += data


class ErrorLog(logging.Handler):
    """Collects the ``ws4py`` logger's records at ERROR and above."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        out = []
        for record in self.records:
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += f" [{type(record.exc_info[1]).__name__}: {record.exc_info[1]}]"
            out.append(text)
        return out


def wait_stalled(value: Callable[[], int], quiet: float, timeout: float) -> int:
    """Wait until ``value()`` has not changed for ``quiet`` seconds (within ``timeout``); its value."""
    deadline = time.monotonic() + timeout
    last = value()
    changed_at = time.monotonic()
    while True:
        time.sleep(0.02)
        now = time.monotonic()
        current = value()
        if current != last:
            last, changed_at = current, now
        elif now - changed_at >= quiet:
            return current
        assert now < deadline, f"still progressing after {timeout}s (at {current})"


def numbered(seq: int, size: int) -> bytes:
    """A ``size``-byte payload starting with its sequence number."""
    return seq.to_bytes(4, "big") + bytes([seq & 0xFF]) * (size - 4)


def seq_of(payload: bytes) -> int:
    return int.from_bytes(payload[:4], "big")
