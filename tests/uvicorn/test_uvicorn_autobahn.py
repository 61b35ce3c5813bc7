"""The Autobahn-style case families of ``tests/core`` over real sockets, through uvicorn and ws4py's protocol.

The very cases, fuzzer and strict grading of ``tests/autobahn_sockets``
(:func:`socket_fuzzer.play_against_server`), with uvicorn as the server
(``ws="ws4py.server.uvicorn:WebSocketProtocol"``, h11, the default loop,
permessage-deflate on as uvicorn's default, no keepalive pings in the
fuzzer's way) serving a plain ASGI echo app: every ``websocket.receive`` is
sent back as it came (text as text, bytes as bytes) until the
``websocket.disconnect``, whose code must be the close code the core ended
with. One test per family, playing its cases in turn; the deflate families
12 and 13 too. With the default frame codec only (the codecs are the
core's, played both ways in ``tests/autobahn_sockets``). Every case of every
family is played (about 12 s in all); the octet-wise replays are left to
``tests/autobahn_sockets`` (uvicorn hands the connection over before the
first frame, so they would exercise only the core again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
import test_autobahn_cases as plain_table
import test_autobahn_deflate as deflate_table
from autobahn import Case, Outcome, problems
from socket_fuzzer import play_against_server
from test_asyncio_cases import AsyncTestee, _register
from uvicorn_support import Running, nothing_left, serving

from ws4py.server.uvicorn import WebSocketProtocol


def _families(cases: Iterable[Case]) -> dict[str, list[Case]]:
    families: dict[str, list[Case]] = {}
    for case in cases:
        families.setdefault(case.id.split(".")[0], []).append(case)
    return families


PLAIN = _families(plain_table.CASES)
DEFLATE = _families(deflate_table.CASES)


async def case_echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A plain ASGI echo app; it tells the fuzzer which connection it is and how it ended.

    The fuzzer grades the core's final state: the app finds it through ``receive``, the
    bound ``asgi_receive`` of the protocol uvicorn made for this connection.
    """
    protocol = receive.__self__
    assert isinstance(protocol, WebSocketProtocol)
    testee = AsyncTestee(lambda: protocol.core)
    _register(scope["raw_path"].decode() + "?" + scope["query_string"].decode(), testee)
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            break
        try:
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
        except OSError:
            pass  # the client closed meanwhile (spec 2.4): its disconnect comes next
    # settle() checks this code against the core's: the ASGI disconnect must carry the real one.
    testee.end(message["code"], message.get("reason"))


@pytest.fixture(scope="module")
def uvicorn_server() -> Iterator[Running]:
    with serving(case_echo_app, ws_ping_interval=None, ws_per_message_deflate=True) as running:
        yield running
        nothing_left(running)  # every case's connection and app task is gone


def _play(cases: list[Case], port: int, grade: Callable[[Case, Outcome], list[str]]) -> None:
    failures = []
    for case in cases:
        played = play_against_server(case, port)
        found = played.harness + grade(case, played.outcome)
        if found:
            failures.append(f"{case.id}: {case.description}\n  " + "\n  ".join(found))
    assert not failures, f"{len(failures)} of {len(cases)} cases failed through uvicorn:\n" + "\n".join(failures)


@pytest.mark.parametrize("family", sorted(PLAIN, key=int))
def test_family_through_uvicorn(family: str, uvicorn_server: Running) -> None:
    _play(PLAIN[family], uvicorn_server.port, problems)


@pytest.mark.parametrize("family", sorted(DEFLATE, key=int))
def test_deflate_family_through_uvicorn(family: str, uvicorn_server: Running) -> None:
    _play(DEFLATE[family], uvicorn_server.port, deflate_table.deflate_problems)
