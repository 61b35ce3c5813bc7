"""examples/echo_server.py over a real socket, and the README's main job, ``scripts/serve`` (the chat).

``scripts/serve`` is tried on a fresh copy of the project: only what git
tracks, no ``.venv``. It must make its own virtual environment, install ws4py
with its C speed-ups into it, and serve the chat: its page at ``/`` and its
WebSocket at ``/ws`` (tests/browser has the chat in a browser). (pip 26 started refusing the ``.[]``
the script once passed when no extras were asked for; only running the
script itself shows that.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
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
#: For ``scripts/serve`` on a fresh copy: making a virtual environment, updating pip, compiling the extension.
SETUP_TIMEOUT = 300


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def echo_server() -> Iterator[int]:
    port = _free_port()
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


def _open(port: int, compression: DeflateOptions | None, path: str = "/") -> tuple[socket.socket, Connection]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    handshake = ClientHandshake("127.0.0.1", path, port=port, compression=compression)
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


def _copy_tracked_files(destination: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted in the working tree but not yet in git's index
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def test_scripts_serve_installs_itself_on_a_fresh_copy_and_serves_the_chat(tmp_path: Path) -> None:
    project = tmp_path / "ws4py"
    _copy_tracked_files(project)
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    proc = subprocess.Popen(
        ["bash", "scripts/serve", "--port", str(port)],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the script execs python; the group ends whatever it started
    )
    # A setup that hangs (a registry that never answers) fails the test instead of hanging it.
    deadline = threading.Timer(SETUP_TIMEOUT, os.killpg, (proc.pid, signal.SIGKILL))
    deadline.start()
    try:
        assert proc.stdout is not None
        output = []
        for line in proc.stdout:  # pip is quiet (-q): the server's banner is the line that matters
            output.append(line)
            if f"http://127.0.0.1:{port}/" in line:
                break
        else:
            raise AssertionError("scripts/serve ended without serving:\n" + "".join(output))
        assert (project / ".venv" / "bin" / "python").exists()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
            assert page.headers["Content-Type"] == "text/html; charset=utf-8"
            assert b"<title>ws4py chat</title>" in page.read()
        sock, conn = _open(port, None, "/ws")
        with sock:
            sock.sendall(conn.send_text('{"type": "hello", "name": "fresh"}'))
            sock.sendall(conn.send_text('{"type": "say", "text": "from a fresh copy"}'))
            welcome, joined, said = (json.loads(event.data) for event in _receive(sock, conn, 3))
            assert welcome == {"type": "welcome", "name": "fresh", "online": 1, "max_length": 2000}
            assert joined == {"type": "join", "name": "fresh", "online": 1}
            assert said == {"type": "message", "name": "fresh", "text": "from a fresh copy"}
    finally:
        deadline.cancel()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
