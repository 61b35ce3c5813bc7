"""Every stack writes the same bytes for the same send: the wire rules are the core's, not an adapter's.

Each of ws4py's three stacks serves one connection whose handler sends the same
messages (fragmented ones among them). A raw TCP client, which answers nothing,
reads what arrives up to the server's close frame; the three byte streams must
be identical, frame for frame, and be exactly the frames RFC 6455 prescribes.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import make_server

import pytest

from ws4py import async_websocket
from ws4py.asyncio import serve
from ws4py.protocol import ClientHandshake, frames
from ws4py.server.wsgirefserver import WebSocketWSGIRequestHandler, WSGIServer
from ws4py.server.wsgiutils import WebSocketWSGIApplication
from ws4py.websocket import WebSocket

HOST = "127.0.0.1"
TIMEOUT = 10.0

#: What every handler sends, in order, with the classic API's ``send(payload, binary)``.
SENDS: list[tuple[Any, bool]] = [
    (["frag", "mén", "ted"], False),
    ([b"\x00", b"\x01\x02"], True),
    (["only"], False),
    ([], False),
    ("whole", False),
]

#: The frames RFC 6455 gives those sends (unmasked, server to client), then the close.
EXPECTED = [
    b"\x01\x04frag",
    b"\x00\x04m\xc3\xa9n",
    b"\x80\x03ted",
    b"\x02\x01\x00",
    b"\x80\x02\x01\x02",
    b"\x81\x04only",
    b"\x81\x00",
    b"\x81\x05whole",
]


def _frames_until_close(port: int) -> list[bytes]:
    """Open a raw connection, do the handshake, and return every frame the server sends before its close."""
    handshake = ClientHandshake(HOST, "/", port=port)
    with socket.create_connection((HOST, port), timeout=TIMEOUT) as sock:
        sock.sendall(handshake.request_bytes())
        while handshake.receive_data(sock.recv(4096)) is None:
            pass
        buf = bytearray(handshake.leftover)
        received: list[bytes] = []
        while True:
            length = frames.frame_length(buf)
            if length and len(buf) >= length:
                frame = bytes(buf[:length])
                del buf[:length]
                if frame[0] & 0x0F == frames.Opcode.CLOSE:
                    return received
                received.append(frame)
                continue
            data = sock.recv(65536)
            assert data, f"the server closed TCP before its close frame; got {received}"
            buf += data


def _send_all(send: Callable[[Any, bool], Any]) -> None:
    for payload, binary in SENDS:
        send(iter(payload) if isinstance(payload, list) else payload, binary)


@contextmanager
def _threaded_server() -> Iterator[int]:
    class Sender(WebSocket):
        def opened(self) -> None:
            _send_all(self.send)
            self.close()

    server = make_server(
        HOST,
        0,
        server_class=WSGIServer,
        handler_class=WebSocketWSGIRequestHandler,
        app=WebSocketWSGIApplication(handler_cls=Sender),
    )
    server.initialize_websockets_manager()
    thread = threading.Thread(target=server.serve_forever, name="stacks-agree-wsgiref")
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


@contextmanager
def _on_a_loop(start: Callable[[], Any]) -> Iterator[int]:
    """Run the asyncio server ``start()`` makes on a loop of its own thread; yield its port."""
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(start())
    thread = threading.Thread(target=loop.run_forever, name="stacks-agree-loop")
    thread.start()
    try:
        yield server.sockets[0].getsockname()[1]
    finally:

        async def stop() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)
        loop.close()


@contextmanager
def _asyncio_server() -> Iterator[int]:
    async def handler(conn: Any) -> None:
        for payload, binary in SENDS:
            if isinstance(payload, list) and binary:
                payload = [bytes(chunk) for chunk in payload]
            await conn.send(payload)

    with _on_a_loop(lambda: serve(handler, HOST, 0, compression=None)) as port:
        yield port


@contextmanager
def _callbacks_server() -> Iterator[int]:
    class Sender(async_websocket.WebSocket):
        def opened(self) -> None:
            _send_all(self.send)
            self.close()

    async def start() -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(lambda: async_websocket.WebSocketProtocol(Sender, compression=None), HOST, 0)

    with _on_a_loop(start) as port:
        yield port


STACKS = {"threaded": _threaded_server, "ws4py.asyncio": _asyncio_server, "callbacks": _callbacks_server}


@pytest.mark.parametrize("stack", list(STACKS))
def test_each_stack_writes_the_frames_rfc_6455_gives_a_fragmented_send(stack: str) -> None:
    with STACKS[stack]() as port:
        assert _frames_until_close(port) == EXPECTED


def test_the_three_stacks_write_identical_bytes_for_the_same_sends() -> None:
    streams = {}
    for name, server in STACKS.items():
        with server() as port:
            streams[name] = b"".join(_frames_until_close(port))
    assert len(set(streams.values())) == 1, streams
