"""Epoll floor (reference): the least a server with one poller thread, written in Python, can do per echoed message.

Run in bench/.venvs/integrations: ``python epoll_floor.py PORT``.
Not a WebSocket library and not a competitor: the design of ws4py's
``WebSocketManager``, which CherryPy's websockets run on (one thread, an epoll
poller, every socket non-blocking), with nothing else: per readable event
only ``recv_into`` (one buffer), ws4py's C frame parser, ws4py's C framer and
one ``send`` for all the answers of that read; no message objects, no
callbacks, no locks, no UTF-8 check, no limits, no write buffering (a frame the
socket does not take at once ends the connection: the echo rows never fill it).
If this server does not meet a target against a peer, no Python server with
one poller thread can. The opening handshake is done in blocking mode on
accept (ws4py's ``ServerHandshake``). The 16 B and 1 KiB echo rows only.
"""

from __future__ import annotations

import select
import socket

from _common import parse_args, prepare
from thread_floor import handshake

from ws4py._speedups import build_frame, parse_frames

_CLOSE, _PING, _PONG = 0x8, 0x9, 0xA
_FIN = 0x80
READ_SIZE = 64 * 1024


def echo(sock: socket.socket, unparsed: bytearray, buffer: memoryview) -> bool:
    """Answer what one read brings; False once the connection is over."""
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
            sock.send(b"".join([*out, build_frame(_FIN | _CLOSE, payload, None)]))
            return False
        if opcode == _PING:
            out.append(build_frame(_FIN | _PONG, payload, None))
        elif opcode != _PONG:
            out.append(build_frame(first_byte, payload, None))
    if out:
        data_out = out[0] if len(out) == 1 else b"".join(out)
        if sock.send(data_out) < len(data_out):
            return False
    return True


def main() -> None:
    args = parse_args(__doc__ or "")
    prepare()
    listener = socket.create_server(("127.0.0.1", args.port), backlog=1024)
    poller = select.epoll()
    poller.register(listener.fileno(), select.EPOLLIN)
    buffer = memoryview(bytearray(READ_SIZE))
    conns: dict[int, tuple[socket.socket, bytearray]] = {}
    while True:
        for fd, _events in poller.poll():
            if fd == listener.fileno():
                sock, _address = listener.accept()
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    leftover = handshake(sock, buffer)
                except OSError:
                    leftover = None
                if leftover is None:
                    sock.close()
                    continue
                sock.setblocking(False)
                conns[sock.fileno()] = (sock, bytearray(leftover))
                poller.register(sock.fileno(), select.EPOLLIN)
                continue
            sock, unparsed = conns[fd]
            try:
                alive = echo(sock, unparsed, buffer)
            except BlockingIOError:
                alive = True
            except OSError:
                alive = False
            if not alive:
                poller.unregister(fd)
                del conns[fd]
                sock.close()


if __name__ == "__main__":
    main()
