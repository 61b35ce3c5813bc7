"""Python floor (reference): the least a Python asyncio protocol can do per echoed message.

Run in bench/.venvs/threaded: ``python python_floor.py PORT [--uvloop]``.
Not a WebSocket library and not a competitor: after ws4py's opening handshake
it echoes every frame from the two Python methods a buffered protocol has per read
(``get_buffer``, ws4py's own, and ``buffer_updated``), with
ws4py's C frame parser and C framer, and one ``transport.write`` per frame,
with no message objects, no callbacks, no UTF-8 check and no limits. No
server written in Python on this loop can spend less per small message, so it
shows how much of a row is left to any library: if this server does not meet
a target against a peer, no Python server on that loop can. It serves the 16 B
and 1 KiB echo rows only (its frame buffer is the simplest, not a fast one for
large frames). A close frame is answered and the transport closed; a ping is
answered with its pong.
"""

from __future__ import annotations

import asyncio

from _common import run_asyncio

from ws4py._speedups import build_frame, parse_frames
from ws4py.async_websocket import WebSocketProtocol

_CLOSE, _PING, _PONG = 0x8, 0x9, 0xA
_FIN = 0x80


class FloorProtocol(WebSocketProtocol):
    __slots__ = ("_unparsed",)

    def __init__(self) -> None:
        super().__init__(compression=None)
        self._unparsed = bytearray()

    def buffer_updated(self, nbytes: int) -> None:
        transport = self._transport
        if self._core is None or transport is None:
            super().buffer_updated(nbytes)  # the opening handshake, as ws4py does it
            return
        unparsed = self._unparsed
        data: bytearray | memoryview = self._read_view[:nbytes]
        if unparsed:
            unparsed += data
            data = unparsed
        frames, pos, error = parse_frames(data, 0, True, 0, 1 << 24)
        if error is not None:
            transport.abort()
            return
        if data is unparsed:
            del unparsed[:pos]
        elif pos < nbytes:
            unparsed += data[pos:]
        write = transport.write
        for first_byte, payload in frames:
            opcode = first_byte & 0x0F
            if opcode == _CLOSE:
                write(build_frame(_FIN | _CLOSE, payload, None))
                transport.close()
                return
            if opcode == _PING:
                write(build_frame(_FIN | _PONG, payload, None))
            elif opcode != _PONG:
                write(build_frame(first_byte, payload, None))


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(FloorProtocol, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    run_asyncio(lambda a: main(a.port), __doc__ or "")
