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
from collections.abc import Callable

from _common import parse_args, prepare
from thread_floor import READ_SIZE, echo, handshake


def main() -> None:
    args = parse_args(__doc__ or "")
    prepare()
    listener = socket.create_server(("127.0.0.1", args.port), backlog=1024)
    poller = select.epoll()
    poller.register(listener.fileno(), select.EPOLLIN)
    buffer = memoryview(bytearray(READ_SIZE))
    conns: dict[int, tuple[socket.socket, bytearray, Callable[[bytes], None]]] = {}

    def sender(sock: socket.socket) -> Callable[[bytes], None]:
        def send(data: bytes) -> None:
            # No write buffering: the echo rows never fill a socket; one that is full ends the connection.
            if sock.send(data) < len(data):
                raise ConnectionError("the socket took part of an answer")

        return send

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
                conns[sock.fileno()] = (sock, bytearray(leftover), sender(sock))
                poller.register(sock.fileno(), select.EPOLLIN)
                continue
            sock, unparsed, send = conns[fd]
            try:
                alive = echo(sock, unparsed, buffer, send)
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
