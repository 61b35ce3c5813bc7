"""An app that breaks the ASGI WebSocket spec gets an exception in ``send``, never a hang,
and the client gets 500 (before the accept) or a close with 1011 (after): one scenario each."""

from __future__ import annotations

import logging
import os
import socket
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from uvicorn_support import Record, Running, http_exchange, run, serving

from ws4py.asyncio import ConnectionClosed, connect

ACCEPT = {"type": "websocket.accept"}
Steps = list[dict[str, Any]]

#: name: (the messages the app sends, the exception the last one raises or None, what the client sees).
SCENARIOS: dict[str, tuple[Steps, type[BaseException] | None, int]] = {
    "send with text and bytes": ([ACCEPT, {"type": "websocket.send", "text": "a", "bytes": b"b"}], RuntimeError, 1011),
    "send with neither": ([ACCEPT, {"type": "websocket.send"}], RuntimeError, 1011),
    "text that is not str": ([ACCEPT, {"type": "websocket.send", "text": b"a"}], TypeError, 1011),
    "bytes that are not bytes": ([ACCEPT, {"type": "websocket.send", "bytes": "a"}], TypeError, 1011),
    "an http message after the accept": ([ACCEPT, {"type": "websocket.http.response.start"}], RuntimeError, 1011),
    "a close code that may not be sent": ([ACCEPT, {"type": "websocket.close", "code": 1005}], ValueError, 1011),
    "send after its own close": (
        [ACCEPT, {"type": "websocket.close", "code": 4000}, {"type": "websocket.send", "text": "a"}],
        RuntimeError,
        4000,
    ),
    "a body before the response start": ([{"type": "websocket.http.response.body", "body": b""}], RuntimeError, 500),
    "an accept in the middle of a denial": (
        [{"type": "websocket.http.response.start", "status": 403}, ACCEPT],
        RuntimeError,
        500,
    ),
    "a denial status out of range": ([{"type": "websocket.http.response.start", "status": 99}], ValueError, 500),
    "a subprotocol the client did not offer": ([{**ACCEPT, "subprotocol": "nope"}], RuntimeError, 500),
    "a handshake field among the accept headers": (
        [{**ACCEPT, "headers": [(b"sec-websocket-protocol", b"chat")]}],
        ValueError,
        500,
    ),
    "a header that injects another": ([{**ACCEPT, "headers": [(b"x-a", b"1\r\nx-b: 2")]}], ValueError, 500),
    "returning without an answer": ([], None, 500),
    "returning a value after the accept": ([ACCEPT], None, 1000),
}


def misbehaving_app(record: Record) -> Callable[..., Awaitable[None]]:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> Any:
        assert (await receive())["type"] == "websocket.connect"
        steps, _, _ = SCENARIOS[scope["query_string"].decode().replace("+", " ")]
        try:
            for message in steps:
                await send(message)
        except Exception as exc:
            record.put(exc)
            raise
        record.put(None)
        return 42 if steps else None

    return app


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Running, Record]]:
    record = Record()
    with serving(misbehaving_app(record)) as running:
        yield running, record


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_app_breaking_the_spec_gets_an_error_and_the_client_an_answer(
    server: tuple[Running, Record], name: str
) -> None:
    running, record = server
    record.clear()
    _, raised, seen = SCENARIOS[name]
    path = "/?" + name.replace(" ", "+")
    if seen >= 1000:

        async def client() -> int | None:
            async with connect(running.url(path)) as conn:
                try:
                    await conn.recv()
                except ConnectionClosed as exc:
                    return exc.code
            return None

        assert run(client()) == seen
    else:
        response, _ = http_exchange(running.port, path)
        assert response.status == seen
    (exc,) = record.get()
    assert type(exc) is (raised or type(None)), exc


def test_over_a_unix_socket_the_scope_names_its_path_and_the_answers_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    record = Record()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "uvicorn.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        scopes: list[dict[str, Any]] = []

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            scopes.append(scope)
            await receive()
            await send(ACCEPT)
            await send({"type": "websocket.close"})
            record.put("closed")

        with serving(app, sockets=[sock]) as running:
            caplog.set_level(logging.INFO, logger="uvicorn.error")  # after uvicorn set its log level

            async def client() -> int | None:
                async with connect(running.url("/unix?q=1"), unix=path) as conn:
                    await conn.wait_closed()
                    return conn.close_code

            assert run(client()) == 1000
            assert record.get() == ("closed",)
    (scope,) = scopes
    assert scope["server"] == (path, None) and scope["client"] is None
    assert '"WebSocket /unix?q=1" [accepted]' in caplog.text
