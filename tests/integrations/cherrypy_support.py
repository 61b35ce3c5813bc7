"""What the CherryPy integration tests share: waits, ports, the websocket classes of each path."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cherrypy
import trustme
from interop_peers import Journal
from threaded_support import RawPeer, read_head, upgrade_request

from ws4py.messaging import Message
from ws4py.server.cherrypyserver import WebSocketPlugin
from ws4py.websocket import EchoWebSocket, WebSocket

#: Seconds any single wait of these tests may take.
TIMEOUT = 5.0
#: CherryPy's socket_timeout on the main server: a silent handshake is dropped after it.
SOCKET_TIMEOUT = 1
#: The TLS server's socket_timeout: twice the time a wss client is given to connect while
#: silent peers hold connections (a bound the old accept-thread handshake cannot meet).
TLS_SOCKET_TIMEOUT = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """An HTTP response on ``sock``: its head and its body (of Content-Length bytes)."""
    head, body = read_head(sock)
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head, body


def drained(sock: socket.socket, timeout: float) -> bytes:
    """What ``sock`` receives until the server closes it (AssertionError if it does not in time)."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        raise AssertionError(f"the server kept the connection past {timeout}s: {received!r}") from None
    except ConnectionResetError:
        pass
    return received


def small_window_client(port: int, path: str) -> RawPeer:
    """A raw client whose receive buffer is small from the start: it holds little unread."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(TIMEOUT)
    sock.connect(("127.0.0.1", port))
    sock.sendall(upgrade_request(path, port))
    head, rest = read_head(sock)
    assert head.startswith(b"HTTP/1.1 101 "), head
    return RawPeer(sock, rest, is_client=True)


def wait_for(condition: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


class UpperEchoWebSocket(EchoWebSocket):
    """Echoes text in capitals: another class on another path."""

    def received_message(self, message: Message) -> None:
        self.send(str(message).upper() if message.is_text else message.data, message.is_binary)


class AgreedWebSocket(EchoWebSocket):
    """Says first what the handshake agreed: ``protocols|extensions``."""

    def opened(self) -> None:
        self.send(",".join(self.protocols) + "|" + ",".join(self.extensions))


class GreetingWebSocket(EchoWebSocket):
    """Sends at once from ``opened()``, then broadcasts through the bus from there."""

    def opened(self) -> None:
        self.send("welcome")
        cherrypy.engine.publish("websocket-broadcast", f"joined {self.peer_address[1]}")


class FailingWebSocket(WebSocket):
    """Its handler raises on every message."""

    def received_message(self, message: Message) -> None:
        raise RuntimeError("the handler failed")

    def unhandled_error(self, error: BaseException) -> None:
        pass  # expected: kept out of the test log


class SilentEchoWebSocket(EchoWebSocket):
    """An echo websocket that does not log the drops the tests cause on purpose."""

    def unhandled_error(self, error: BaseException) -> None:
        pass


class BrowserEchoWebSocket(EchoWebSocket):
    """Echoes the page's messages (tests/interop/browser/echo.html) and keeps its report."""

    reports: list[tuple[dict[str, Any], dict[str, Any]]] = []  # noqa: RUF012 - (environ, report) per page

    def received_message(self, message: Message) -> None:
        if message.is_text and str(message).startswith("report:"):
            self.reports.append((self.environ or {}, json.loads(str(message)[len("report:") :])))
            self.close(1000, "thank you")
            return
        super().received_message(message)


class Root:
    @cherrypy.expose
    def index(self) -> str:
        return "plain HTTP"

    @cherrypy.expose
    def ws(self, **params: str) -> None:
        handler = cherrypy.request.ws_handler
        assert isinstance(handler, WebSocket)

    @cherrypy.expose
    def browser(self) -> bytes:
        cherrypy.response.headers["Content-Type"] = "text/html; charset=utf-8"
        return (Path(__file__).resolve().parents[1] / "interop" / "browser" / "echo.html").read_bytes()

    @cherrypy.expose
    @cherrypy.tools.json_out()
    def scheme(self) -> dict[str, Any]:
        """What the request knows of its transport."""
        environ = cherrypy.request.wsgi_environ
        keys = ("wsgi.url_scheme", "HTTPS", "SSL_PROTOCOL", "SSL_TLS_SNI", "SSL_CLIENT_VERIFY", "SSL_CLIENT_S_DN_CN")
        return {"scheme": cherrypy.request.scheme, **{key: environ.get(key) for key in keys}}

    @cherrypy.expose
    def heartbeat(self) -> None:
        pass

    @cherrypy.expose
    def refused(self) -> None:
        raise cherrypy.HTTPError(403, "the page handler says no")

    @cherrypy.expose
    def upper(self) -> None:
        pass

    @cherrypy.expose
    def agreed(self) -> None:
        pass

    @cherrypy.expose
    def deflate(self) -> None:
        pass

    @cherrypy.expose
    def origins(self) -> None:
        pass

    @cherrypy.expose
    def greeting(self) -> None:
        pass

    @cherrypy.expose
    def failing(self) -> None:
        pass

    @cherrypy.expose
    def silent(self) -> None:
        pass

    @cherrypy.expose
    def runCase(self, **params: str) -> None:
        pass

    @cherrypy.expose
    def default(self, *path: str, **params: str) -> None:
        pass  # the interop tests' paths: /<client>/<n>


def on_path(handler_cls: type[WebSocket], **options: Any) -> dict[str, Any]:
    config = {"tools.websocket.on": True, "tools.websocket.handler_cls": handler_cls}
    config.update({f"tools.websocket.{name}": value for name, value in options.items()})
    return config


@dataclass
class Servers:
    """The running engine's servers and plugin."""

    port: int
    pool1_port: int
    tls_port: int
    plugin: WebSocketPlugin
    journal: Journal
    ca: trustme.CA

    def url(self, path: str, port: int | None = None) -> str:
        return f"ws://127.0.0.1:{port or self.port}{path}"
