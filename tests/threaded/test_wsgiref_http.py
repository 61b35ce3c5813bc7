"""The wsgiref server beside its WebSockets: plain HTTP requests, malformed heads, other handler classes."""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler

import trustme
from threaded_support import TIMEOUT

from ws4py.server.wsgirefserver import WebSocketWSGIRequestHandler, WSGIServer
from ws4py.server.wsgiutils import WebSocketWSGIApplication
from ws4py.websocket import EchoWebSocket

WebSocketApp = WebSocketWSGIApplication(handler_cls=EchoWebSocket)
#: The plain requests the application has started on (each in its own thread), in order.
_started: list[str] = []


def _app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """``/ws`` upgrades; anything else answers with its request body upper-cased."""
    if environ["PATH_INFO"] == "/ws":
        return WebSocketApp(environ, start_response)  # type: ignore[no-any-return]
    _started.append(environ["PATH_INFO"])
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
    return [body.upper()]


@contextmanager
def _serving(
    handler_class: type[WSGIRequestHandler], tls: ssl.SSLContext | None = None, **settings: Any
) -> Iterator[int]:
    httpd = WSGIServer(("127.0.0.1", 0), handler_class)
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    for name, value in settings.items():
        setattr(httpd, name, value)
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


def _stalled_post(port: int) -> socket.socket:
    """A POST that promises a body and never sends it: its thread waits on the socket."""
    sock = socket.create_connection(("127.0.0.1", port), TIMEOUT)
    sock.sendall(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n")
    return sock


def _answer(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(4096):
        answer += chunk
    return answer


def test_a_plain_request_whose_body_never_comes_is_dropped_after_request_timeout() -> None:
    with _serving(WebSocketWSGIRequestHandler, request_timeout=0.3) as port:
        with _stalled_post(port) as sock:
            # Dropped (wsgiref answers 500 for the timed-out read), not held.
            assert _answer(sock).split(b"\r\n")[0].endswith(b" 500 Internal Server Error")
        assert _post(port, b"next") == (200, b"NEXT")


def test_plain_requests_past_max_plain_requests_are_answered_503_not_given_a_thread() -> None:
    with _serving(WebSocketWSGIRequestHandler, max_plain_requests=2) as port:
        _started.clear()
        stalled = [_stalled_post(port) for _ in range(2)]
        try:
            # Both hold their threads (the application waits for their bodies) before the third comes.
            deadline = time.monotonic() + TIMEOUT
            while len(_started) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(_started) == 2, "the stalled requests never reached the application"
            with socket.create_connection(("127.0.0.1", port), TIMEOUT) as third:
                third.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                assert _answer(third).startswith(b"HTTP/1.1 503 ")
        finally:
            for sock in stalled:
                sock.close()
        # The stalled ones end with their sockets; their slots come back.
        deadline = time.monotonic() + TIMEOUT
        while _post_status(port) != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _post(port, b"after") == (200, b"AFTER")


def test_on_a_tls_listener_plain_requests_past_max_plain_requests_are_answered_503() -> None:
    # There a thread per connection reads the head; a plain request keeps it, within the cap.
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)

    def tls_connection(port: int) -> ssl.SSLSocket:
        return client_context.wrap_socket(
            socket.create_connection(("127.0.0.1", port), TIMEOUT), server_hostname="127.0.0.1"
        )

    with (
        _serving(WebSocketWSGIRequestHandler, tls=server_context, max_plain_requests=1) as port,
        tls_connection(port) as stalled,
    ):
        stalled.sendall(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n")
        with tls_connection(port) as second:
            second.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert _answer(second).startswith(b"HTTP/1.1 503 ")


def _post_status(port: int) -> int:
    return _post(port, b"x")[0]
