"""Every Autobahn case of ``tests/core`` over real sockets, against ws4py's asyncio layer.

The same cases, fuzzer and grading as ``test_autobahn_sockets.py`` (strict
``OK`` for every case, the expected close, a clean closing handshake where
one is due, a ``ConnectionFailed`` with the close code where the testee must
fail), once per frame codec, with asyncio testees instead of threaded ones:

* ``serve``: ``ws4py.asyncio.serve`` with an echo handler
  (``async for message in connection: await connection.send(message)``);
* ``callback``: the callback-style ``ws4py.async_websocket.WebSocketProtocol``
  with its ``EchoWebSocket``, on ``loop.create_server``;
* ``client``: ``ws4py.asyncio.connect`` with an echo loop (receive, then send
  back), against the fuzzing server;
* ``callbacks`` client: ``ws4py.async_websocket.connect`` with its
  ``EchoWebSocket``, against the fuzzing server (families 1-13, on the
  default loop only: the two clients share their transport, which the
  ``connect`` client's cases play on both loops and octet-wise; tests/asyncio
  runs the callbacks client on uvloop too).

The testees run on an event loop in a thread of its own (asyncio's default
loop, then uvloop), while the fuzzer plays each case from the test's thread;
the servers accept permessage-deflate (``compression="deflate"``) and the
client offers it in the deflate cases (12 and 13) only. Families 1-10 are
also played octet-wise (every octet in a TCP write of its own), on the
default loop only.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator
from typing import Any, TypeVar

import pytest
import socket_fuzzer
import test_autobahn_cases as plain_table
import test_autobahn_deflate as deflate_table
import uvloop
from autobahn import Case, problems
from socket_fuzzer import END_TIMEOUT, OPEN_TIMEOUT, Played, play_against_client, play_against_server

import ws4py.async_websocket
import ws4py.asyncio
from ws4py.async_websocket import EchoWebSocket, WebSocketProtocol
from ws4py.asyncio.endpoint import Options
from ws4py.protocol import frames

T = TypeVar("T")

PLAIN_CASES: list[Case] = plain_table.CASES
OCTET_WISE_CASES: list[Case] = plain_table.OCTET_WISE
DEFLATE_CASES: list[Case] = deflate_table.CASES

#: The testees' limits and timers: no keepalive pings in the fuzzer's way, the close bounded like the fuzzer's wait.
OPTIONS = Options(ping_interval=None, open_timeout=OPEN_TIMEOUT, close_timeout=END_TIMEOUT)


def _params(cases: Iterable[Case]) -> list:
    """The cases played by the asyncio client."""
    return [pytest.param(case, id=case.id) for case in cases]


def _server_params(cases: Iterable[Case]) -> list:
    """The cases played against each asyncio server: ``serve`` and ``callback``."""
    return [pytest.param(kind, case, id=f"{kind}-{case.id}") for kind in ("serve", "callback") for case in cases]


@pytest.fixture(params=frames.available_implementations()[:1], autouse=True)
def codec(request: pytest.FixtureRequest) -> Iterator[str]:
    """One frame codec here (``"c"`` when it is built), overriding the conftest's both.

    The codecs are the core's; ``tests/core`` and the threaded suite over
    sockets play every case with each. Here the asyncio transports are under
    test, and both codecs would double the run time.
    """
    previous = frames.implementation
    frames.use(request.param)
    try:
        yield request.param
    finally:
        frames.use(previous)


def _check(case: Case, played: Played, found: list[str], role: str) -> None:
    assert not found, _report(case, role, played, found)


def _report(case: Case, role: str, played: Played, found: list[str]) -> str:
    agreed = f"\n  agreed {played.outcome.agreed}" if played.outcome.agreed else ""
    return f"{case.id} ({role}, over TCP): {case.description}{agreed}\n  " + "\n  ".join(found)


# -- the testees, as the fuzzer's ``settle`` sees them -------------------------------------------


class AsyncTestee:
    """One asyncio connection under test, as the threaded testees are: ``protocol``, ``ended``, ``closed_with``."""

    def __init__(self, core_of: Callable[[], Any]) -> None:
        self._core_of = core_of
        self.ended = threading.Event()
        self.closed_with: tuple[int, str | None] | None = None

    @property
    def protocol(self) -> Any:
        return self._core_of()

    def end(self, code: int | None, reason: str | None) -> None:
        if code is not None:
            self.closed_with = (code, reason)
        self.ended.set()


def _register(target: str, testee: AsyncTestee) -> None:
    """Make the testee of request ``target`` the one ``play_against_server`` finds by the token of its URL."""
    query = target.partition("?")[2]
    token = dict(part.partition("=")[::2] for part in query.split("&")).get("token")
    if token:
        with socket_fuzzer._registry_cond:
            socket_fuzzer._registry[token] = testee  # type: ignore[assignment]
            socket_fuzzer._registry_cond.notify_all()


async def echo_handler(conn: ws4py.asyncio.Connection) -> None:
    """The ``serve`` testee: echo every message until the connection closes."""
    testee = AsyncTestee(lambda: conn._core)
    assert conn.request is not None
    _register(conn.request.target, testee)
    try:
        async for message in conn:
            await conn.send(message)
    except ws4py.asyncio.ConnectionClosed:
        pass
    finally:
        await conn.wait_closed()
        testee.end(conn.close_code, conn.close_reason)


class CaseCallbackEchoWebSocket(EchoWebSocket):
    """The ``callback`` testee: ws4py's callback-style echo websocket, found again by the token of its URL."""

    testee: AsyncTestee

    def opened(self) -> None:
        self.testee = AsyncTestee(lambda: self.proto._core)
        request = self.proto.request
        assert request is not None
        _register(request.target, self.testee)

    def closed(self, code: int, reason: str | None = None) -> None:
        self.testee.end(code, reason)


