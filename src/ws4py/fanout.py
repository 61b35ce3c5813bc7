"""One frame to many sockets in one call: :func:`send_ready`, in C (``ws4py._fanout``) or pure Python.

Each asyncio connection keeps an :class:`Outlet` whose ``fd`` is its
socket's descriptor only while a frame may be sent on it straight (nothing
corked, nothing in its transport's buffer, open, not sending fragments; see
:attr:`ws4py.asyncio.writing.WriteSide.outlet`), and -1 otherwise. A
fan-out to thousands of such connections then costs one ``send()`` per
connection and no Python per connection: in C the loop runs with the GIL
released. Several messages broadcast in one loop round go out joined, with
one ``send()`` per connection too: :func:`owe` marks the outlets ready now
(from C), the frames pile up in one :class:`Owed`, and :func:`send_owed`
sends them when the round ends, to every outlet whose owner has not written
them itself meanwhile. The pure-Python twins here behave the same and are used where the
C module is not built or when ``WS4PY_PURE_PYTHON=1``. :func:`use` switches
the process between them (the tests run both).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Protocol

__all__ = [
    "Outlet",
    "OutletLike",
    "Owed",
    "PythonOutlet",
    "owe",
    "send_owed",
    "available_implementations",
    "implementation",
    "send_ready",
    "use",
]


class OutletLike(Protocol):
    """What :func:`send_ready` sends to: an object with a settable ``int`` ``fd`` and ``owed``."""

    fd: int
    owed: Owed | None


class Owed:
    """Frames a fan-out owes to many outlets (see :func:`owe`): sent once with :func:`send_owed`.

    An outlet's owner that writes before that (see
    :class:`ws4py.asyncio.writing.WriteSide`) writes ``frames`` first, then
    notes its outlet in ``paid``: what is broadcast after that goes to it on
    its own, in order.
    """

    __slots__ = ("frames", "paid")

    def __init__(self) -> None:
        #: The frames owed, in order.
        self.frames: list[bytes] = []
        #: The outlets whose owners wrote the frames themselves (and owe nothing more).
        self.paid: list[OutletLike] = []


#: ``send_ready(outlets, data)``: see :func:`send_ready_python`.
SendReady = Callable[[Sequence[OutletLike], bytes], "list[tuple[int, int]]"]
#: ``owe(outlets, owed)``: see :func:`owe_python`.
Owe = Callable[[Sequence[OutletLike], Owed], "list[int]"]
#: ``send_owed(outlets, owed, data)``: see :func:`send_owed_python`.
SendOwed = Callable[[Sequence[OutletLike], Owed, bytes], "list[tuple[int, int]]"]


class PythonOutlet:
    """Where a fan-out may send a connection's frames straight (the twin of the C ``Outlet``).

    ``fd`` is the socket's descriptor while nothing would go before them,
    else -1; ``owed`` is ``None`` or what a fan-out owes the socket (see
    :func:`send_ready`, :func:`owe` and :func:`send_owed`).
    """

    __slots__ = ("fd", "owed")

    def __init__(self, fd: int = -1) -> None:
        self.fd = fd
        self.owed: Owed | None = None

    def __repr__(self) -> str:
        return f"<Outlet fd={self.fd}>"


_LEFT_OUT = -2


def _fan_out(outlets: Sequence[OutletLike], data: bytes, owed: Owed | None) -> list[tuple[int, int]]:
    """:func:`send_ready_python` (``owed`` None) and :func:`send_owed_python`."""
    fds = []
    for outlet in outlets:
        fd = outlet.fd
        current = outlet.owed
        if not isinstance(fd, int):
            raise TypeError(f"an outlet's fd is an int, not {type(fd).__name__}")
        if owed is None:
            fds.append(-1 if current is not None else fd)  # what it owes goes first
        else:
            fds.append(fd if current is owed else _LEFT_OUT)
    if owed is not None:  # each outlet chosen owes nothing from now on, sent or not
        for outlet, fd in zip(outlets, fds, strict=True):
            if fd != _LEFT_OUT:
                outlet.owed = None
    report: list[tuple[int, int]] = []
    came_short: set[int] = set()
    size = len(data)
    for index, fd in enumerate(fds):
        if fd == _LEFT_OUT:
            continue
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


def send_ready_python(outlets: Sequence[OutletLike], data: bytes) -> list[tuple[int, int]]:
    """Send ``data`` with one ``send()`` to the socket of each ready outlet, in order.

    Ready: its ``fd`` is not -1 and it owes nothing. Return ``(index, sent)``
    for each outlet that did not take all of ``data``, in order: ``sent`` is
    -1 for an outlet that was not ready (nothing sent), else what its socket
    took (0 when it was full or failed, an error its owner meets on its own
    next write). An outlet that came short is no longer ready (its ``fd`` is
    set to -1), so what follows waits behind its rest. Raises
    :class:`TypeError` for an outlet whose ``fd`` is not an ``int``
    (:class:`AttributeError` for one without ``fd`` or ``owed``), before
    anything is sent.
    """
    return _fan_out(outlets, data, None)


def owe_python(outlets: Sequence[OutletLike], owed: Owed) -> list[int]:
    """Make each ready outlet owe ``owed`` (no longer ready); the indexes of those that were not ready.

    Whoever writes to such an outlet's connection first writes ``owed``'s
    frames, until :func:`send_owed` sends them.
    """
    if owed is None:
        raise ValueError("an outlet cannot owe None")
    not_ready = []
    for index, outlet in enumerate(outlets):
        fd = outlet.fd
        if not isinstance(fd, int):
            raise TypeError(f"an outlet's fd is an int, not {type(fd).__name__}")
        if fd >= 0 and outlet.owed is None:
            outlet.owed = owed
        else:
            not_ready.append(index)
    return not_ready


def send_owed_python(outlets: Sequence[OutletLike], owed: Owed, data: bytes) -> list[tuple[int, int]]:
    """What :func:`owe` promised: ``data`` (``owed``'s frames, joined) to each outlet that still owes ``owed``.

    Each such outlet then owes nothing; the others (they paid meanwhile) are
    left out. Reports what :func:`send_ready` reports.
    """
    if owed is None:
        raise ValueError("owed is what owe() gave the outlets, not None")
    return _fan_out(outlets, data, owed)


def _load_compiled() -> ModuleType | None:
    try:
        from . import _fanout
    except ImportError:
        return None
    return _fanout if hasattr(_fanout, "send_ready") else None  # built on a system without send()


_IMPLEMENTATIONS: dict[str, tuple[SendReady, Owe, SendOwed]] = {
    "python": (send_ready_python, owe_python, send_owed_python)
}
_compiled = _load_compiled()
if _compiled is not None:
    _IMPLEMENTATIONS["c"] = (_compiled.send_ready, _compiled.owe, _compiled.send_owed)

#: The implementation :data:`send_ready` is now: ``"c"`` or ``"python"`` (see :func:`use`).
implementation = ""
#: One frame to many outlets: the C function when it is built, else :func:`send_ready_python`.
send_ready: SendReady = send_ready_python
#: See :func:`owe_python`; C's when it is built.
owe: Owe = owe_python
#: See :func:`send_owed_python`; C's when it is built.
send_owed: SendOwed = send_owed_python

#: Makes the outlet of a new connection: C's ``Outlet`` when it is built, else :class:`PythonOutlet`
#: (either :func:`send_ready` takes either).
Outlet: Callable[..., OutletLike] = PythonOutlet


def available_implementations() -> list[str]:
    """Names of the :func:`send_ready` this installation has: ``"c"`` (if built) and ``"python"``."""
    return sorted(_IMPLEMENTATIONS)


def use(name: str) -> None:
    """Switch :func:`send_ready`, :func:`owe`, :func:`send_owed` and :data:`Outlet` of the whole process
    to ``"c"`` or ``"python"``.

    Outlets made before keep their type: either implementation takes them.
    """
    global implementation, send_ready, owe, send_owed, Outlet
    try:
        send_ready, owe, send_owed = _IMPLEMENTATIONS[name]
    except KeyError:
        raise ValueError(f"no {name!r} send_ready here; available: {available_implementations()}") from None
    Outlet = _compiled.Outlet if name == "c" and _compiled is not None else PythonOutlet
    implementation = name


use("python" if os.environ.get("WS4PY_PURE_PYTHON") == "1" or _compiled is None else "c")
