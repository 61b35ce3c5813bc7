"""One frame to many sockets in one call: :func:`send_ready`, in C (``ws4py._fanout``) or pure Python.

Each asyncio connection keeps an :class:`Outlet` whose ``fd`` is its
socket's descriptor only while a frame may be sent on it straight (nothing
corked, nothing in its transport's buffer, open, not sending fragments; see
:attr:`ws4py.asyncio.writing.WriteSide.outlet`), and -1 otherwise. A
fan-out to thousands of such connections then costs one ``send()`` per
connection and no Python per connection: in C the loop runs with the GIL
released. The pure-Python twins here behave the same and are used where the
C module is not built or when ``WS4PY_PURE_PYTHON=1``. :func:`use` switches
the process between them (the tests run both).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Protocol

__all__ = ["Outlet", "OutletLike", "PythonOutlet", "available_implementations", "implementation", "send_ready", "use"]


class OutletLike(Protocol):
    """What :func:`send_ready` sends to: an object with a settable ``int`` ``fd``."""

    fd: int


#: ``send_ready(outlets, data)``: see :func:`send_ready_python`.
SendReady = Callable[[Sequence[OutletLike], bytes], "list[tuple[int, int]]"]


class PythonOutlet:
    """Where a fan-out may send a connection's frames straight (the twin of the C ``Outlet``).

    ``fd`` is the socket's descriptor while nothing would go before them,
    else -1 (see :func:`send_ready`).
    """

    __slots__ = ("fd",)

    def __init__(self, fd: int = -1) -> None:
        self.fd = fd

    def __repr__(self) -> str:
        return f"<Outlet fd={self.fd}>"


def send_ready_python(outlets: Sequence[OutletLike], data: bytes) -> list[tuple[int, int]]:
    """Send ``data`` with one ``send()`` to the socket of each outlet whose ``fd`` is not -1, in order.

    Return ``(index, sent)`` for each outlet that did not take all of
    ``data``, in order: ``sent`` is -1 for an outlet that was not ready
    (nothing sent), else what its socket took (0 when it was full or failed,
    an error its owner meets on its own next write). An outlet that came
    short is no longer ready (its ``fd`` is set to -1), so what follows waits
    behind its rest. Raises :class:`TypeError` for an outlet without an
    ``int`` ``fd`` (before anything is sent).
    """
    fds = []
    for outlet in outlets:
        fd = outlet.fd
        if not isinstance(fd, int):
            raise TypeError(f"an outlet's fd is an int, not {type(fd).__name__}")
        fds.append(fd)
    report: list[tuple[int, int]] = []
    came_short: set[int] = set()
    size = len(data)
    for index, fd in enumerate(fds):
        if fd < 0 or fd in came_short:  # not ready, or what follows waits behind what it did not take
            report.append((index, -1))
            continue
        # os.write is send() with no flags on a socket; SIGPIPE is ignored in Python (EPIPE instead).
        try:
            sent = os.write(fd, data)
        except OSError:  # full (BlockingIOError) or broken: the owner's transport handles either
            sent = 0
        if sent < size:
            report.append((index, sent))
            came_short.add(fd)
            outlets[index].fd = -1
    return report


def _load_compiled() -> ModuleType | None:
    try:
        from . import _fanout
    except ImportError:
        return None
    return _fanout if hasattr(_fanout, "send_ready") else None  # built on a system without send()


_IMPLEMENTATIONS: dict[str, SendReady] = {"python": send_ready_python}
_compiled = _load_compiled()
if _compiled is not None:
    _IMPLEMENTATIONS["c"] = _compiled.send_ready

#: The implementation :data:`send_ready` is now: ``"c"`` or ``"python"`` (see :func:`use`).
implementation = ""
#: One frame to many outlets: the C function when it is built, else :func:`send_ready_python`.
send_ready: SendReady = send_ready_python

#: Makes the outlet of a new connection: C's ``Outlet`` when it is built, else :class:`PythonOutlet`
#: (either :func:`send_ready` takes either).
Outlet: Callable[..., OutletLike] = PythonOutlet


def available_implementations() -> list[str]:
    """Names of the :func:`send_ready` this installation has: ``"c"`` (if built) and ``"python"``."""
    return sorted(_IMPLEMENTATIONS)


def use(name: str) -> None:
    """Switch :func:`send_ready` and :data:`Outlet` of the whole process to ``"c"`` or ``"python"``.

    Outlets made before keep their type: either :func:`send_ready` takes them.
    """
    global implementation, send_ready, Outlet
    try:
        send_ready = _IMPLEMENTATIONS[name]
    except KeyError:
        raise ValueError(f"no {name!r} send_ready here; available: {available_implementations()}") from None
    Outlet = _compiled.Outlet if name == "c" and _compiled is not None else PythonOutlet
    implementation = name


use("python" if os.environ.get("WS4PY_PURE_PYTHON") == "1" or _compiled is None else "c")