class AsyncEchoClient(AsyncTestee):
    """The ``client`` testee: ``ws4py.asyncio.connect`` and an echo loop, on the testees' loop.

    ``connect()`` blocks (in the fuzzer's connector thread) until the opening handshake is done.
    """

    def __init__(self, url: str, extensions: list[str] | None, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(lambda: None if self.conn is None else self.conn._core)
        self.url = url
        self.compression = "deflate" if extensions else None
        self.loop = loop
        self.conn: ws4py.asyncio.Connection | None = None

    def connect(self) -> None:
        asyncio.run_coroutine_threadsafe(self._open(), self.loop).result(2 * OPEN_TIMEOUT)

    async def _open(self) -> None:
        self.conn = await ws4py.asyncio.connect(
            self.url,
            compression=self.compression,
            ping_interval=OPTIONS.ping_interval,
            open_timeout=OPTIONS.open_timeout,
            close_timeout=OPTIONS.close_timeout,
        )
        task = self.loop.create_task(self._echo(self.conn))
        _tasks.add(task)
        task.add_done_callback(_tasks.discard)

    async def _echo(self, conn: ws4py.asyncio.Connection) -> None:
        try:
            async for message in conn:
                await conn.send(message)
        except ws4py.asyncio.ConnectionClosed:
            pass
        finally:
            await conn.wait_closed()
            self.end(conn.close_code, conn.close_reason)


_tasks: set[asyncio.Task[None]] = set()


class CaseCallbacksEchoClient(EchoWebSocket):
    """The ``callbacks`` client testee's websocket: ws4py's callback-style echo, ending its testee when closed."""

    testee: AsyncTestee

    def closed(self, code: int, reason: str | None = None) -> None:
        self.testee.end(code, reason)


class AsyncCallbacksEchoClient(AsyncTestee):
    """The ``callbacks`` client testee: ``ws4py.async_websocket.connect`` with :class:`CaseCallbacksEchoClient`."""

    def __init__(self, url: str, extensions: list[str] | None, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(lambda: None if self.ws is None else self.ws.proto.core)
        self.url = url
        self.compression = "deflate" if extensions else None
        self.loop = loop
        self.ws: CaseCallbacksEchoClient | None = None

    def connect(self) -> None:
        asyncio.run_coroutine_threadsafe(self._open(), self.loop).result(2 * OPEN_TIMEOUT)

    async def _open(self) -> None:
        # The testee is known to the websocket before any callback: a case may close at once.
        testee = self

        class Bound(CaseCallbacksEchoClient):
            def opened(self) -> None:
                self.testee = testee
                testee.ws = self

        await ws4py.async_websocket.connect(
            self.url,
            Bound,
            compression=self.compression,
            ping_interval=OPTIONS.ping_interval,
            open_timeout=OPTIONS.open_timeout,
            close_timeout=OPTIONS.close_timeout,
        )


# -- the testees' loop and servers -----------------------------------------------------------


LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
    "asyncio": asyncio.new_event_loop,
    "uvloop": uvloop.new_event_loop,
}


class AsyncTesteeLoop:
    """An event loop in a thread of its own, with the ``serve`` and ``callback`` servers on it."""

    def __init__(self, loop_name: str) -> None:
        self.loop = LOOPS[loop_name]()
        self._thread = threading.Thread(target=self._run, name=f"{loop_name} testees", daemon=True)
        self._thread.start()
        self.serve_port, self.callback_port = self.run(self._start())

    def _run(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            tasks = asyncio.all_tasks(loop)
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.wait(tasks, timeout=END_TIMEOUT))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 2 * END_TIMEOUT) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> tuple[int, int]:
        self.server = await ws4py.asyncio.serve(
            echo_handler,
            "127.0.0.1",
            0,
            ping_interval=OPTIONS.ping_interval,
            open_timeout=OPTIONS.open_timeout,
            close_timeout=OPTIONS.close_timeout,
        )
        self.protocols: list[WebSocketProtocol] = []

        def factory() -> WebSocketProtocol:
            proto = WebSocketProtocol(CaseCallbackEchoWebSocket, options=OPTIONS)
            self.protocols.append(proto)
            return proto

        self.callback_server = await self.loop.create_server(factory, "127.0.0.1", 0)
        return (
            self.server.sockets[0].getsockname()[1],
            self.callback_server.sockets[0].getsockname()[1],
        )

    async def _stop(self) -> None:
        self.server.close()
        self.callback_server.close()
        for proto in self.protocols:
            proto.abort()
        await self.server.wait_closed()
        await self.callback_server.wait_closed()

    def stop(self) -> None:
        try:
            self.run(self._stop(), 4 * END_TIMEOUT)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(2 * END_TIMEOUT)


