"""Fixtures of the fault tests: file descriptor limit, servers torn down, errors collected."""

from __future__ import annotations

import logging
import resource
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from faultkit import ErrorLog, Server

from ws4py.websocket import WebSocket

# Some tests hold thousands of sockets (both ends of each connection live in this process).
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if _hard == resource.RLIM_INFINITY or _soft < _hard:
    resource.setrlimit(resource.RLIMIT_NOFILE, (_hard, _hard))
NOFILE_LIMIT = resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def need_fds(count: int) -> None:
    """Skip the test when this process may not open ``count`` more descriptors."""
    if NOFILE_LIMIT != resource.RLIM_INFINITY and count + 256 > NOFILE_LIMIT:
        pytest.skip(f"needs about {count + 256} file descriptors, the hard RLIMIT_NOFILE is {NOFILE_LIMIT}")


@pytest.fixture
def fds() -> Callable[[int], None]:
    return need_fds


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    """Start ws4py's wsgiref server(s); each is shut down and closed after the test."""
    servers: list[Server] = []

    def start(handler_cls: type[WebSocket], handshake_timeout: float | None = None) -> Server:
        server = Server(handler_cls, handshake_timeout)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def ws4py_errors() -> Iterator[ErrorLog]:
    """ERROR records of the ``ws4py`` logger during the test."""
    handler = ErrorLog()
    logger = logging.getLogger("ws4py")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def thread_errors() -> Iterator[list[str]]:
    """Exceptions that escaped any thread during the test."""
    errors: list[str] = []
    previous = threading.excepthook

    def hook(args: Any) -> None:
        errors.append(f"{args.thread.name if args.thread else '?'}: {args.exc_type.__name__}: {args.exc_value}")
        previous(args)

    threading.excepthook = hook
    try:
        yield errors
    finally:
        threading.excepthook = previous
