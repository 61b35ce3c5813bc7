"""ws4py's CherryPy tool and plugin in a real CherryPy engine: the handshake and its options.

Clients: ``websockets``' sync client, and raw sockets where the bytes on the
wire matter (a frame sent in the same packet as the handshake).
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import urllib.error
import urllib.request

import cherrypy
import pytest
from cherrypy_support import TIMEOUT, Servers, read_head, read_response, upgrade_request, wait_for
from threaded_support import OP_PING, OP_PONG, RawClient
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from ws4py.protocol import frames


def test_seed_config_echoes_text_and_binary(servers: Servers) -> None:
    with connect(servers.url("/ws"), open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        ws.send("héllo")
        assert ws.recv(TIMEOUT) == "héllo"
        ws.send(b"\x00\xff" * 40000)
        assert ws.recv(TIMEOUT) == b"\x00\xff" * 40000
    assert ws.close_code == 1000


def test_each_path_gets_its_own_handler_class(servers: Servers) -> None:
    with connect(servers.url("/ws")) as echo, connect(servers.url("/upper")) as upper:
        echo.send("abc")
        upper.send("abc")
        assert echo.recv(TIMEOUT) == "abc"
        assert upper.recv(TIMEOUT) == "ABC"


def test_protocols_option_picks_the_servers_preference(servers: Servers) -> None:
    with connect(servers.url("/agreed"), subprotocols=["superchat", "chat"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "chat"
        assert ws.recv(TIMEOUT) == "chat|"


def test_protocols_option_refuses_nothing_when_no_protocol_is_shared(servers: Servers) -> None:
    with connect(servers.url("/agreed")) as ws:
        assert ws.subprotocol is None
        assert ws.recv(TIMEOUT) == "|"


def test_extensions_option_agrees_permessage_deflate(servers: Servers) -> None:
    with connect(servers.url("/deflate")) as ws:  # websockets offers permessage-deflate
        assert ws.recv(TIMEOUT) == "|permessage-deflate"
        ws.send("z" * 100000)
        assert ws.recv(TIMEOUT) == "z" * 100000
    with connect(servers.url("/agreed")) as plain:  # not on this path
        assert plain.recv(TIMEOUT) == "|"


def test_origins_option_admits_listed_origin_only(servers: Servers) -> None:
    with connect(servers.url("/origins"), origin="https://chat.example.com") as ws:  # type: ignore[arg-type]
        ws.send("hi")
        assert ws.recv(TIMEOUT) == "hi"
    with pytest.raises(InvalidStatus) as refused:
        connect(servers.url("/origins"), origin="https://evil.example.com")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    assert b"origin" in refused.value.response.body.lower()


def test_plain_request_to_websocket_path_gets_plain_text_error(servers: Servers) -> None:
    plain = http.client.HTTPConnection("127.0.0.1", servers.port, timeout=TIMEOUT)
    try:
        plain.request("GET", "/ws")
        response = plain.getresponse()
        assert response.status in (400, 426)
        assert response.headers["Content-Type"].startswith("text/plain")
        assert b"Upgrade" in response.read()
    finally:
        plain.close()


def test_unsupported_version_gets_426_with_supported_version(servers: Servers) -> None:
    with socket.create_connection(("127.0.0.1", servers.port), timeout=TIMEOUT) as sock:
        sock.sendall(upgrade_request("/ws", servers.port).replace(b"Version: 13", b"Version: 8"))
        head, _ = read_head(sock)
    assert head.startswith(b"HTTP/1.1 426 ")
    assert b"Sec-WebSocket-Version: 13" in head or b"Sec-Websocket-Version: 13" in head


def test_plain_pages_still_served(servers: Servers) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{servers.port}/", timeout=TIMEOUT) as response:
        assert response.read() == b"plain HTTP"


def test_frame_sent_with_the_handshake_is_answered_after_the_101(servers: Servers) -> None:
    """#218/#230: frames in the packet of the request head, read by cheroot, are not lost."""
    first = frames.build_frame(frames.FIN | 1, b"first", b"\x01\x02\x03\x04")
    second = frames.build_frame(frames.FIN | 2, b"\x00" * 3000, b"\x05\x06\x07\x08")
    with socket.create_connection(("127.0.0.1", servers.port), timeout=TIMEOUT) as sock:
        sock.sendall(upgrade_request("/ws", servers.port) + first + second)
        head, rest = read_head(sock)
        assert head.startswith(b"HTTP/1.1 101 ")
        expected = frames.build_frame(frames.FIN | 1, b"first", None) + frames.build_frame(
            frames.FIN | 2, b"\x00" * 3000, None
        )
        while len(rest) < len(expected):
            chunk = sock.recv(65536)
            assert chunk, f"closed after {rest!r}"
            rest += chunk
        assert rest == expected


def test_websocket_environ_leaves_out_cheroots_objects(servers: Servers) -> None:
    with connect(servers.url("/ws?x=1")) as ws:
        ws.send("ping")
        assert ws.recv(TIMEOUT) == "ping"
        wait_for(lambda: len(servers.plugin.manager) >= 1, "the websocket on the manager")
        environs = [w.environ or {} for w in servers.plugin.manager]
        mine = [e for e in environs if e.get("QUERY_STRING") == "x=1"]
        assert mine and "wsgi.input" not in mine[0] and "ws4py.gateway" not in mine[0]
        assert mine[0]["PATH_INFO"] == "/ws"


def test_heartbeat_freq_option_pings_the_peer(servers: Servers) -> None:
    with contextlib.closing(RawClient(servers.port, resource="/heartbeat")) as client:
        frame = client.recv_frame()
        assert frame.opcode == OP_PING
        client.send_frame(OP_PONG, frame.payload)
        assert client.recv_frame().opcode == OP_PING  # answered: the next one comes


def test_page_handler_refusing_the_upgrade_keeps_its_error_and_the_connection_is_not_taken(
    servers: Servers,
) -> None:
    with socket.create_connection(("127.0.0.1", servers.port), timeout=TIMEOUT) as sock:
        sock.sendall(upgrade_request("/refused", servers.port))
        head, _ = read_head(sock)
        assert head.startswith(b"HTTP/1.1 403 ")
    assert len(servers.plugin.manager) == 0


def test_without_the_plugin_listening_the_upgrade_is_refused_with_500(servers: Servers) -> None:
    plugin = servers.plugin
    cherrypy.engine.unsubscribe("handle-websocket", plugin.handle)
    try:
        with socket.create_connection(("127.0.0.1", servers.port), timeout=TIMEOUT) as sock:
            sock.sendall(upgrade_request("/ws", servers.port))
            head, body = read_response(sock)
        assert head.startswith(b"HTTP/1.1 500 ")
        assert b"WebSocketPlugin" in body
    finally:
        cherrypy.engine.subscribe("handle-websocket", plugin.handle)


def test_wsgi_application_grafted_on_cherrypys_tree_is_served_by_the_gateway(servers: Servers) -> None:
    with connect(servers.url("/wsgi/anything"), subprotocols=["wsgi"]) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "wsgi"
        ws.send("grafted")
        assert ws.recv(TIMEOUT) == "grafted"
