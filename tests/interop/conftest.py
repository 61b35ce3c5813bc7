"""Fixtures for the interoperability tests: ws4py's threaded server, the other servers, Node.

Node's ``ws`` is installed by :func:`node` into ``tests/interop/node/node_modules``
(from ``tests/interop/node/package.json``, without a lock file) the first time
it is needed; the Node tests are skipped only when ``node`` or ``npm`` is not
on the PATH.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from wsgiref.simple_server import make_server

import pytest
from interop_peers import (
    Journal,
    JournalEchoWebSocket,
    Server,
    node_with_ws,
    start_node_server,
    start_websockets_asyncio,
    start_websockets_sync,
)

from ws4py.server.wsgirefserver import WebSocketWSGIRequestHandler, WSGIServer
from ws4py.server.wsgiutils import WebSocketWSGIApplication


@pytest.fixture(scope="session")
def node() -> str:
    """The ``node`` executable, with ``ws`` 8 installed for the scripts of ``tests/interop/node``."""
    return node_with_ws()


@pytest.fixture(scope="session")
def ws4py_server() -> Iterator[Server]:
    """ws4py's wsgiref server + manager with the journaling echo websocket, accepting permessage-deflate."""
    journal = Journal()
    handler = type("EchoHandler", (JournalEchoWebSocket,), {"journal": journal})
    app = WebSocketWSGIApplication(handler_cls=handler, extensions=["permessage-deflate"])
    server = make_server("127.0.0.1", 0, app, server_class=WSGIServer, handler_class=WebSocketWSGIRequestHandler)
    server.initialize_websockets_manager()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    running = Server("ws4py", server.server_port, journal, stop, True)
    try:
        yield running
    finally:
        running.stop()


SERVERS = ["websockets-sync", "websockets-asyncio", "node-ws"]


@pytest.fixture(scope="session", params=[True, False], ids=["deflate", "no-deflate"])
def compression(request: pytest.FixtureRequest) -> bool:
    """Whether the server accepts permessage-deflate and ws4py's client offers it."""
    return request.param


@pytest.fixture(scope="session", params=SERVERS)
def peer_server(request: pytest.FixtureRequest, compression: bool) -> Iterator[Server]:
    """A server ws4py's client talks to (see ``interop_peers`` for what it does)."""
    if request.param == "websockets-sync":
        server = start_websockets_sync(compression)
    elif request.param == "websockets-asyncio":
        server = start_websockets_asyncio(compression)
    else:
        server = start_node_server(request.getfixturevalue("node"), compression)
    try:
        yield server
    finally:
        server.stop()
