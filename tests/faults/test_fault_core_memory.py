"""Issue 20, items 1 and 2: what a hostile peer's frames make a server commit, measured.

Each server (threaded, ``ws4py.asyncio``, the callbacks API) runs alone in a
subprocess, so its resident memory (``VmRSS``) is its own; raw clients in
this process do exactly what an attacker would, over 127.0.0.1:

* A frame header is not a promise: several connections each send the
  14-byte header of a frame claiming 16 MiB (within the default
  ``max_message_size``) and nothing more. The server must not commit 16 MiB
  each: its memory grows with the bytes that arrived.
* Fragments cost their bytes: connections each send the first fragment of
  a message and then a flood of empty continuation frames. The server's
  memory stays flat however many arrive.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from faultkit import RawClient
from memory_peers import Limits, ServerProcess, running

from ws4py.protocol import BinaryReceived, PongReceived, frames

MIB = 2**20
KEY = b"\x5a\xa5\x3c\xc3"
KINDS = ["threaded", "asyncio", "callbacks"]


@pytest.fixture(params=KINDS)
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    """An echo server of that kind in a subprocess (``memory_peers``), at the default message limit."""
    with running(request.param, "echo", Limits(max_message_size=16 * MIB)) as process:
        yield process


def echo_round_trip(port: int, payload: bytes = b"probe") -> None:
    """An echo on a connection of its own: the server's loop is past what was sent before it."""
    client = RawClient(port)
    try:
        client.send_binary(payload)
        assert client.events(1, timeout=20) == [BinaryReceived(payload)]
    finally:
        client.close()


def frame(first_byte: int, payload: bytes = b"") -> bytes:
    """A masked frame, as a client sends it."""
    return frames.build_frame(first_byte, payload, KEY)


def settled_rss(server: ServerProcess, seconds: float = 0.3) -> int:
    """The server's largest resident memory over ``seconds`` (what it commits may take a moment)."""
    deadline = time.monotonic() + seconds
    largest = server.status()["VmRSS"]
    while time.monotonic() < deadline:
        time.sleep(0.02)
        largest = max(largest, server.status()["VmRSS"])
    return largest


def test_headers_claiming_16_mib_each_do_not_make_the_server_commit_it(server: ServerProcess) -> None:
    claimed, count = 16 * MIB, 8
    echo_round_trip(server.port)  # everything a connection needs is loaded
    before = server.status()["VmRSS"]
    clients = [RawClient(server.port) for _ in range(count)]
    try:
        header = bytes((0x82, 0x80 | 127)) + claimed.to_bytes(8, "big") + KEY
        for client in clients:
            client.sock.sendall(header)
        echo_round_trip(server.port)
        grown = settled_rss(server) - before
        # Before the fix: about count * 16 MiB (128 MiB). Now: the headers' bytes and per-connection state.
        assert grown < claimed, f"{count} headers claiming {claimed} bytes each grew the server by {grown} bytes"

        # The payload that does arrive is still taken whole (into a buffer grown as it came).
        payload = bytes(range(256)) * (claimed // 256)
        clients[0].sock.sendall(frames.apply_mask(payload, KEY))
        [echoed] = clients[0].events(1, timeout=60)
        assert isinstance(echoed, BinaryReceived) and echoed.data == payload
    finally:
        for client in clients:
            client.close()


def test_a_flood_of_empty_continuation_frames_leaves_the_servers_memory_flat(server: ServerProcess) -> None:
    count = 4
    flood = frame(0x00) * 10_000  # 6 bytes a frame

    def send_flood(clients: list[RawClient], frames_each: int) -> None:
        for client in clients:
            for _ in range(frames_each // 10_000):
                client.sock.sendall(flood)
            # A ping inside the message: its pong means the server went through the flood.
            client.sock.sendall(frame(0x89, b"sync"))
        for client in clients:
            [pong] = client.events(1, timeout=60)
            assert isinstance(pong, PongReceived) and pong.payload == b"sync"

    echo_round_trip(server.port)
    clients = [RawClient(server.port) for _ in range(count)]
    try:
        for client in clients:
            client.sock.sendall(frame(0x02, b"x"))
        # The first frames reach the high-water mark of what a read costs (the
        # frames of one read are parsed at once): then no more, however many follow.
        send_flood(clients, 100_000)
        before = server.status()["VmRSS"]
        send_flood(clients, 400_000)
        grown = server.status()["VmRSS"] - before
        # Before the fix: 8 bytes or more a fragment, about 13 MiB for these 1.6 million.
        assert grown < 4 * MIB, f"{count * 400_000} more empty fragments grew the server by {grown} bytes"

        for client in clients:
            client.sock.sendall(frame(0x80, b"y"))
            assert client.events(1, timeout=20) == [BinaryReceived(b"xy")]
    finally:
        for client in clients:
            client.close()
