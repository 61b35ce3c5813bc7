"""A real uvicorn server in a thread of the test process, and small real clients for it.

:func:`serving` runs ``uvicorn.Server`` on its own event loop in a thread, on a socket bound
beforehand to 127.0.0.1 (no port race), and stops it through uvicorn's own graceful shutdown;
:meth:`Running.call` runs a function on the server's loop (to look at its connections).
Every wait is bounded: a hang becomes a failure within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uvicorn
import uvloop

from ws4py.protocol import ClientHandshake, Connection, Event, Response
from ws4py.protocol.http11 import HeadReader

T = TypeVar("T")

#: uvicorn's `ws` setting for ws4py.
WS4PY = "ws4py.server.uvicorn:WebSocketProtocol"
#: uvicorn's WebSocket implementations whose behaviour the spec defines alike.
IMPLEMENTATIONS = {"ws4py": WS4PY, "websockets-sansio": "websockets-sansio", "wsproto": "wsproto"}
TIMEOUT = 10.0


def run(coro: Awaitable[T], timeout: float = TIMEOUT) -> T:
    """Run a client coroutine on a fresh loop of the test's thread, bounded."""

    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


@dataclass
class Record:
    """What the served apps report (from the server's thread), read by the test with a bound."""

    events: queue.Queue[tuple[Any, ...]] = field(default_factory=queue.Queue)

    def put(self, *event: Any) -> None:
        self.events.put(event)

    def get(self, timeout: float = TIMEOUT) -> tuple[Any, ...]:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the app reported nothing within {timeout}s") from None

    def empty(self) -> bool:
        return self.events.empty()

    def clear(self) -> None:
        """Forget what is left (by a test that failed before reading it all)."""
        while not self.events.empty():
            self.events.get_nowait()


@dataclass
class Running:
    server: uvicorn.Server
    port: int
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop

    def url(self, path: str = "/") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def call(self, fn: Callable[[], T], timeout: float = 5.0) -> T:
        """``fn()`` on the server's loop (its connections are not thread-safe)."""

        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(timeout)

    def ws_connections(self) -> list[Any]:
        """The WebSocket protocols the server tracks (uvicorn's server_state.connections)."""
        from ws4py.server.uvicorn import WebSocketProtocol

        return self.call(lambda: [c for c in self.server.server_state.connections if isinstance(c, WebSocketProtocol)])


@contextlib.contextmanager
def serving(
    app: Any,
    *,
    ws: str = WS4PY,
    http: str = "h11",
    loop: str = "asyncio",
    sockets: list[socket.socket] | None = None,
    **settings: Any,
) -> Iterator[Running]:
    """uvicorn serving ``app`` with ``ws`` in a thread; shut down gracefully on exit.

    On a socket bound to 127.0.0.1 here, or on the bound ``sockets`` given (a Unix socket).
    """
    if sockets is None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sockets = [sock]
    sock = sockets[0]
    settings.setdefault("lifespan", "off")
    config = uvicorn.Config(app, ws=ws, http=http, log_config=None, log_level="warning", **settings)
    server = uvicorn.Server(config)
    loops: queue.Queue[asyncio.AbstractEventLoop] = queue.Queue()
    # What reached the server loop's exception handler: an unretrieved task exception, an error
    # in a callback. None is expected.
    loop_errors: list[dict[str, Any]] = []

    async def main() -> None:
        server_loop = asyncio.get_running_loop()
        server_loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
        loops.put(server_loop)
        await server.serve(sockets=sockets)

    def target() -> None:
        if loop == "uvloop":
            uvloop.run(main())
        else:
            asyncio.run(main())

    thread = threading.Thread(target=target, name=f"uvicorn-{ws}", daemon=True)
    thread.start()
    server_loop = loops.get(timeout=TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while not server.started:
        assert thread.is_alive(), "uvicorn failed to start"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.005)
    try:
        port = sock.getsockname()[1] if sock.family == socket.AF_INET else 80
        yield Running(server, port, thread, server_loop)
    finally:
        server.should_exit = True
        thread.join(TIMEOUT + 5)
        sock.close()
        assert not thread.is_alive(), "uvicorn's shutdown did not finish"
        assert not loop_errors, f"errors on the server's loop: {loop_errors}"


def wait_until(running: Running, predicate: Callable[[], Any], what: str) -> None:
    """Poll ``predicate()`` on the server's loop until true, at most TIMEOUT seconds."""

    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    try:
        asyncio.run_coroutine_threadsafe(asyncio.wait_for(poll(), TIMEOUT), running.loop).result(TIMEOUT + 1)
    except TimeoutError:
        raise AssertionError(f"not within {TIMEOUT}s: {what}") from None


def nothing_left(running: Running) -> None:
    """Wait (bounded) until uvicorn tracks no connection and no task: every connection is over."""
    state = running.server.server_state
    wait_until(running, lambda: not state.connections and not state.tasks, "no connection or task left")


def unmeasured_env() -> dict[str, str]:
    """This environment without coverage's variables: under ``coverage run``, a server started in
    a process of its own with it is not traced (the same code is measured in the other tests)."""
    return {k: v for k, v in os.environ.items() if k not in ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")}


# -- a raw client: the core's client handshake and frames on a plain socket ------------------


class RawClient:
    """A WebSocket client on a blocking socket that does only what the test says (no pongs, no echo)."""

    def __init__(self, port: int, path: str = "/", *, rcvbuf: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(("127.0.0.1", port))
        handshake = ClientHandshake("127.0.0.1", path, port=port)
        self.sock.sendall(handshake.request_bytes())
        while (response := handshake.receive_data(self._recv())) is None:
            pass
        self.response: Response = response
        self.core: Connection = handshake.connection(max_message_size=None)
        self.pending: list[Event] = list(self.core.receive_data(handshake.leftover)) if handshake.leftover else []

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise AssertionError("the server closed the connection")
        return data

    def send(self, frame: bytes) -> None:
        self.sock.sendall(frame)

    def next_event(self, kinds: tuple[type, ...]) -> Event:
        """The next event of one of ``kinds`` (others are dropped), reading as needed, within TIMEOUT."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            while self.pending:
                event = self.pending.pop(0)
                if isinstance(event, kinds):
                    return event
            assert time.monotonic() < deadline, f"no {kinds} within {TIMEOUT}s"
            self.pending.extend(self.core.receive_data(self._recv()))

    def close(self) -> None:
        self.sock.close()


def http_exchange(port: int, path: str = "/", headers: list[tuple[str, str]] | None = None) -> tuple[Response, bytes]:
    """Send a WebSocket upgrade request; the response that is not a 101 and its whole body."""
    handshake = ClientHandshake("127.0.0.1", path, port=port, headers=headers or [])
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(handshake.request_bytes())
        reader = HeadReader(is_request=False)
        head = None
        while head is None:
            data = sock.recv(65536)
            assert data, "the server closed without a response"
            head = reader.feed(data)
        assert isinstance(head, Response)
        body = reader.leftover
        # Without Content-Length the body ends with the connection (each denial says Connection: close).
        length = head.headers.get("Content-Length")
        while length is None or len(body) < int(length):
            data = sock.recv(65536)
            if not data:
                break
            body += data
        if (head.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            body = _dechunk(body)
        return head, body


def _dechunk(data: bytes) -> bytes:
    """A chunked body (RFC 9112 7.1), whole, without extensions or trailers."""
    body = b""
    while True:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            return body
        body += data[:size]
        data = data[size + 2 :]
