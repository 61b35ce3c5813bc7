"""The client benchmark's C server (bench/clientbench/server.c) checks what clients send, so none can look fast
by sending less or wrong: an unmasked frame and a wrong byte fail the connection (and are reported); a right
message is echoed. Compiled with gcc into a temporary directory (skipped without gcc)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "bench" / "clientbench" / "server.c"
PATTERN = bytes(0x61 + i % 26 for i in range(16))  # the 16 B message every connection of /echo/text/16 expects
TIMEOUT = 5.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """(port, report file) of a running server."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed")
    tmp = tmp_path_factory.mktemp("clientbench")
    binary = tmp / "server"
    subprocess.run([gcc, "-O1", "-Wall", "-Wextra", "-Werror", "-o", str(binary), str(SOURCE)], check=True, timeout=60)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    report = tmp / "report.jsonl"
    with open(report, "wb") as out:
        proc = subprocess.Popen([str(binary), str(port)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.02)
        yield port, report
    finally:
        proc.kill()
        proc.wait(timeout=TIMEOUT)


def upgraded(port: int, path: str = "/echo/text/16") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "the server closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    assert head.endswith(b"\r\n\r\n"), "bytes after the 101 on an echo connection"
    return sock


def masked(opcode: int, payload: bytes, key: bytes = b"\x12\x34\x56\x78") -> bytes:
    assert len(payload) < 126
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            assert chunk, "the server closed the connection without a frame"
            data += chunk
        return data

    b0, b1 = exactly(2)
    assert not b1 & 0x80, "a masked frame from the server"
    length = b1 & 0x7F
    assert length < 126
    return b0, exactly(length)


def close_code(frame: tuple[int, bytes]) -> int:
    b0, payload = frame
    assert b0 == 0x88, f"not a close frame: {frame}"
    return int(struct.unpack("!H", payload[:2])[0])


def reported_errors(report: Path) -> list[str]:
    """The errors of the server's per-connection reports so far (the harness fails a run on any)."""
    lines = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    return [line["error"] for line in lines if line["error"]]


def new_errors(report: Path, before: int) -> list[str]:
    """The errors reported after the first ``before``, waiting for one (its line comes once the connection is
    dropped)."""
    deadline = time.monotonic() + TIMEOUT
    while len(reported_errors(report)) <= before and time.monotonic() < deadline:
        time.sleep(0.02)
    return reported_errors(report)[before:]


def test_unmasked_frame_is_refused_with_1002_and_reported(server: tuple[int, Path]) -> None:
    port, report = server
    before = len(reported_errors(report))
    with upgraded(port) as sock:
        sock.sendall(bytes([0x81, len(PATTERN)]) + PATTERN)  # right bytes, but no mask
        assert close_code(read_frame(sock)) == 1002
        assert sock.recv(1) == b"", "the server did not close the TCP connection"
    assert new_errors(report, before) == ["an unmasked frame"]


def test_one_wrong_byte_is_refused_with_1007_and_reported(server: tuple[int, Path]) -> None:
    port, report = server
    before = len(reported_errors(report))
    with upgraded(port) as sock:
        sock.sendall(masked(0x1, PATTERN[:-1] + b"!"))
        assert close_code(read_frame(sock)) == 1007
    assert [e.split(" (")[0] for e in new_errors(report, before)] == ["wrong bytes in message 1"]


def test_right_message_is_echoed_and_counted(server: tuple[int, Path]) -> None:
    port, report = server
    with upgraded(port) as sock:
        sock.sendall(masked(0x1, PATTERN, key=os.urandom(4)))
        assert read_frame(sock) == (0x81, PATTERN)
        sock.sendall(masked(0x8, struct.pack("!H", 1000)))
        assert close_code(read_frame(sock)) == 1000
        assert sock.recv(1) == b""
    deadline = time.monotonic() + TIMEOUT
    while '"messages_in": 1, "messages_out": 1' not in report.read_text():
        assert time.monotonic() < deadline, report.read_text()
        time.sleep(0.02)


def test_stream_starts_on_go_and_ends_on_a_frame_boundary_at_close(server: tuple[int, Path]) -> None:
    port, _report = server
    with upgraded(port, "/stream/binary/16") as sock:
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # nothing before "go"
        sock.settimeout(TIMEOUT)
        sock.sendall(masked(0x1, b"go"))
        assert read_frame(sock) == (0x82, PATTERN)
        sock.sendall(masked(0x8, struct.pack("!H", 1000)))
        while True:  # whole messages until the close frame: the stream stops between two
            frame = read_frame(sock)
            if frame[0] == 0x88:
                break
            assert frame == (0x82, PATTERN)
        assert close_code(frame) == 1000
