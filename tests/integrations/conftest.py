"""A real CherryPy engine for the CherryPy integration tests, started once for the package.

CherryPy's engine is one per process: the package shares it. It runs three
servers, each on a free port: CherryPy's own (``cherrypy.server``, a short
``socket_timeout`` for the slow-handshake tests), one with a thread pool of 1,
and one with CherryPy's TLS settings (a trustme CA). The application mounts a
path per behaviour, each with its own ``tools.websocket.*`` configuration.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parents[1]
for _folder in ("interop", "autobahn_sockets", "core", "threaded"):
    if str(TESTS / _folder) not in sys.path:
        sys.path.insert(0, str(TESTS / _folder))

import cherrypy  # noqa: E402
import trustme  # noqa: E402
from cherrypy._cpserver import Server as CherryPyServer  # noqa: E402 - how CherryPy documents a second server
from cherrypy_support import (  # noqa: E402
    SOCKET_TIMEOUT,
    TIMEOUT,
    AgreedWebSocket,
    BrowserEchoWebSocket,
    FailingWebSocket,
    GreetingWebSocket,
    Root,
    Servers,
    SilentEchoWebSocket,
    UpperEchoWebSocket,
    free_port,
    on_path,
    wait_for,
)
from interop_peers import Journal, JournalEchoWebSocket  # noqa: E402
from socket_fuzzer import CaseEchoWebSocket  # noqa: E402
from test_interop_ws4py_server import CLIENTS as INTEROP_CLIENTS  # noqa: E402

from ws4py.server.cherrypyserver import WebSocketPlugin, WebSocketTool  # noqa: E402
from ws4py.server.wsgiutils import WebSocketWSGIApplication  # noqa: E402
from ws4py.websocket import EchoWebSocket  # noqa: E402


def _interop_fixture(name: str) -> Any:
    """A fixture of tests/interop/conftest.py (``node``: Node with ``ws`` installed), shared as it is."""
    spec = importlib.util.spec_from_file_location("interop_conftest", TESTS / "interop" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)


node = _interop_fixture("node")


@pytest.fixture(scope="package")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    threads_before = set(threading.enumerate())
    ca = trustme.CA()
    folder = tmp_path_factory.mktemp("cherrypy-tls")
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = folder / "cert.pem", folder / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    journal = Journal()
    interop_handler = type("InteropEchoWebSocket", (JournalEchoWebSocket,), {"journal": journal})

    port, pool1_port, tls_port = free_port(), free_port(), free_port()
    cherrypy.config.update(
        {
            "log.screen": False,
            "engine.autoreload.on": False,
            "checker.on": False,
            "server.socket_host": "127.0.0.1",
            "server.socket_port": port,
            "server.socket_timeout": SOCKET_TIMEOUT,
            "server.thread_pool": 8,
        }
    )
    pool1 = CherryPyServer()
    pool1.socket_host, pool1.socket_port, pool1.thread_pool = "127.0.0.1", pool1_port, 1
    pool1.subscribe()
    tls = CherryPyServer()
    tls.socket_host, tls.socket_port = "127.0.0.1", tls_port
    tls.ssl_module, tls.ssl_certificate, tls.ssl_private_key = "builtin", str(cert), str(key)
    tls.subscribe()

    plugin = WebSocketPlugin(cherrypy.engine)
    plugin.subscribe()
    cherrypy.tools.websocket = WebSocketTool()
    deflate = ["permessage-deflate"]
    config = {
        "/ws": on_path(EchoWebSocket),
        "/upper": on_path(UpperEchoWebSocket),
        "/agreed": on_path(AgreedWebSocket, protocols=["chat", "superchat"]),
        "/deflate": on_path(AgreedWebSocket, extensions=deflate),
        "/origins": on_path(EchoWebSocket, origins=["https://chat.example.com"]),
        "/greeting": on_path(GreetingWebSocket),
        "/failing": on_path(FailingWebSocket),
        "/silent": on_path(SilentEchoWebSocket),
        "/heartbeat": on_path(EchoWebSocket, heartbeat_freq=0.1),
        "/refused": on_path(EchoWebSocket),
        "/runCase": on_path(CaseEchoWebSocket, extensions=deflate),
        # The interop tests' paths: /<client>/<n>, as tests/interop's ws4py server takes them.
        **{f"/{client}": on_path(interop_handler, extensions=deflate) for client in INTEROP_CLIENTS},
        "/echo": on_path(BrowserEchoWebSocket, extensions=deflate),
    }
    cherrypy.tree.mount(Root(), "", config)
    # ws4py's WSGI application grafted on CherryPy's tree: the gateway serves it too.
    cherrypy.tree.graft(WebSocketWSGIApplication(handler_cls=EchoWebSocket, protocols=["wsgi"]), "/wsgi")
    cherrypy.engine.start()
    try:
        yield Servers(port, pool1_port, tls_port, plugin, journal, ca)
    finally:
        cherrypy.engine.exit()  # stop(), then "exit": the state CherryPy expects at interpreter exit
        plugin.unsubscribe()
        pool1.unsubscribe()
        tls.unsubscribe()
        cherrypy.tree.apps.pop("", None)
        cherrypy.tree.apps.pop("/wsgi", None)
        cherrypy.server.httpserver = None
        leftover = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        for thread in leftover:
            thread.join(TIMEOUT)
        assert not [t for t in leftover if t.is_alive()], f"threads outlived the engine: {leftover}"


@pytest.fixture(autouse=True)
def no_websocket_left_over(servers: Servers) -> Iterator[None]:
    """Each test starts with no websocket on the plugin's manager and leaves none behind."""
    wait_for(lambda: len(servers.plugin.manager) == 0, "the websockets of the previous test to end")
    yield
    wait_for(lambda: len(servers.plugin.manager) == 0, "every websocket of the test to end", timeout=10)
