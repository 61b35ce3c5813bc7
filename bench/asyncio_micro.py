"""The per-read cost of ws4py's two asyncio echo servers, in process, for before/after comparisons.

``python bench/asyncio_micro.py CASE KIND N [--uvloop]`` opens one server
connection on a transport that only takes what is written (no socket), does
the opening handshake, then feeds it N masked 16 B frames of KIND (``text``
or ``binary``) one read at a time, as ``get_buffer``/``buffer_updated``;
every message is echoed. CASE is ``callbacks`` (``WebSocketProtocol`` with
``EchoWebSocket``) or ``asyncio`` (``serve``'s connection with an ``async
for`` echo handler; one loop turn per message). It prints the process CPU
time per read in µs.

CPU time swings with whatever else the machine runs. Instruction counts do
not: under valgrind, ``(Ir(N) - Ir(0)) / N`` is the instructions per read,
the same from run to run (set ``PYTHONHASHSEED=0``)::

    PYTHONHASHSEED=0 valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        bench/.venvs/threaded/bin/python bench/asyncio_micro.py callbacks text 5000

(the ``Collected`` line), with N = 5000 and N = 0, in each virtualenv to
compare (``threaded`` and ``base``, see README.md). It reaches into
``Server._make_connection``, the factory ``serve`` hands to asyncio, so as
to run on versions of ws4py with and without ``ServerConnection``.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from typing import Any

from ws4py.async_websocket import EchoWebSocket, WebSocketProtocol
from ws4py.asyncio import Connection, serve
from ws4py.protocol import ClientHandshake

WARMUP = 1000


class Sink:
    """The transport methods an endpoint calls, doing nothing but keep the first writes (the 101)."""

    def __init__(self) -> None:
        self.head: list[bytes] = []

    def write(self, data: bytes) -> None:
        if len(self.head) < 4:
            self.head.append(bytes(data))

    def writelines(self, data: Any) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def can_write_eof(self) -> bool:
        return True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def write_eof(self) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def feed(proto: Any, data: bytes) -> None:
    buffer = proto.get_buffer(-1)
    buffer[: len(data)] = data
    proto.buffer_updated(len(data))


def opened(proto: Any, text: bool) -> bytes:
    """Handshake ``proto`` on a :class:`Sink`; return the client frame to feed it."""
    sink = Sink()
    proto.connection_made(sink)
    handshake = ClientHandshake("localhost", "/", port=80)
    feed(proto, handshake.request_bytes())
    handshake.receive_data(b"".join(sink.head))
    client = handshake.connection()
    return client.send_text(b"x" * 16) if text else client.send_binary(b"x" * 16)


async def callbacks(n: int, text: bool) -> float:
    proto = WebSocketProtocol(EchoWebSocket, compression=None)
    frame = opened(proto, text)
    for _ in range(WARMUP):
        feed(proto, frame)
    gc.collect()
    started = time.process_time()
    for _ in range(n):
        feed(proto, frame)
    return time.process_time() - started


async def echo(conn: Connection) -> None:
    async for message in conn:
        await conn.send(message)


async def connection(n: int, text: bool) -> float:
    server = serve(echo, "127.0.0.1", 0, compression=None, ping_interval=None)
    proto = server._make_connection()
    frame = opened(proto, text)
    await asyncio.sleep(0)  # the handler starts
    for _ in range(WARMUP):
        feed(proto, frame)
        await asyncio.sleep(0)
    gc.collect()
    started = time.process_time()
    for _ in range(n):
        feed(proto, frame)
        await asyncio.sleep(0)  # the handler's turn: recv, send
    elapsed = time.process_time() - started
    proto.connection_lost(None)  # the handler ends
    for _ in range(3):
        await asyncio.sleep(0)
    return elapsed


async def main() -> None:
    case, kind, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    run = {"callbacks": callbacks, "asyncio": connection}[case]
    elapsed = await run(n, kind == "text")
    if n:
        print(f"{case} {kind} 16 B: {elapsed / n * 1e6:.3f} µs CPU per read")


if __name__ == "__main__":
    if "--uvloop" in sys.argv:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())
