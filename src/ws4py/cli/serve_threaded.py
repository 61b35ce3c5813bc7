"""One serving process on the threaded stack (``serve --threaded``): wsgiref's server and its manager."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import threading
from types import FrameType

from ..server.wsgirefserver import WebSocketWSGIRequestHandler, WSGIServer
from ..server.wsgiutils import WebSocketWSGIApplication
from ..websocket import WebSocket
from .apps import threaded_app
from .brokers import close_broker, open_broker
from .target import load
from .worker import WorkerConfig, announce, listen_error

__all__ = ["run_threaded"]


class _Server(WSGIServer):
    """wsgiref's server with ws4py's manager; on IPv6 when the host is, sharing its port when asked."""

    reuse_port = False

    def server_bind(self) -> None:
        if self.reuse_port:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


def run_threaded(config: WorkerConfig) -> None:
    """Serve the WebSocket class ``config.spec`` names until SIGTERM, SIGINT or the supervisor's end."""
    handler_cls = threaded_app(load(config.spec), config.spec)
    broker = open_broker(config.broker_url)
    try:
        _serve(config, handler_cls)
    finally:
        close_broker(broker)


def _serve(config: WorkerConfig, handler_cls: type[WebSocket]) -> None:
    # Each connection gets the command line's close timeout: the manager waits that long at shutdown.
    timed = type(handler_cls.__name__, (handler_cls,), {"close_timeout": config.close_timeout})
    host = config.host or ""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server_cls = type("Server", (_Server,), {"reuse_port": config.reuse_port, "address_family": family})
    try:
        server = server_cls((host, config.port), WebSocketWSGIRequestHandler)
    except OSError as exc:
        raise listen_error(config, exc) from None
    server.set_app(WebSocketWSGIApplication(handler_cls=timed))
    if config.ssl is not None:
        server.socket = config.ssl.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    server.initialize_websockets_manager()
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    if config.parent_fd is not None:
        threading.Thread(target=_watch_parent, args=(config.parent_fd, stop), daemon=True).start()
    serving = threading.Thread(target=server.serve_forever, name="ws4py-serve", daemon=True)
    serving.start()
    announce(config, server.server_address[1], "threaded")
    try:
        while not stop.wait(0.5):  # a timeout, so that signals are handled on this thread at once
            pass
    finally:
        server.shutdown()
        server.server_close()  # every websocket closed with 1001, the manager waits for their close timeout
        serving.join(5.0)


def _watch_parent(fd: int, stop: threading.Event) -> None:
    with contextlib.suppress(OSError):
        os.read(fd, 1)  # returns (end of file) when the supervisor is gone
    stop.set()
