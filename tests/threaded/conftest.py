"""Fixtures for tests/threaded: servers, clients and raw peers, and the leak check."""

from __future__ import annotations

import contextlib
import os
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme
from threaded_support import (
    WATCHED_THREADS,
    RawServer,
    RecordingClient,
    RecordingWebSocket,
    ServeFactory,
    Server,
    start_server,
)

# -- leak checks -------------------------------------------------------------


def _open_fds() -> set[tuple[int, str]]:
    """The process's open file descriptors with what they point to."""
    fds = set()
    for name in os.listdir("/proc/self/fd"):
        # OSError: the descriptor listdir itself used, closed by now.
        with contextlib.suppress(OSError):
            fds.add((int(name), os.readlink(f"/proc/self/fd/{name}")))
    return fds


@pytest.fixture(autouse=True)
def no_leaked_threads_or_sockets() -> Iterator[None]:
    """No WebSocketManager/WebSocketClient thread and no file descriptor outlives a test."""
    fds_before = _open_fds()
    # Threads of session fixtures elsewhere in the run (tests/autobahn_sockets) are not this test's.
    threads_before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 3.0
    new_threads = [t for t in threading.enumerate() if t.name in WATCHED_THREADS and t not in threads_before]
    for thread in new_threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    leaked = [t.name for t in new_threads if t.is_alive()]
    assert not leaked, f"threads outlived the test: {leaked}"
    gone = threading.Event()
    while True:
        extra = _open_fds() - fds_before
        if not extra or time.monotonic() >= deadline:
            break
        gone.wait(0.01)
    assert not extra, f"file descriptors outlived the test: {sorted(extra)}"


@pytest.fixture
def serve() -> Iterator[ServeFactory]:
    """Start servers: ``serve(handler_cls, protocols=, extensions=, poller=, ssl_context=, host=, busy_poll=)``."""
    servers: list[Server] = []

    def start(*args: Any, **kwargs: Any) -> Server:
        server = start_server(*args, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def server(serve: ServeFactory) -> Server:
    """A server whose websockets are :class:`RecordingWebSocket`."""
    return serve()


@pytest.fixture
def connect(server: Server) -> Iterator[Callable[..., tuple[RecordingClient, RecordingWebSocket]]]:
    """Open ws4py client connections to ``server``: returns ``(client, server-side websocket)``."""
    clients: list[RecordingClient] = []

    def open_client(path: str = "/", client_cls: type[RecordingClient] = RecordingClient, **kwargs: Any) -> Any:
        client = client_cls(server.url(path), **kwargs)
        client.connect()
        clients.append(client)
        client.wait_opened()
        return client, server.accept()

    yield open_client
    for client in clients:
        client.close()
    for client in clients:
        client.wait_closed()


@pytest.fixture
def raw_server() -> Iterator[RawServer]:
    peer = RawServer()
    try:
        yield peer
        peer.join()
    finally:
        peer.close()


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    """A server's TLS context with a certificate for 127.0.0.1 and localhost, issued by ``tls_ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context
