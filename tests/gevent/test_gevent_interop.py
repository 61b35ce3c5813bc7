"""Other WebSocket implementations through ws4py's gevent server (monkey-patched, in a subprocess).

``websockets`` (sync client) and Node's ``ws`` client, with the adapters of
``tests/interop/interop_peers.py``, and headless Chromium playing the page
``tests/interop/browser/echo.html`` with ``tests/interop/chromium_page.py``
(the gevent server serves the page at ``/`` and echoes on ``/echo``; the
page's ``report:`` message is printed by the server and read here).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chromium_page import PAGE, open_page
from gevent_support import GeventServer
from interop_peers import FRAGMENTS, NodeClient, WebsocketsClient


def _exchange(client: Any) -> None:
    """Echoes of text, large binary and a fragmented message, a ping, the closing handshake."""
    try:
        assert (client.extensions_header or "").split(";")[0].strip() == "permessage-deflate"
        client.send("héllo")
        assert client.recv() == "héllo"
        client.send(bytes(range(256)) * 800)
        assert client.recv() == bytes(range(256)) * 800
        client.send_fragments(list(FRAGMENTS))
        assert client.recv() == "".join(FRAGMENTS)
        assert client.ping(b"are you there") == b"are you there"
        client.close(1000, "bye")
    finally:
        client.shutdown()


def test_websockets_client_through_the_gevent_server(gevent_server: GeventServer) -> None:
    _exchange(WebsocketsClient(gevent_server.url()))


def test_node_ws_client_through_the_gevent_server(gevent_server: GeventServer, node: str) -> None:
    _exchange(NodeClient(gevent_server.url(), node))


def test_chromium_echo_through_the_gevent_server(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = start_server("--page", str(PAGE))
    with open_page(f"http://127.0.0.1:{server.port}/", tmp_path) as browser:
        line = browser.wait_for(lambda: next((line for line in server.lines if line.startswith("REPORT ")), None))
    report = json.loads(line[len("REPORT ") :])
    assert (report["extensions"] or "").split(";")[0].strip() == "permessage-deflate", report
    assert report["failures"] == [], report["failures"]
    assert report["ok"] and report["checked"] == report["expected"], report
    assert not server.tracebacks(), server.errors
