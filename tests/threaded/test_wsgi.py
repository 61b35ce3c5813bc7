"""WebSocketWSGIApplication on wsgiref's WSGIServer: refusals as HTTP errors, the environ, server_close()."""

from __future__ import annotations

import http.client
import threading
from typing import Any

import pytest
from threaded_support import (
    OP_CLOSE,
    OP_TEXT,
    TIMEOUT,
    RawClient,
    RecordingClient,
    Server,
    build_frame,
    parse_close,
)

from ws4py.server.wsgiutils import WebSocketWSGIApplication
from ws4py.websocket import WebSocket

UPGRADE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


def _request(server: Server, method: str, headers: dict[str, str]) -> tuple[http.client.HTTPResponse, str]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    try:
        connection.request(method, "/ws", headers=headers)
        response = connection.getresponse()
        return response, response.read().decode()
    finally:
        connection.close()


def test_plain_get_gets_400_saying_why(server: Server) -> None:
    response, body = _request(server, "GET", {})
    assert response.status == 400
    assert "Upgrade" in body
    assert response.getheader("Content-Type", "").startswith("text/plain")
    assert server.app.created.empty(), "no websocket was made"


def test_post_gets_405_allowing_get(server: Server) -> None:
    response, body = _request(server, "POST", UPGRADE)
    assert response.status == 405
    assert response.getheader("Allow") == "GET"
    assert "POST" in body


def test_version_8_gets_426_naming_version_13(server: Server) -> None:
    response, body = _request(server, "GET", {**UPGRADE, "Sec-WebSocket-Version": "8"})
    assert response.status == 426
    assert response.getheader("Sec-WebSocket-Version") == "13"
    assert "8" in body


@pytest.mark.parametrize(
    ("change", "mention"),
    [
        ({"Sec-WebSocket-Key": None}, "Sec-WebSocket-Key"),
        ({"Sec-WebSocket-Key": "too-short"}, "Sec-WebSocket-Key"),
        ({"Connection": "keep-alive"}, "Connection"),
        ({"Upgrade": "h2c"}, "Upgrade"),
    ],
    ids=["missing-key", "bad-key", "no-connection-upgrade", "wrong-upgrade"],
)
def test_invalid_upgrade_gets_400_saying_why(server: Server, change: dict[str, str | None], mention: str) -> None:
    headers = {k: v for k, v in {**UPGRADE, **change}.items() if v is not None}
    response, body = _request(server, "GET", headers)
    assert response.status == 400
    assert mention in body


def test_a_valid_upgrade_gets_101_with_the_accept_key(server: Server) -> None:
    peer = RawClient(server.port)  # checks the 101 and Sec-WebSocket-Accept itself
    with peer.sock:
        ws = server.accept()
        assert isinstance(ws, WebSocket)
        assert peer.response_headers["upgrade"].lower() == "websocket"
        peer.send_close()
        peer.recv_frame()


def test_environ_is_a_copy_of_the_upgrade_requests_environ(server: Server) -> None:
    peer = RawClient(server.port, resource="/chat?room=7", headers=(("X-Custom", "yes"),))
    with peer.sock:
        ws = server.accept()
        environ = ws.environ
        assert environ["REQUEST_METHOD"] == "GET"
        assert environ["PATH_INFO"] == "/chat"
        assert environ["QUERY_STRING"] == "room=7"
        assert environ["HTTP_X_CUSTOM"] == "yes"
        assert environ["HTTP_UPGRADE"] == "websocket"
        assert environ["ws4py.socket"] is ws.sock
        assert "ws4py.websocket" not in environ, "a copy taken before the server's own keys were added"
        peer.send_close()
        peer.recv_frame()


def test_frames_sent_with_the_upgrade_request_are_delivered(server: Server) -> None:
    first = build_frame(OP_TEXT, b"one") + build_frame(OP_TEXT, b"two")
    peer = RawClient(server.port, first_bytes=first)
    with peer.sock:
        ws = server.accept()
        assert [str(m) for m in ws.wait_messages(2)] == ["one", "two"]
        peer.send_close()
        peer.recv_frame()


