"""Fixtures for the Autobahn cases over real sockets: ws4py's threaded server, a fuzzing listener, a manager.

The case tables and the fuzzer come from ``tests/core`` (``autobahn.py``,
``test_autobahn_cases.py``, ``test_autobahn_deflate.py``), imported from
there so both suites always play the same cases.
"""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from wsgiref.simple_server import make_server

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))

from socket_fuzzer import CaseEchoWebSocket

from ws4py.manager import WebSocketManager
from ws4py.protocol import frames
from ws4py.server.wsgirefserver import WebSocketWSGIRequestHandler, WSGIServer
from ws4py.server.wsgiutils import WebSocketWSGIApplication


@pytest.fixture(scope="session")
def ws4py_server() -> Iterator[int]:
    """ws4py's wsgiref server with an echo websocket, accepting permessage-deflate; yields its port.

    One server for every case: each case is one more connection to it.
    """
    app = WebSocketWSGIApplication(handler_cls=CaseEchoWebSocket, extensions=["permessage-deflate"])
    server = make_server("127.0.0.1", 0, app, server_class=WSGIServer, handler_class=WebSocketWSGIRequestHandler)
    server.initialize_websockets_manager()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture(scope="session")
def fuzzing_listener() -> Iterator[socket.socket]:
    """The listening socket of the fuzzing server that the clients under test connect to."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=16)
    try:
        yield listener
    finally:
        listener.close()


@pytest.fixture(scope="session")
def client_manager() -> Iterator[WebSocketManager]:
    """A manager shared by the manager-driven clients under test."""
    manager = WebSocketManager()
    manager.start()
    try:
        yield manager
    finally:
        manager.stop()
        manager.join(10)


@pytest.fixture(params=frames.available_implementations(), autouse=True)
def codec(request: pytest.FixtureRequest) -> Iterator[str]:
    """The frame codec (``"c"`` or ``"python"``) of the whole process, testees included."""
    previous = frames.implementation
    frames.use(request.param)
    try:
        yield request.param
    finally:
        frames.use(previous)
