"""Thread floor (reference): the least a threaded server written in Python can do per echoed message.

Run in bench/.venvs/integrations: ``python thread_floor.py PORT``.
Not a WebSocket library and not a competitor: a thread per connection (no
poller, no loop: a blocking ``recv_into`` wakes it) does ws4py's opening
handshake (``ServerHandshake``), then per read only ``recv_into`` (one
buffer), ws4py's C frame parser, ws4py's C framer and one ``sendall`` for
all the answers of that read, with no message objects, no callbacks, no
locks, no UTF-8 check and no limits. No threaded Python server (CherryPy's
websockets run on ws4py's manager thread) can spend less per small message:
if this server does not meet a target against a peer, no Python server on
threads can. The 16 B and 1 KiB echo rows only. Its ``handshake`` and ``echo`` are the
per-connection work of ``gevent_floor.py`` and ``epoll_floor.py`` too.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

from _common import parse_args, prepare

from ws4py._speedups import build_frame, parse_frames
from ws4py.protocol import ServerHandshake

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


def echo(sock: Any, unparsed: bytearray, buffer: memoryview, send: Callable[[bytes], Any]) -> bool:
    """Read once and answer every frame of it with one ``send``; False once the connection is over."""
    nbytes = sock.recv_into(buffer)
    if not nbytes:
        return False
    data: bytearray | memoryview = buffer[:nbytes]
    if unparsed:
        unparsed += data
        data = unparsed
    frames, pos, error = parse_frames(data, 0, True, 0, 1 << 24)
    if error is not None:
        return False
    if data is unparsed:
        del unparsed[:pos]
    elif pos < nbytes:
        unparsed += data[pos:]
    out = []
    for first_byte, payload in frames:
        opcode = first_byte & 0x0F
        if opcode == _CLOSE:
            out.append(build_frame(_FIN | _CLOSE, payload, None))
            send(b"".join(out))
            return False
        if opcode == _PING:
            out.append(build_frame(_FIN | _PONG, payload, None))
        elif opcode != _PONG:
            out.append(build_frame(first_byte, payload, None))
    if out:
        send(out[0] if len(out) == 1 else b"".join(out))
    return True


def handle(sock: Any, _address: Any) -> None:
    """One connection on a blocking socket (a thread's, or a greenlet's once gevent patched it)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = memoryview(bytearray(READ_SIZE))
    try:
        leftover = handshake(sock, buffer)
        if leftover is None:
            return
        unparsed, sendall = bytearray(leftover), sock.sendall
        while echo(sock, unparsed, buffer, sendall):
            pass
    except OSError:
        return
    finally:
        sock.close()


def main() -> None:
    args = parse_args(__doc__ or "")
    prepare()
    listener = socket.create_server(("127.0.0.1", args.port), backlog=1024)
    while True:
        sock, address = listener.accept()
        threading.Thread(target=handle, args=(sock, address), daemon=True).start()


if __name__ == "__main__":
    main()
