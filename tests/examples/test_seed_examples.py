"""The examples of ws4py's documentation pages, run as their readers run them.

They talk to port 9000 on localhost, as written on the pages (the CherryPy one is given a free port).
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import make_server

import pytest
import websocket as websocket_client  # the websocket-client package

from ws4py.server.wsgirefserver import WebSocketWSGIRequestHandler, WSGIServer
from ws4py.server.wsgiutils import WebSocketWSGIApplication
from ws4py.websocket import EchoWebSocket

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
CLIENTS = 2000


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


def _echoes(url: str) -> None:
    """A text and a binary message echoed by the example at ``url``, then the closing handshake."""
    ws = websocket_client.create_connection(url, timeout=5)
    try:
        ws.send("héllo")
        assert ws.recv() == "héllo"
        ws.send_binary(b"\x00\xff" * 1000)
        assert ws.recv() == b"\x00\xff" * 1000
        ws.close(1000, "bye")
    finally:
        ws.shutdown()


def _port_9000_accepts() -> bool:
    return _accepts(9000)


def _wait(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"needs {wanted} file descriptors, the hard limit is {hard}")
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def free_port_9000() -> None:
    if _port_9000_accepts():
        pytest.skip("port 9000 is taken on this machine; the documented examples need it")


def test_wsgiref_snippet_serves_echo_on_port_9000(free_port_9000: None) -> None:
    proc = subprocess.Popen([sys.executable, str(EXAMPLES / "wsgiref_echo_server.py")], stderr=subprocess.PIPE)
    try:
        _wait(_port_9000_accepts, 15, "the wsgiref example to listen on port 9000")
        _echoes("ws://localhost:9000/")
    finally:
        proc.terminate()
        proc.wait(10)


def test_cherrypy_snippet_serves_echo_on_ws_path() -> None:
    port = _free_port()  # the page's port 9000, unless the test gives one
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "cherrypy_echo_server.py"), str(port)], stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        # Started: a SIGTERM while CherryPy's engine is still starting exits with 70.
        _wait(lambda: proc.poll() is not None or any("Bus STARTED" in line for line in lines), 15, "CherryPy")
        _echoes(f"ws://localhost:{port}/ws")
    finally:
        proc.terminate()  # quickstart's engine exits cleanly on SIGTERM
        returncode = proc.wait(10)
        reader.join(10)
    assert returncode == 0, "".join(lines[-20:])
    assert not [line for line in lines if "Traceback" in line or "ERROR" in line]


@pytest.fixture
def wsgiref_echo_server(free_port_9000: None) -> Iterator[WSGIServer]:
    """The wsgiref snippet, in this process so the test can see its manager."""
    server = make_server(
        "",
        9000,
        server_class=WSGIServer,
        handler_class=WebSocketWSGIRequestHandler,
        app=WebSocketWSGIApplication(handler_cls=EchoWebSocket),
    )
    server.initialize_websockets_manager()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server  # type: ignore[misc]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_manager_example_runs_2000_clients_and_shuts_down_cleanly(wsgiref_echo_server: WSGIServer) -> None:
    _raise_fd_limit(3 * CLIENTS + 500)
    server = wsgiref_echo_server
    manager = server.manager
    assert manager is not None
    fds_before = _open_fds()
    threads_before = threading.active_count()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    def as_from_a_terminal() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        # A run started in the background by a non-interactive shell ignores
        # SIGINT, and its children inherit that: the example would never get
        # the KeyboardInterrupt this test sends it.
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "manager_clients.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=as_from_a_terminal,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    try:
        _wait(lambda: any("1999 clients are connected" in line for line in lines), 180, "2,000 connections")
        _wait(lambda: len(manager) == CLIENTS, 30, "the server to hold 2,000 websockets")

        # What the page describes: a message broadcast to every connected peer.
        manager.broadcast("hello, all of you")
        _wait(lambda: sum("hello, all of you" in line for line in lines) == CLIENTS, 60, "2,000 messages")

        proc.send_signal(signal.SIGINT)  # the example's Ctrl-C path: close_all(), stop(), join()
        assert proc.wait(30) == 0, "".join(lines[-20:])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        reader.join(10)

    assert not [line for line in lines if "Traceback" in line or "ERROR" in line]
    _wait(lambda: len(manager) == 0, 15, "every server-side websocket to close")
    _wait(lambda: _open_fds() <= fds_before + 5, 15, "the server's sockets to be released")
    _wait(lambda: threading.active_count() <= threads_before, 15, "the handshake threads to end")


@pytest.mark.parametrize(
    ("example", "host"), [("gevent_echo_server.py", "127.0.0.1"), ("gevent_wsgi_echo_server.py", "localhost")]
)
def test_gevent_snippets_serve_echo(example: str, host: str) -> None:
    """The page's two gevent servers, as written (monkey-patched), on a free port given as argument."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, str(EXAMPLES / example), f"{host}:{port}"], stderr=subprocess.PIPE)
    try:
        _wait(lambda: _accepts(port), 15, f"the gevent example to listen on port {port}")
        _echoes(f"ws://{host}:{port}/")
    finally:
        proc.terminate()
        proc.wait(10)
