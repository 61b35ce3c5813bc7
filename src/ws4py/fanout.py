"""One frame to many sockets in one call: :func:`send_each`, in C (``ws4py._fanout``) or pure Python.

A fan-out to thousands of connections that each have nothing queued costs
one ``send()`` per connection. In C the loop runs with the GIL released and
no Python object per socket; the pure-Python twin here behaves the same and
is used where the C module is not built or when ``WS4PY_PURE_PYTHON=1``.
:func:`use` switches the process between them (the tests run both).

Only for sockets in non-blocking mode whose owner has nothing queued before
``data`` (see :meth:`ws4py.asyncio.endpoint.Endpoint.broadcast_fd`): what a
socket does not take is the caller's to queue, in order.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from types import ModuleType

__all__ = ["available_implementations", "implementation", "send_each", "use"]

#: ``send_each(fds, data)``: see :func:`send_each_python`.
SendEach = Callable[[Sequence[int], bytes], "list[tuple[int, int]]"]


def send_each_python(fds: Sequence[int], data: bytes) -> list[tuple[int, int]]:
    """Send ``data`` with one ``send()`` to each socket of ``fds``, in order.

    Return ``(index, sent)`` for each socket that did not take all of
    ``data``: ``sent`` is what it took (0 when it was full or failed, an
    error its owner meets on its own next write). A descriptor listed again
    after it came short is not sent to again (reported with 0), so its bytes
    stay in order. Raises :class:`TypeError` for a descriptor that is not an
    ``int``, :class:`ValueError` for a negative one (before anything is sent).
    """
    for fd in fds:
        if not isinstance(fd, int):
            raise TypeError(f"a file descriptor is an int, not {type(fd).__name__}")
        if fd < 0:
            raise ValueError(f"invalid file descriptor {fd}")
    short: list[tuple[int, int]] = []
    came_short: set[int] = set()
    size = len(data)
    for index, fd in enumerate(fds):
        if fd in came_short:  # what follows waits behind what it did not take
            short.append((index, 0))
            continue
        # os.write is send() with no flags on a socket; SIGPIPE is ignored in Python (EPIPE instead).
        try:
            sent = os.write(fd, data)
        except OSError:  # full (BlockingIOError) or broken: the owner's transport handles either
            sent = 0
        if sent < size:
            short.append((index, sent))
            came_short.add(fd)
    return short


def _load_compiled() -> ModuleType | None:
    try:
        from . import _fanout
    except ImportError:
        return None
    return _fanout if hasattr(_fanout, "send_each") else None  # built on a system without send()


_IMPLEMENTATIONS: dict[str, SendEach] = {"python": send_each_python}
_compiled = _load_compiled()
if _compiled is not None:
    _IMPLEMENTATIONS["c"] = _compiled.send_each

#: The implementation :data:`send_each` is now: ``"c"`` or ``"python"`` (see :func:`use`).
implementation = ""
#: One frame to many sockets: the C function when it is built, else :func:`send_each_python`.
send_each: SendEach = send_each_python


def available_implementations() -> list[str]:
    """Names of the :func:`send_each` this installation has: ``"c"`` (if built) and ``"python"``."""
    return sorted(_IMPLEMENTATIONS)


def use(name: str) -> None:
    """Switch :func:`send_each` of the whole process to ``"c"`` or ``"python"``."""
    global implementation, send_each
    try:
        send_each = _IMPLEMENTATIONS[name]
    except KeyError:
        raise ValueError(f"no {name!r} send_each here; available: {available_implementations()}") from None
    implementation = name


use("python" if os.environ.get("WS4PY_PURE_PYTHON") == "1" or _compiled is None else "c")