def test_server_close_closes_every_open_websocket_with_1001(server: Server) -> None:
    clients = []
    for _ in range(3):
        client = RecordingClient(server.url())
        client.connect()
        clients.append((client, server.accept()))
    peer = RawClient(server.port)
    with peer.sock:
        raw_ws = server.accept()
        stopper = threading.Thread(target=server.stop, name="server-stop")  # shutdown() + server_close()
        stopper.start()
        close = peer.recv_frame()
        assert close.opcode == OP_CLOSE
        assert parse_close(close.payload) == (1001, "Server is shutting down")
        peer.send_frame(OP_CLOSE, close.payload[:2])
        peer.assert_eof()
        assert raw_ws.wait_closed()[0] == 1001
        stopper.join(TIMEOUT)
        assert not stopper.is_alive(), "server_close() did not return"
    for client, ws in clients:
        assert client.wait_closed() == (1001, "Server is shutting down")
        assert ws.wait_closed()[0] == 1001
        client.run_forever()
    assert not server.manager.is_alive()


def test_the_app_refuses_with_500_when_the_server_gives_no_socket() -> None:
    app = WebSocketWSGIApplication()
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "HTTP_HOST": "example.com",
        **{"HTTP_" + name.upper().replace("-", "_"): value for name, value in UPGRADE.items()},
    }
    started: list[Any] = []
    body = b"".join(app(environ, lambda status, headers: started.append((status, headers))))
    assert started[0][0].startswith("500")
    assert b"ws4py.socket" in body
    assert "ws4py.websocket" not in environ


def test_a_head_read_on_the_loop_gives_the_environ_wsgirefs_own_parse_gives() -> None:
    """The loop parses an upgrade's head once (ws4py's strict parser) and gives wsgiref that
    parse: the environ must be the one wsgiref's own parse_request() leads to."""
    import io

    from ws4py.protocol.http11 import HeadReader
    from ws4py.server.wsgirefserver import WebSocketWSGIRequestHandler, WSGIServer

    raw = (
        b"GET //chat/a%20b?room=7 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        b"X-Custom: a\r\nx-custom: b\r\nCookie: c=1\r\nContent-Length: 0\r\n\r\n"
    )
    parsed = HeadReader(is_request=True).feed(raw)
    server = WSGIServer(("127.0.0.1", 0), WebSocketWSGIRequestHandler)
    try:

        def environ(request: Any) -> tuple[dict[str, Any], str, str]:
            handler = object.__new__(WebSocketWSGIRequestHandler)  # no socket: parse and environ only
            handler.server, handler.client_address, handler.parsed = server, ("127.0.0.1", 5555), request
            handler.rfile = io.BytesIO(raw)
            handler.raw_requestline = handler.rfile.readline(65537)
            assert handler.parse_request()
            return handler.get_environ(), handler.requestline, handler.request_version

        assert environ(parsed) == environ(None)
    finally:
        server.server_close()


def test_serve_forever_accepts_on_the_managers_loop_and_shutdown_stops_it(serve: Any) -> None:
    """After shutdown() no connection is taken (it waits in the backlog); serve_forever()
    again takes it, on the manager's loop, with no thread of the server's own."""
    import socket as _socket

    server = serve(WebSocket)
    server.httpd.shutdown()
    server.thread.join(TIMEOUT)
    waiting = _socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    try:
        waiting.sendall(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        waiting.settimeout(0.3)
        with pytest.raises(TimeoutError):
            waiting.recv(1)  # not served while shut down
        server.thread = threading.Thread(target=server.httpd.serve_forever, kwargs={"poll_interval": 0.05})
        server.thread.start()
        waiting.settimeout(TIMEOUT)
        assert waiting.recv(12) == b"HTTP/1.1 101"
        assert server.accept().environ["PATH_INFO"] == "/"
    finally:
        waiting.close()
