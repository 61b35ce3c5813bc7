"""The README's main job: examples/echo_server.py, over a real socket."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ws4py.protocol import (
    BinaryReceived,
    ClientHandshake,
    CloseReceived,
    Connection,
    DeflateOptions,
    State,
    TextReceived,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def echo_server() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "echo_server.py"), "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert f"ws://127.0.0.1:{port}/" in banner
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _open(port: int, compression: DeflateOptions | None) -> tuple[socket.socket, Connection]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    handshake = ClientHandshake("127.0.0.1", "/", port=port, compression=compression)
    sock.sendall(handshake.request_bytes())
    while handshake.receive_data(sock.recv(4096)) is None:
        pass
    conn = handshake.connection()
    assert conn.deflate is not None if compression else conn.deflate is None
    return sock, conn


def _receive(sock: socket.socket, conn: Connection, count: int) -> list[object]:
    events: list[object] = []
    while len(events) < count:
        data = sock.recv(65536)
        assert data, "server closed early"
        events += conn.receive_data(data)
    return events


@pytest.mark.parametrize("compression", [None, DeflateOptions()], ids=["plain", "deflate"])
def test_echo_server_echoes_text_and_binary_then_closes_tcp_first(
    echo_server: int, compression: DeflateOptions | None
) -> None:
    sock, conn = _open(echo_server, compression)
    with sock:
        big = bytes(range(256)) * 1000
        sock.sendall(conn.send_text("héllo") + conn.send_binary(big))
        assert _receive(sock, conn, 2) == [TextReceived("héllo"), BinaryReceived(big)]
        sock.sendall(conn.send_close(1000, "bye"))
        assert _receive(sock, conn, 1) == [CloseReceived(1000, "")]
        assert conn.state is State.CLOSED
        # RFC 6455 7.1.1: the server closes TCP after the closing handshake.
        assert sock.recv(1) == b""


def test_echo_server_refuses_a_plain_http_request_with_400(echo_server: int) -> None:
    with socket.create_connection(("127.0.0.1", echo_server), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Upgrade" in reply