@pytest.fixture(scope="module", params=list(LOOPS))
def testee_loop(request: pytest.FixtureRequest) -> Iterator[AsyncTesteeLoop]:
    """The testees' loop: asyncio's default one or uvloop (the octet-wise tests take only the default one)."""
    testees = AsyncTesteeLoop(request.param)
    try:
        yield testees
    finally:
        testees.stop()


def _port(testee_loop: AsyncTesteeLoop, kind: str) -> int:
    return testee_loop.serve_port if kind == "serve" else testee_loop.callback_port


def _async_client(testee_loop: AsyncTesteeLoop, kind: str = "connect") -> Callable[[str, list[str] | None], Any]:
    testee = AsyncEchoClient if kind == "connect" else AsyncCallbacksEchoClient
    return lambda url, extensions: testee(url, extensions, testee_loop.loop)


# -- the cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "case"), _server_params(PLAIN_CASES))
def test_server(kind: str, case: Case, testee_loop: AsyncTesteeLoop) -> None:
    played = play_against_server(case, _port(testee_loop, kind))
    found = played.harness + problems(case, played.outcome)
    _check(case, played, found, f"ws4py asyncio server ({kind})")


@pytest.mark.parametrize("case", _params(PLAIN_CASES))
def test_client(case: Case, fuzzing_listener: socket.socket, testee_loop: AsyncTesteeLoop) -> None:
    played = play_against_client(case, fuzzing_listener, _async_client(testee_loop))
    found = played.harness + problems(case, played.outcome)
    _check(case, played, found, "ws4py asyncio client")


@pytest.mark.parametrize("testee_loop", ["asyncio"], indirect=True)
@pytest.mark.parametrize("case", _params(PLAIN_CASES))
def test_callbacks_client(case: Case, fuzzing_listener: socket.socket, testee_loop: AsyncTesteeLoop) -> None:
    played = play_against_client(case, fuzzing_listener, _async_client(testee_loop, "callbacks"))
    found = played.harness + problems(case, played.outcome)
    _check(case, played, found, "ws4py asyncio callbacks client")


@pytest.mark.parametrize("testee_loop", ["asyncio"], indirect=True)
@pytest.mark.parametrize(("kind", "case"), _server_params(OCTET_WISE_CASES))
def test_server_octet_wise(kind: str, case: Case, testee_loop: AsyncTesteeLoop) -> None:
    played = play_against_server(case, _port(testee_loop, kind), octet_wise=True)
    found = played.harness + problems(case, played.outcome)
    _check(case, played, found, f"ws4py asyncio server ({kind}), octet-wise writes")


@pytest.mark.parametrize("testee_loop", ["asyncio"], indirect=True)
@pytest.mark.parametrize("case", _params(OCTET_WISE_CASES))
def test_client_octet_wise(case: Case, fuzzing_listener: socket.socket, testee_loop: AsyncTesteeLoop) -> None:
    played = play_against_client(case, fuzzing_listener, _async_client(testee_loop), octet_wise=True)
    found = played.harness + problems(case, played.outcome)
    _check(case, played, found, "ws4py asyncio client, octet-wise writes")


@pytest.mark.parametrize(("kind", "case"), _server_params(DEFLATE_CASES))
def test_server_deflate(kind: str, case: Case, testee_loop: AsyncTesteeLoop) -> None:
    played = play_against_server(case, _port(testee_loop, kind))
    found = played.harness + deflate_table.deflate_problems(case, played.outcome)
    _check(case, played, found, f"ws4py asyncio server ({kind})")


@pytest.mark.parametrize("case", _params(DEFLATE_CASES))
def test_client_deflate(case: Case, fuzzing_listener: socket.socket, testee_loop: AsyncTesteeLoop) -> None:
    played = play_against_client(case, fuzzing_listener, _async_client(testee_loop))
    found = played.harness + deflate_table.deflate_problems(case, played.outcome)
    _check(case, played, found, "ws4py asyncio client")


@pytest.mark.parametrize("testee_loop", ["asyncio"], indirect=True)
@pytest.mark.parametrize("case", _params(DEFLATE_CASES))
def test_callbacks_client_deflate(case: Case, fuzzing_listener: socket.socket, testee_loop: AsyncTesteeLoop) -> None:
    played = play_against_client(case, fuzzing_listener, _async_client(testee_loop, "callbacks"))
    found = played.harness + deflate_table.deflate_problems(case, played.outcome)
    _check(case, played, found, "ws4py asyncio callbacks client")
