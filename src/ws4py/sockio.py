"""Non-blocking socket I/O for the threaded stack: gathered writes, reads, addresses.

What a channel of :mod:`ws4py.channel` does with its socket, apart from any
protocol: write as much of a list of buffers as the socket takes in one
system call, read what is there (TLS records included), tell "try again
later" from a real error.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

__all__ = ["WOULD_BLOCK", "MAX_IOV", "write_some", "read_pending", "address_of"]

#: The exceptions that mean "not now" on a non-blocking socket (plain or TLS).
WOULD_BLOCK = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)

#: Buffers given to one sendmsg() (the system's IOV_MAX is 1024 or more).
MAX_IOV = 512


def write_some(sock: socket.socket, out: list[bytes | memoryview]) -> int:
    """Write the buffers of ``out``, from the front, as far as the socket takes them (a
    ``sendmsg`` of up to :data:`MAX_IOV` of them at a time); remove what was written from
    ``out`` and return its size (0: the socket is full).

    ``OSError`` when the socket failed. A TLS socket gets one joined buffer
    (it has no ``sendmsg``).
    """
    if len(out) == 1:
        # One buffer (the answers of a read, corked into one): the common case, in short.
        chunk = out[0]
        try:
            sent = sock.send(chunk)
        except WOULD_BLOCK:
            return 0
        if sent >= len(chunk):
            out.clear()
        elif sent:
            out[0] = memoryview(chunk)[sent:]
        return sent
    written = 0
    join = isinstance(sock, ssl.SSLSocket)
    while out:
        if join and len(out) > 1:
            out[:] = [b"".join(out)]
        chunks = out[:MAX_IOV]
        try:
            sent = sock.sendmsg(chunks) if len(chunks) > 1 else sock.send(chunks[0])
        except WOULD_BLOCK:
            break
        written += sent
        done = 0
        for chunk in chunks:
            if sent < len(chunk):
                break
            sent -= len(chunk)
            done += 1
        del out[:done]
        if done < len(chunks):
            if sent:
                out[0] = memoryview(out[0])[sent:]
            break  # the socket is full
    return written


def read_pending(sock: socket.socket, view: memoryview, n: int) -> int:
    """After ``n`` bytes were read into ``view``: read what a TLS socket holds decrypted
    already (no readiness event would announce it), while ``view`` has room; the new count."""
    if isinstance(sock, ssl.SSLSocket):
        while n < len(view) and sock.pending():
            n += sock.recv_into(view[n:])
    return n


def address_of(getter: Any) -> Any:
    """``getter()`` (a socket's ``getsockname`` or ``getpeername``), ``(host, port)`` for IPv6
    too; ``None`` if there is no getter or it fails."""
    if getter is None:
        return None
    try:
        address = getter()
    except (OSError, AttributeError):
        return None
    if isinstance(address, tuple) and len(address) > 2:
        return address[:2]  # IPv6: (host, port, flowinfo, scope_id)
    return address
