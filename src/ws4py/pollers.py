"""ws4py's pollers: a :mod:`selectors` selector behind one small interface.

``poll(timeout)`` returns ``(data, events)`` pairs for the ready file
descriptors (``data`` is what was registered with them); ``timeout=None``
waits until something is ready, and ``poll()`` waits at most the ``timeout``
given to the poller's constructor (0.1 s by default, as in ws4py 0.6).
Registering a file descriptor again, or unregistering one that is not
registered, does nothing (as in 0.6). :func:`default_poller` picks the best
the system has.
"""

from __future__ import annotations

import contextlib
import math
import select
import selectors
import time
from collections.abc import Callable
from typing import Any

_spin_epoll: Callable[[int, float], bool] | None
try:
    from ._busypoll import spin as _spin_epoll
except ImportError:  # not built, or not Linux: Poller.spin polls from Python
    _spin_epoll = None

__all__ = [
    "READ",
    "WRITE",
    "Poller",
    "SelectPoller",
    "PollPoller",
    "EPollPoller",
    "KQueuePoller",
    "default_poller",
]

#: The event of a readable file descriptor (``selectors.EVENT_READ``).
READ = selectors.EVENT_READ
#: The event of a writable file descriptor (``selectors.EVENT_WRITE``).
WRITE = selectors.EVENT_WRITE


#: ``poll()``'s default: the constructor's ``timeout``.
_OWN_TIMEOUT: Any = object()


class Poller:
    """A :mod:`selectors` selector behind ws4py's poller interface (see the module docstring).

    ``timeout`` (seconds, ``None``: no limit) is how long :meth:`poll` waits when
    it is given no timeout of its own.
    """

    selector_class: type[selectors.BaseSelector] | None = None

    def __init__(self, timeout: float | None = 0.1) -> None:
        if self.selector_class is None:
            raise OSError(f"{type(self).__name__} is not available on this system")
        self.timeout = timeout
        self._selector = self.selector_class()

    def register(self, fd: int, events: int = READ, data: Any = None) -> None:
        """Watch ``fd`` for ``events``; ``data`` comes back with it from :meth:`poll`.
        A descriptor already registered is left as it is (:meth:`modify` changes it)."""
        with contextlib.suppress(KeyError):  # registered already: ws4py 0.6 ignored the repeat
            self._selector.register(fd, events, data)

    def is_registered(self, fd: int) -> bool:
        """Whether ``fd`` is watched."""
        return fd in self._selector.get_map()

    def modify(self, fd: int, events: int, data: Any = None) -> None:
        self._selector.modify(fd, events, data)

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd``; one that is not watched is ignored."""
        with contextlib.suppress(KeyError):  # not registered (any more): ws4py 0.6 ignored it
            self._selector.unregister(fd)

    def poll(self, timeout: float | None = _OWN_TIMEOUT) -> list[tuple[Any, int]]:
        """Wait up to ``timeout`` seconds (the constructor's when not given; ``None``:
        until something is ready) and return the ready ``(data, events)`` pairs."""
        if timeout is _OWN_TIMEOUT:
            timeout = self.timeout
        return [(key.data, events) for key, events in self._selector.select(timeout)]

    def spin(self, seconds: float) -> bool:
        """Poll without sleeping for up to ``seconds``; whether something became ready
        (then ``poll(0)`` returns it)."""
        end = time.perf_counter() + seconds
        while not self._selector.select(0):
            if time.perf_counter() >= end:
                return False
        return True

    def release(self) -> None:
        self._selector.close()


class SelectPoller(Poller):
    """:func:`select.select`: everywhere, but only for descriptors below 1024."""

    selector_class = selectors.SelectSelector


class PollPoller(Poller):
    """:func:`select.poll` (POSIX)."""

    selector_class = getattr(selectors, "PollSelector", None)


class EPollPoller(Poller):
    """:func:`select.epoll` (Linux), used directly: :mod:`selectors`' wrapper makes a key
    object per registration and looks one up per ready descriptor, which a loop serving
    thousands of sockets pays on every event. Behaves as the other pollers do."""

    selector_class = getattr(selectors, "EpollSelector", None)

    def __init__(self, timeout: float | None = 0.1) -> None:
        if self.selector_class is None:
            raise OSError(f"{type(self).__name__} is not available on this system")
        self.timeout = timeout
        self._epoll = select.epoll()
        self._data: dict[int, tuple[Any, int]] = {}  # fd -> (data, READ/WRITE events)

    def register(self, fd: int, events: int = READ, data: Any = None) -> None:
        fd = _fd_of(fd)
        if fd in self._data:
            return  # ws4py 0.6 ignored the repeat
        self._epoll.register(fd, _epoll_mask(events))
        self._data[fd] = (data, events)

    def is_registered(self, fd: int) -> bool:
        return _fd_of(fd) in self._data

    def modify(self, fd: int, events: int, data: Any = None) -> None:
        fd = _fd_of(fd)
        if self._data[fd][1] != events:  # KeyError when not registered, as a selector raises
            self._epoll.modify(fd, _epoll_mask(events))
        self._data[fd] = (data, events)

    def unregister(self, fd: int) -> None:
        fd = _fd_of(fd)
        if self._data.pop(fd, None) is None:
            return
        with contextlib.suppress(OSError):  # closed already: the kernel dropped it
            self._epoll.unregister(fd)

    def poll(self, timeout: float | None = _OWN_TIMEOUT) -> list[tuple[Any, int]]:
        if timeout is _OWN_TIMEOUT:
            timeout = self.timeout
        if timeout is None:
            timeout = -1
        elif timeout <= 0:
            timeout = 0
        else:  # whole milliseconds, rounded up: epoll_wait cannot wait less than one
            timeout = math.ceil(timeout * 1e3) * 1e-3
        table = self._data
        ready = []
        for fd, mask in self._epoll.poll(timeout, max(len(table), 1)):
            entry = table.get(fd)
            if entry is not None:
                # An error or hang-up wakes a reader and a writer alike, as selectors reports it.
                events = (WRITE if mask & _NOT_IN else 0) | (READ if mask & _NOT_OUT else 0)
                ready.append((entry[0], events & entry[1]))
        return ready

    def spin(self, seconds: float) -> bool:
        """:meth:`Poller.spin`, in C with the GIL released when ws4py's ``_busypoll`` is
        built: the process's other threads run meanwhile."""
        if _spin_epoll is None:
            end = time.perf_counter() + seconds
            while not self._epoll.poll(0, 1):
                if time.perf_counter() >= end:
                    return False
            return True
        return _spin_epoll(self._epoll.fileno(), seconds)

    def release(self) -> None:
        self._epoll.close()


if hasattr(select, "epoll"):
    _NOT_IN, _NOT_OUT = ~select.EPOLLIN, ~select.EPOLLOUT


def _epoll_mask(events: int) -> int:
    return (select.EPOLLIN if events & READ else 0) | (select.EPOLLOUT if events & WRITE else 0)


def _fd_of(fileobj: Any) -> int:
    """A descriptor, or what ``fileno()`` gives (a socket), as :mod:`selectors` takes either."""
    return fileobj if type(fileobj) is int else int(fileobj.fileno())


class KQueuePoller(Poller):
    """:func:`select.kqueue` (BSD, macOS)."""

    selector_class = getattr(selectors, "KqueueSelector", None)


def default_poller() -> Poller:
    """The best poller this system has: epoll, kqueue, poll, then select."""
    for cls in (EPollPoller, KQueuePoller, PollPoller, SelectPoller):
        if cls.selector_class is not None:
            return cls()
    raise OSError("no poller available")  # pragma: no cover - select always exists
