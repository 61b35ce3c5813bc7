"""Fixtures for the interoperability tests: ws4py's threaded server, the other servers, Node.

Node's ``ws`` is installed by :func:`node` into ``tests/interop/node/node_modules``
(from ``tests/interop/node/package.json``, without a lock file) the first time
it is needed; the Node tests are skipped only when ``node`` or ``npm`` is not
on the PATH.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from wsgiref.simple_server import make_server

import pytest
from interop_peers import (
    NODE_DIR,
    Journal,
    JournalEchoWebSocket,
    Server,
    start_node_server,
    start_websockets_asyncio,
    start_websockets_sync,
)

from ws4py.server.wsgirefserver import WebSocketWSGIRequestHandler, WSGIServer
from ws4py.server.wsgiutils import WebSocketWSGIApplication

NPM_TIMEOUT = 180


def _ws_installed() -> bool:
    manifest = NODE_DIR / "node_modules" / "ws" / "package.json"
    try:
        return json.loads(manifest.read_text())["version"].startswith("8.")
    except (OSError, ValueError, KeyError):
        return False


@pytest.fixture(scope="session")
def node() -> str:
    """The ``node`` executable, with ``ws`` 8 installed for the scripts of ``tests/interop/node``."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are needed for the Node `ws` peers, and `node` or `npm` is not on the PATH")
    # One installer at a time, should two test runs start together.
    with open(NODE_DIR / "package.json") as manifest:
        fcntl.flock(manifest, fcntl.LOCK_EX)
        try:
            if not _ws_installed():
                result = subprocess.run(
                    [npm, "install", "--no-package-lock", "--no-audit", "--no-fund", "--loglevel=error"],
                    cwd=NODE_DIR,
                    capture_output=True,
                    text=True,
                    timeout=NPM_TIMEOUT,
                )
                if result.returncode != 0 or not _ws_installed():
                    pytest.fail(f"npm install of ws failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        finally:
            fcntl.flock(manifest, fcntl.LOCK_UN)
    return node


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
