"""How ws4py's threaded stack ends a connection it failed, on real sockets.

Autobahn's cases 3.x, 4.x.3-4.x.5 and 5.15 fail the connection after an
echo while the fuzzer still sends: the testee must still deliver its close
frame. Two things could make it get lost: Nagle holding it behind the echo
(upgraded sockets get TCP_NODELAY), and closing the socket with input still
unread, which resets the connection (ws4py half-closes and drains first).
Each is pinned here deterministically.
"""

from __future__ import annotations

import base64
import contextlib
import os
import select
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from autobahn import BINARY, TEXT, encode_frame
from socket_fuzzer import OPEN_TIMEOUT, CaseEchoWebSocket, EchoThreadedClient, _accept_key, _read_head

ECHOED = 12_000  # more than the small receive buffer below holds
TRAILING = 100_000  # more than the testee reads before it fails: unread when it closes


def _client_handshake(sock: socket.socket, port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head, leftover = _read_head(sock, time.monotonic() + OPEN_TIMEOUT)
    assert head.startswith(b"HTTP/1.1 101 ") and _accept_key(key).encode() in head, head
    return leftover


def _send_until_blocked(sock: socket.socket, data: bytes) -> None:
    sock.settimeout(1)
    with contextlib.suppress(TimeoutError):  # the testee stopped reading: what is left never mattered
        sock.sendall(data)


def _read_all(sock: socket.socket, leftover: bytes = b"") -> tuple[bytes, str | None]:
    """Without reading, give the testee a second to end the connection; then read to the end."""
    poller = select.poll()
    poller.register(sock, select.POLLERR | select.POLLHUP | select.POLLRDHUP)
    poller.poll(1000)
    received = bytearray(leftover)
    sock.settimeout(5)
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except OSError as exc:
        return bytes(received), type(exc).__name__
    return bytes(received), None


def _close_frame_at_end(received: bytes, masked: bool) -> int | None:
    """The close code of the frame that ends ``received`` after the echo, if there is one."""
    header = 4 + (4 if masked else 0)
    close = received[header + ECHOED :]
    if len(close) < 4 or close[0] != 0x88:
        return None
    start = 2 + (4 if masked else 0)
    payload = close[start:]
    if masked:
        key = close[2:6]
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return int.from_bytes(payload[:2], "big")


def test_upgraded_server_socket_has_tcp_nodelay(ws4py_server: int) -> None:
    with socket.create_connection(("127.0.0.1", ws4py_server), timeout=OPEN_TIMEOUT) as sock:
        leftover = _client_handshake(sock, ws4py_server, "/nodelay?token=nodelay")
        sock.sendall(encode_frame(TEXT, b"ping?", mask=b"\x01\x02\x03\x04"))
        while len(leftover) < 7:  # the echo: the websocket runs on the server's manager now
            leftover += sock.recv(64)
        assert leftover == encode_frame(TEXT, b"ping?")
        websocket = CaseEchoWebSocket.lookup("nodelay", OPEN_TIMEOUT)
        assert websocket is not None and websocket.sock is not None
        assert websocket.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_failing_server_delivers_its_close_despite_unread_input(ws4py_server: int) -> None:
    sock = socket.socket()
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(OPEN_TIMEOUT)
        sock.connect(("127.0.0.1", ws4py_server))
        leftover = _client_handshake(sock, ws4py_server, "/fail-with-unread-input")
        mask = b"\x01\x02\x03\x04"
        _send_until_blocked(
            sock,
            encode_frame(BINARY, b"e" * ECHOED, mask=mask)
            + encode_frame(3, b"", mask=mask)  # reserved opcode: the server fails the connection (1002)
            + encode_frame(BINARY, b"t" * TRAILING, mask=mask),
        )
        received, error = _read_all(sock, leftover)
    finally:
        sock.close()
    assert _close_frame_at_end(received, masked=False) == 1002, (
        f"{len(received)} bytes then {error or 'EOF'}: the close frame after the {ECHOED}-byte echo is missing"
    )


@pytest.fixture
def small_buffer_listener() -> Iterator[socket.socket]:
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by the accepted socket
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    try:
        yield listener
    finally:
        listener.close()


def test_failing_client_delivers_its_close_despite_unread_input(small_buffer_listener: socket.socket) -> None:
    port = small_buffer_listener.getsockname()[1]
    client = EchoThreadedClient(f"ws://127.0.0.1:{port}/")
    connector = threading.Thread(target=client.connect, daemon=True)
    connector.start()
    small_buffer_listener.settimeout(OPEN_TIMEOUT)
    sock, _ = small_buffer_listener.accept()
    try:
        head, _ = _read_head(sock, time.monotonic() + OPEN_TIMEOUT)
        key = next(
            line.split(b":", 1)[1].strip().decode()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        sock.sendall(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {_accept_key(key)}\r\n\r\n".encode()
        )
        connector.join(OPEN_TIMEOUT)
        _send_until_blocked(
            sock,
            encode_frame(BINARY, b"e" * ECHOED)
            + encode_frame(3, b"")  # reserved opcode: the client fails the connection (1002)
            + encode_frame(BINARY, b"t" * TRAILING),
        )
        received, error = _read_all(sock)
    finally:
        sock.close()
        client.ended.wait(OPEN_TIMEOUT)
    assert _close_frame_at_end(received, masked=True) == 1002, (
        f"{len(received)} bytes then {error or 'EOF'}: the close frame after the {ECHOED}-byte echo is missing"
    )
