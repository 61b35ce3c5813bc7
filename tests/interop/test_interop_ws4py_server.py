"""ws4py's threaded server (wsgiref + manager, echo websocket, permessage-deflate accepted) with other clients.

Clients: ``websockets``' sync client (with and without permessage-deflate),
``websocket-client`` (no permessage-deflate) and Node's ``ws`` (with
``perMessageDeflate: true``). Each exchange runs with each of them.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from interop_peers import (
    FRAGMENTS,
    NodeClient,
    Server,
    WebSocketClientLib,
    WebsocketsClient,
    WebsocketsPlainClient,
    WireTap,
)

CLIENTS: dict[str, Any] = {
    "websockets": WebsocketsClient,
    "websockets-no-deflate": WebsocketsPlainClient,
    "websocket-client": WebSocketClientLib,
    "node-ws": NodeClient,
}
DEFLATE_CLIENTS = {"websockets", "node-ws"}
_paths = itertools.count(1)

Connect = Callable[..., tuple[Any, str]]


@pytest.fixture(params=list(CLIENTS))
def client_name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def connect(client_name: str, ws4py_server: Server, request: pytest.FixtureRequest) -> Iterator[Connect]:
    """``connect(port=None)``: a client of the kind under test and the request path it used (unique)."""
    factory = CLIENTS[client_name]
    if client_name == "node-ws":
        node = request.getfixturevalue("node")
        factory = lambda url: NodeClient(url, node)  # noqa: E731
    clients: list[Any] = []

    def make(port: int | None = None) -> tuple[Any, str]:
        path = f"/{client_name}/{next(_paths)}"
        client = factory(f"ws://127.0.0.1:{port or ws4py_server.port}{path}")
        clients.append(client)
        return client, path

    yield make
    for client in clients:
        client.shutdown()


TEXT = "Hello, ws4py! ünïcödé ✓ 🐍"
BINARY = bytes(range(256))


def test_text(connect: Connect) -> None:
    client, _ = connect()
    client.send(TEXT)
    assert client.recv() == TEXT


def test_binary(connect: Connect) -> None:
    client, _ = connect()
    client.send(BINARY)
    assert client.recv() == BINARY


def test_empty_messages(connect: Connect) -> None:
    client, _ = connect()
    client.send("")
    assert client.recv() == ""
    client.send(b"")
    assert client.recv() == b""


def test_64_kib(connect: Connect) -> None:
    client, _ = connect()
    text = ("ws4py ✓ " * 8192)[: 64 * 1024]
    data = os.urandom(64 * 1024)
    client.send(text)
    client.send(data)
    assert client.recv() == text
    assert client.recv() == data


def test_fragmented_from_the_client(connect: Connect) -> None:
    client, _ = connect()
    client.send_fragments(["frag", "men", "ted ✓"])
    assert client.recv() == "fragmented ✓"
    client.send_fragments([b"\x00\x01", b"", b"\xff" * 300])
    assert client.recv() == b"\x00\x01" + b"\xff" * 300


def test_fragmented_from_the_server(connect: Connect) -> None:
    client, _ = connect()
    client.send("cmd:fragments")
    assert client.recv() == "".join(FRAGMENTS)


def test_client_ping(connect: Connect) -> None:
    client, _ = connect()
    assert client.ping(b"are you there?") == b"are you there?"
    client.send("still open")
    assert client.recv() == "still open"


def test_server_ping(connect: Connect) -> None:
    client, _ = connect()
    client.send("cmd:ping:hello from ws4py")
    assert client.recv() == "ponged:hello from ws4py"


def test_close_from_the_client(connect: Connect, ws4py_server: Server) -> None:
    client, path = connect()
    client.send("before the close")
    assert client.recv() == "before the close"
    client.close(4001, "client says bye ✓")
    assert ws4py_server.journal.wait(path, "close") == (4001, "client says bye ✓")


def test_close_from_the_server(connect: Connect, ws4py_server: Server) -> None:
    client, path = connect()
    client.send("cmd:close:4002:server says bye")
    assert client.closed_by_server() == (4002, "server says bye")
    ws4py_server.journal.wait(path, "close")  # the server saw the end of it


def test_permessage_deflate_on_the_wire(connect: Connect, client_name: str, ws4py_server: Server) -> None:
    tap = WireTap(ws4py_server.port)
    client, path = connect(tap.port)
    text = "compress me, please " * 3277  # 65540 bytes that deflate well
    client.send(text)
    assert client.recv() == text
    client.shutdown()
    tap.wait()
    header = WireTap.head(tap.downstream).get("sec-websocket-extensions")
    sent = [f for f in WireTap.frames(tap.upstream) if f.opcode in (1, 2)]
    echoed = [f for f in WireTap.frames(tap.downstream) if f.opcode in (1, 2)]
    assert len(sent) == len(echoed) == 1, (sent, echoed)
    assert client.extensions_header == header
    if client_name in DEFLATE_CLIENTS:
        assert header is not None and header.split(";")[0].strip() == "permessage-deflate", header
        assert ws4py_server.journal.wait(path, "open") == ["permessage-deflate"]
        assert sent[0].rsv1 and sent[0].length < len(text) // 10, sent
        assert echoed[0].rsv1 and echoed[0].length < len(text) // 10, echoed
    else:
        assert header is None
        assert ws4py_server.journal.wait(path, "open") == []
        assert not sent[0].rsv1 and sent[0].length == len(text)
        assert not echoed[0].rsv1 and echoed[0].length == len(text)


def test_many_messages_in_a_row(connect: Connect) -> None:
    """Messages one after the other without waiting: order, and the deflate context across them."""
    client, _ = connect()
    messages: list[str | bytes] = [
        f"message {i}: " + "lorem ipsum ✓ " * (i * 37 % 500) if i % 3 else b"\x00\xfe" * (i * 53 % 3000)
        for i in range(60)
    ]
    for message in messages:
        client.send(message)
    assert [client.recv() for _ in messages] == messages
