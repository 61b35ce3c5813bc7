"""permessage-deflate with its parameters imposed by the peer: windows below 15 bits, no context takeover.

Each exchange is a run of compressible messages whose repeats lie 3000 bytes
apart (beyond any window under 12 bits) and repeat from one message to the next (a
context kept across messages would use them): a side that compresses beyond
its agreed window or keeps a context it agreed to drop sends data the other
side cannot inflate.

* ws4py's server, offered the parameters by ``websockets``' client and Node's ``ws`` client;
* ws4py's client (which offers the defaults), answered with the parameters by
  ``websockets``' server and Node's ``ws`` server.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import Any

import pytest
from interop_peers import (
    TIMEOUT,
    NodeClient,
    RecordingClient,
    Server,
    WebsocketsClient,
    start_node_server,
    start_websockets_sync,
)
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory

_paths = itertools.count(1)

# (id, parameters): RFC 7692's names, the value None for a flag.
PARAMETERS: list[tuple[str, dict[str, Any]]] = [
    ("windows-9-and-10", {"server_max_window_bits": 10, "client_max_window_bits": 9}),
    ("no-context-takeover", {"server_no_context_takeover": True, "client_no_context_takeover": True}),
    (
        "all",
        {
            "server_no_context_takeover": True,
            "client_no_context_takeover": True,
            "server_max_window_bits": 9,
            "client_max_window_bits": 11,
        },
    ),
]


def _messages() -> list[str | bytes]:
    rng = random.Random(7692)
    block = "".join(rng.choice("abcdefghij ") for _ in range(3000))
    out: list[str | bytes] = []
    for i in range(24):
        size = (300, 5_000, 40_000)[i % 3]
        text = (block * (size // 3000 + 1))[:size]
        out.append(text if i % 2 else text.encode())
    return out


def _node_options(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "threshold": 0,
        "serverNoContextTakeover": params.get("server_no_context_takeover", False),
        "clientNoContextTakeover": params.get("client_no_context_takeover", False),
        **({"serverMaxWindowBits": params["server_max_window_bits"]} if "server_max_window_bits" in params else {}),
        **({"clientMaxWindowBits": params["client_max_window_bits"]} if "client_max_window_bits" in params else {}),
    }


def _agreed(header: str | None) -> dict[str, str | None]:
    assert header is not None and header.split(";")[0].strip() == "permessage-deflate", header
    params = {}
    for part in header.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        params[name] = value or None
    return params


def _expect(params: dict[str, Any], agreed: dict[str, str | None]) -> None:
    for name, value in params.items():
        assert name in agreed, (name, agreed)
        if value is not True:
            assert agreed[name] == str(value), (name, agreed)


@pytest.mark.parametrize("peer", ["websockets", "node-ws"])
@pytest.mark.parametrize(("name", "params"), PARAMETERS, ids=[name for name, _ in PARAMETERS])
def test_ws4py_server(
    name: str, params: dict[str, Any], peer: str, ws4py_server: Server, request: pytest.FixtureRequest
) -> None:
    url = ws4py_server.url(f"/deflate-params/{name}/{next(_paths)}")
    if peer == "websockets":
        factory = ClientPerMessageDeflateFactory(
            server_no_context_takeover=params.get("server_no_context_takeover", False),
            client_no_context_takeover=params.get("client_no_context_takeover", False),
            server_max_window_bits=params.get("server_max_window_bits"),
            client_max_window_bits=params.get("client_max_window_bits", True),
        )
        client: Any = WebsocketsClient(url, extensions=[factory])
    else:
        client = NodeClient(url, request.getfixturevalue("node"), deflate=_node_options(params))
    try:
        _expect(params, _agreed(client.extensions_header))
        messages = _messages()
        for message in messages:
            client.send(message)
        assert [client.recv() for _ in messages] == messages
    finally:
        client.shutdown()


@pytest.fixture(scope="module", params=["websockets", "node-ws"])
def params_server_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=PARAMETERS, ids=[name for name, _ in PARAMETERS])
def params_server(params_server_kind: str, request: pytest.FixtureRequest) -> Iterator[tuple[Server, dict]]:
    params = request.param[1]
    if params_server_kind == "websockets":
        factory = ServerPerMessageDeflateFactory(
            server_no_context_takeover=params.get("server_no_context_takeover", False),
            client_no_context_takeover=params.get("client_no_context_takeover", False),
            server_max_window_bits=params.get("server_max_window_bits"),
            client_max_window_bits=params.get("client_max_window_bits"),
        )
        server = start_websockets_sync(True, extensions=[factory])
    else:
        server = start_node_server(request.getfixturevalue("node"), _node_options(params))
    try:
        yield server, params
    finally:
        server.stop()


def test_ws4py_client(params_server: tuple[Server, dict]) -> None:
    server, params = params_server
    client = RecordingClient(server.url(f"/deflate-params/{next(_paths)}"), extensions=["permessage-deflate"])
    client.connect()
    try:
        assert client.extensions == ["permessage-deflate"]
        assert client.handshake is not None
        _expect(params, _agreed(client.handshake.response.headers.get("Sec-WebSocket-Extensions")))
        messages = _messages()
        for message in messages:
            client.send(message, binary=isinstance(message, bytes))
        received = [client.next_message() for _ in messages]
        assert [m.data if m.is_binary else str(m) for m in received] == messages
    finally:
        client.close()
        client.ended.wait(TIMEOUT)
