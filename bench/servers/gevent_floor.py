"""gevent floor (reference): the least a gevent server written in Python can do per echoed message.

Run in bench/.venvs/integrations: ``python gevent_floor.py PORT``.
Not a WebSocket library and not a competitor: ``monkey.patch_all()``, a
``gevent.server.StreamServer`` whose handler greenlet does ws4py's opening
handshake (``ServerHandshake``), then per read only ``recv_into`` (one
buffer), ws4py's C frame parser, ws4py's C framer and one ``sendall`` for
all the answers of that read, with no message objects, no callbacks, no
locks, no UTF-8 check and no limits. No gevent server written in Python
can spend less per small message, so it shows how much of a row is left to
any library on gevent: if this server does not meet a target against a
peer, no Python server on gevent can. It serves the 16 B and 1 KiB echo rows
only (its frame buffer is the simplest, not a fast one for large frames).
A close frame is answered and the socket closed; a ping is answered with
its pong.
"""

from gevent import monkey

monkey.patch_all()

import socket  # noqa: E402 (after the monkey-patching, as gevent wants)
from typing import Any  # noqa: E402

from _common import parse_args, prepare  # noqa: E402
from gevent.server import StreamServer  # noqa: E402

from ws4py._speedups import build_frame, parse_frames  # noqa: E402
from ws4py.protocol import ServerHandshake  # noqa: E402

_CLOSE, _PING, _PONG = 0x8, 0x9, 0xA
_FIN = 0x80
READ_SIZE = 64 * 1024


def handshake(sock: Any, view: memoryview) -> bytes | None:
    """ws4py's opening handshake: the bytes read past the request, or None if the peer left."""
    shake = ServerHandshake(compression=None)
    while True:
        n = sock.recv_into(view)
        if not n:
            return None
        if shake.receive_data(view[:n]) is not None:
            sock.sendall(shake.accept())
            return shake.leftover


def handle(sock: Any, _address: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = memoryview(bytearray(READ_SIZE))
    try:
        leftover = handshake(sock, buffer)
        if leftover is None:
            return
        unparsed = bytearray(leftover)
        recv_into, sendall = sock.recv_into, sock.sendall
        while True:
            nbytes = recv_into(buffer)
            if not nbytes:
                return
            data: bytearray | memoryview = buffer[:nbytes]
            if unparsed:
                unparsed += data
                data = unparsed
            frames, pos, error = parse_frames(data, 0, True, 0, 1 << 24)
            if error is not None:
                return
            if data is unparsed:
                del unparsed[:pos]
            elif pos < nbytes:
                unparsed += data[pos:]
            out = []
            for first_byte, payload in frames:
                opcode = first_byte & 0x0F
                if opcode == _CLOSE:
                    out.append(build_frame(_FIN | _CLOSE, payload, None))
                    sendall(b"".join(out))
                    return
                if opcode == _PING:
                    out.append(build_frame(_FIN | _PONG, payload, None))
                elif opcode != _PONG:
                    out.append(build_frame(first_byte, payload, None))
            if out:
                sendall(out[0] if len(out) == 1 else b"".join(out))
    except OSError:
        return
    finally:
        sock.close()


def main() -> None:
    args = parse_args(__doc__ or "")
    prepare()
    server = StreamServer(("127.0.0.1", args.port), handle, backlog=1024)
    server.serve_forever()


if __name__ == "__main__":
    main()
