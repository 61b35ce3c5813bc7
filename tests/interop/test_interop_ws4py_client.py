"""ws4py's threaded client (``WebSocketClient``) with other servers.

Servers: ``websockets``' sync server (``serve`` in a thread), its asyncio
server (in a thread's event loop) and Node's ``ws``, each with and without
permessage-deflate; ws4py's client offers it in the ``deflate`` runs
(``extensions=['permessage-deflate']``) and not otherwise.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import pytest
from interop_peers import FRAGMENTS, TIMEOUT, RecordingClient, Server, WireTap

_paths = itertools.count(1)

Connect = Callable[..., tuple[RecordingClient, str]]


@pytest.fixture
def connect(peer_server: Server, compression: bool) -> Iterator[Connect]:
    """``connect(port=None)``: a connected ws4py client and the request path it used (unique)."""
    clients: list[RecordingClient] = []

    def make(port: int | None = None) -> tuple[RecordingClient, str]:
        path = f"/ws4py-client/{next(_paths)}"
        client = RecordingClient(
            f"ws://127.0.0.1:{port or peer_server.port}{path}",
            extensions=["permessage-deflate"] if compression else None,
        )
        client.connect()
        clients.append(client)
        return client, path

    yield make
    for client in clients:
        if not client.terminated:
            client.close()
        client.ended.wait(TIMEOUT)


TEXT = "Hello from ws4py! ünïcödé ✓ 🐍"
BINARY = bytes(range(256))


def test_text(connect: Connect) -> None:
    client, _ = connect()
    client.send(TEXT)
    message = client.next_message()
    assert message.is_text and str(message) == TEXT


def test_binary(connect: Connect) -> None:
    client, _ = connect()
    client.send(BINARY, binary=True)
    message = client.next_message()
    assert message.is_binary and message.data == BINARY


def test_empty_messages(connect: Connect) -> None:
    client, _ = connect()
    client.send("")
    client.send(b"", binary=True)
    text, binary = client.next_message(), client.next_message()
    assert text.is_text and str(text) == ""
    assert binary.is_binary and binary.data == b""


def test_64_kib(connect: Connect) -> None:
    client, _ = connect()
    text = ("ws4py ✓ " * 8192)[: 64 * 1024]
    data = os.urandom(64 * 1024)
    client.send(text)
    client.send(data, binary=True)
    assert str(client.next_message()) == text
    assert client.next_message().data == data


def test_fragmented_from_the_client(connect: Connect) -> None:
    client, _ = connect()
    client.send(iter(["frag", "men", "ted ✓"]))
    message = client.next_message()
    assert message.is_text and str(message) == "fragmented ✓"
    client.send(iter([b"\x00\x01", b"", b"\xff" * 300]), binary=True)
    message = client.next_message()
    assert message.is_binary and message.data == b"\x00\x01" + b"\xff" * 300


def test_fragmented_from_the_server(connect: Connect) -> None:
    client, _ = connect()
    client.send("cmd:fragments")
    assert str(client.next_message()) == "".join(FRAGMENTS)


def test_client_ping(connect: Connect) -> None:
    client, _ = connect()
    client.ping(b"are you there?")
    assert client.next_pong() == b"are you there?"


def test_server_ping(connect: Connect) -> None:
    client, _ = connect()
    client.send("cmd:ping:hello from the server")
    assert str(client.next_message()) == "ponged:hello from the server"


def test_close_from_the_client(connect: Connect, peer_server: Server) -> None:
    client, path = connect()
    client.send("before the close")
    assert str(client.next_message()) == "before the close"
    client.close(4001, "client says bye ✓")
    assert client.wait_closed()[0] == 4001  # the server's echo of the code
    assert peer_server.journal.wait(path, "close") == (4001, "client says bye ✓")


def test_close_from_the_server(connect: Connect) -> None:
    client, _ = connect()
    client.send("cmd:close:4002:server says bye")
    assert client.wait_closed() == (4002, "server says bye")


def test_permessage_deflate_on_the_wire(connect: Connect, peer_server: Server, compression: bool) -> None:
    tap = WireTap(peer_server.port)
    client, path = connect(tap.port)
    text = "compress me, please " * 3277  # 65540 bytes that deflate well
    client.send(text)
    assert str(client.next_message()) == text
    client.close()
    client.wait_closed()
    tap.wait()
    header = WireTap.head(tap.downstream).get("sec-websocket-extensions")
    sent = [f for f in WireTap.frames(tap.upstream) if f.opcode in (1, 2)]
    echoed = [f for f in WireTap.frames(tap.downstream) if f.opcode in (1, 2)]
    assert len(sent) == len(echoed) == 1, (sent, echoed)
    if compression:
        assert header is not None and header.split(";")[0].strip() == "permessage-deflate", header
        assert client.extensions == ["permessage-deflate"]
        assert peer_server.journal.wait(path, "open") == ["permessage-deflate"]
        assert sent[0].rsv1 and sent[0].length < len(text) // 10, sent
        assert echoed[0].rsv1 and echoed[0].length < len(text) // 10, echoed
    else:
        assert header is None
        assert client.extensions == []
        assert "sec-websocket-extensions" not in WireTap.head(tap.upstream)
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
        client.send(message, binary=isinstance(message, bytes))
    received = [client.next_message() for _ in messages]
    assert [m.data if m.is_binary else str(m) for m in received] == messages
