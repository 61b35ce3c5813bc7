"""ws4py 0.6's Python 2/3 shims, with their Python 3 meaning, for code that imports them.

0.6 exported these names from this module (and its own modules and tests
star-imported it). On Python 3 each is the standard library's or a one-line
helper; new code uses the standard library directly. Nothing in ws4py uses
this module.
"""

from __future__ import annotations

import builtins
import socket
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "py3k",
    "urlsplit",
    "range",
    "unicode",
    "basestring",
    "ord",
    "get_connection",
    "detach_connection",
]

#: Always true: ws4py runs on Python 3 only.
py3k = True
#: The built-in ``range``.
range = builtins.range
#: ``str``.
unicode = str
#: As in 0.6 on Python 3: bytes and str (so ``isinstance(x, basestring)`` accepts both).
basestring = (bytes, str)


def ord(c: int | str | bytes) -> int:
    """``ord()`` that also passes an ``int`` through (an item of a bytes object is one)."""
    if isinstance(c, int):
        return c
    return builtins.ord(c)


def get_connection(fileobj: Any) -> socket.socket:
    """The socket under a file object made by ``socket.makefile()`` (a buffered ``SocketIO``)."""
    sock: socket.socket = getattr(fileobj.raw, "_sock")  # noqa: B009 - SocketIO keeps it there, unexported
    return sock


def detach_connection(fileobj: Any) -> None:
    """Detach ``fileobj`` from its socket, so that closing it leaves the socket open."""
    fileobj.detach()
