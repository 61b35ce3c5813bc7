"""A minimal asyncio echo server driving ws4py's protocol core directly.

It is the smallest honest adapter: bytes from the socket go into the core, the
core's events come out, and the bytes the core returns go back to the socket.
Run: python examples/echo_server.py [--host 127.0.0.1] [--port 9000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from ws4py.exc import HandshakeError
from ws4py.protocol import (
    BinaryReceived,
    CloseReceived,
    Connection,
    ConnectionFailed,
    DeflateOptions,
    ServerHandshake,
    State,
    TextReceived,
)

HANDSHAKE_TIMEOUT = 10.0


class EchoProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.handshake: ServerHandshake | None = ServerHandshake(compression=DeflateOptions())
        self.conn: Connection | None = None
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.timer = asyncio.get_running_loop().call_later(HANDSHAKE_TIMEOUT, transport.close)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        if self.conn is None:
            assert self.handshake is not None
            try:
                if self.handshake.receive_data(data) is None:
                    return
                self.transport.write(self.handshake.accept())
            except HandshakeError as exc:
                self.transport.write(ServerHandshake.reject(exc))
                self.transport.close()
                return
            if self.timer is not None:
                self.timer.cancel()
            self.conn = self.handshake.connection()
            data = self.handshake.leftover
            self.handshake = None
        conn = self.conn
        out = []
        for event in conn.receive_data(data):
            if isinstance(event, TextReceived):
                out.append(conn.send_text(event.data))
            elif isinstance(event, BinaryReceived):
                out.append(conn.send_binary(event.data))
            elif isinstance(event, (CloseReceived, ConnectionFailed)):
                break
        out.append(conn.data_to_send())
        self.transport.write(b"".join(out))
        if conn.state is State.CLOSED:
            # RFC 6455 7.1.1: the server closes the TCP connection first.
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.conn is not None:
            self.conn.receive_eof()


async def main(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(EchoProtocol, host, port)
    for sock in server.sockets:
        name = sock.getsockname()
        print(f"ws4py echo server listening on ws://{name[0]}:{name[1]}/", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.host, args.port))
