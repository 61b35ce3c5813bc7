"""The wsgiref server beside its WebSockets: plain HTTP requests, malformed heads, other handler classes."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler

from threaded_support import TIMEOUT

from ws4py.server.wsgirefserver import WebSocketWSGIRequestHandler, WSGIServer
from ws4py.server.wsgiutils import WebSocketWSGIApplication
from ws4py.websocket import EchoWebSocket

WebSocketApp = WebSocketWSGIApplication(handler_cls=EchoWebSocket)


def _app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """``/ws`` upgrades; anything else answers with its request body upper-cased."""
    if environ["PATH_INFO"] == "/ws":
        return WebSocketApp(environ, start_response)  # type: ignore[no-any-return]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
    return [body.upper()]


@contextmanager
def _serving(handler_class: type[WSGIRequestHandler]) -> Iterator[int]:
    httpd = WSGIServer(("127.0.0.1", 0), handler_class)
    httpd.set_app(_app)
    httpd.initialize_websockets_manager()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="wsgiref-server")
    thread.start()
    try:
        yield httpd.server_address[1]  # type: ignore[misc]
    finally:
        httpd.shutdown()
        thread.join(TIMEOUT)
        httpd.server_close()


def _post(port: int, body: bytes) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request("POST", "/echo", body=body, headers={"Content-Type": "application/octet-stream"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_a_plain_request_runs_the_wsgi_app_with_its_whole_body() -> None:
    # Part of a large body comes with the head, which the loop read; the rest from the socket.
    body = b"abc" * 100_000
    with _serving(WebSocketWSGIRequestHandler) as port:
        assert _post(port, b"small") == (200, b"SMALL")
        assert _post(port, body) == (200, body.upper())


def test_a_malformed_request_head_is_answered_400_and_closed() -> None:
    with _serving(WebSocketWSGIRequestHandler) as port, socket.create_connection(("127.0.0.1", port), TIMEOUT) as sock:
        sock.sendall(b"NOT A REQUEST LINE\r\n\r\n")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 400 "), answer


def test_wsgirefs_own_handler_class_still_serves_plain_requests_on_a_thread_each() -> None:
    with _serving(WSGIRequestHandler) as port:
        assert _post(port, b"through wsgiref") == (200, b"THROUGH WSGIREF")
