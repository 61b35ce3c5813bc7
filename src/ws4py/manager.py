"""One thread, one poller, thousands of websockets.

A :class:`WebSocketManager` is a thread that waits on a poller for every
websocket added to it and runs their reads, callbacks, buffered writes and
timers. Idle, it sleeps in the poller with no timeout: it uses no CPU. Other
threads talk to it through a queue of calls and a wake-up socket pair, so the
poller is only ever touched by its own thread.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from . import format_addresses
from .messaging import Message
from .protocol import Opcode
from .websocket import _CLOSE_NOW, _DRAINING, WebSocket

__all__ = [
    "WebSocketManager",
    "SelectPoller",
    "PollPoller",
    "EPollPoller",
    "KQueuePoller",
    "default_poller",
]

logger = logging.getLogger("ws4py")

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class _Poller:
    """A :mod:`selectors` selector behind ws4py's poller interface.

    ``poll(timeout)`` returns ``(data, events)`` pairs for the ready file
    descriptors (``data`` is what was registered with them). ``timeout=None``
    waits until something is ready.
    """

    selector_class: type[selectors.BaseSelector] | None = None

    def __init__(self, timeout: float | None = None) -> None:
        if self.selector_class is None:
            raise OSError(f"{type(self).__name__} is not available on this system")
        self.timeout = timeout
        self._selector = self.selector_class()

    def register(self, fd: int, events: int = READ, data: Any = None) -> None:
        self._selector.register(fd, events, data)

    def modify(self, fd: int, events: int, data: Any = None) -> None:
        self._selector.modify(fd, events, data)

    def unregister(self, fd: int) -> None:
        self._selector.unregister(fd)

    def poll(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        return [(key.data, events) for key, events in self._selector.select(timeout)]

    def release(self) -> None:
        self._selector.close()


class SelectPoller(_Poller):
    """:func:`select.select`: everywhere, but only for descriptors below 1024."""

    selector_class = selectors.SelectSelector


class PollPoller(_Poller):
    """:func:`select.poll` (POSIX)."""

    selector_class = getattr(selectors, "PollSelector", None)


class EPollPoller(_Poller):
    """:func:`select.epoll` (Linux)."""

    selector_class = getattr(selectors, "EpollSelector", None)


class KQueuePoller(_Poller):
    """:func:`select.kqueue` (BSD, macOS)."""

    selector_class = getattr(selectors, "KqueueSelector", None)


def default_poller() -> _Poller:
    """The best poller this system has: epoll, kqueue, poll, then select."""
    for cls in (EPollPoller, KQueuePoller, PollPoller, SelectPoller):
        if cls.selector_class is not None:
            return cls()
    raise OSError("no poller available")  # pragma: no cover - select always exists


class WebSocketManager(threading.Thread):
    """A daemon thread that runs many websockets (see the module docstring).

    ``add`` a websocket once its handshake is done; it leaves the manager by
    itself when its connection ends. A failure in one websocket's callbacks
    closes that websocket (1011) and never stops the manager.
    """

    #: Bytes read from a socket at a time, into one buffer shared by all the websockets.
    read_size = 256 * 1024

    def __init__(self, poller: _Poller | None = None, *, read_size: int | None = None) -> None:
        super().__init__(name="WebSocketManager", daemon=True)
        self.poller = poller if poller is not None else default_poller()
        self.lock = threading.Lock()
        self._websockets: dict[int, WebSocket] = {}
        self._calls: deque[Callable[[], Any]] = deque()
        self._timers: list[tuple[float, int, WebSocket]] = []
        self._dirty: list[WebSocket] = []  # corked writes to flush before the next poll
        self._seq = itertools.count()
        self._ident: int | None = None
        self._finished = False
        self._stop_requested = False
        self._stop_deadline: float | None = None
        self._exit_when_empty = False
        if read_size is not None:
            self.read_size = read_size
        self._read_view = memoryview(bytearray(self.read_size))
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._wake_pending = False
        self.poller.register(self._wake_r.fileno(), READ, None)

    # -- public API ---------------------------------------------------------

    @property
    def websockets(self) -> dict[int, WebSocket]:
        """A snapshot ``{fd: websocket}`` of the managed websockets (safe to iterate)."""
        with self.lock:
            return dict(self._websockets)

    @property
    def running(self) -> bool:
        """Whether the manager's loop runs and has not been asked to stop."""
        return self._ident is not None and not self._finished and not self._stop_requested

    def add(self, websocket: WebSocket) -> None:
        """Take over ``websocket``: register its socket and call its ``opened()``.

        ``opened()`` runs on the manager's thread, before any other callback
        of that websocket. Adding a websocket twice does nothing.
        """
        with websocket._lock:
            if websocket._manager is self or websocket._terminated:
                return
            if websocket.sock is None:
                raise ValueError("cannot add a websocket without a socket")
            websocket._manager = self
        sock = websocket.sock
        sock.setblocking(False)
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            # A close frame written right after a message must not wait for its ACK (Nagle).
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._call_soon(self._register, websocket)

    def remove(self, websocket: WebSocket) -> None:
        """Stop watching ``websocket`` (its ``closed()`` is not called)."""
        self._call_soon(self._discard, websocket, True)

    def broadcast(self, message: str | bytes | Message, binary: bool = False) -> None:
        """Send ``message`` to every open websocket; safe from any thread; never waits.

        The frame is built once for all server connections without
        compression. A peer whose write buffer is over its
        ``max_write_buffer`` is closed with 1008 instead of being sent to.
        """
        if isinstance(message, Message):
            opcode: int = message.opcode
            data: bytes | str = message._data if message._data is not None else str(message)
        elif isinstance(message, str):
            opcode, data = Opcode.TEXT, message
        else:
            opcode, data = (Opcode.BINARY if binary else Opcode.TEXT), bytes(message)
        shared: list[bytes] = []
        for websocket in list(self._websockets.values()):
            try:
                websocket._send_shared(opcode, data, shared)
            except Exception:
                logger.exception("Broadcast to %s failed", format_addresses(websocket))

    def close_all(self, code: int = 1001, message: str = "Server is shutting down") -> None:
        """Start the closing handshake of every managed websocket."""
        for websocket in list(self._websockets.values()):
            try:
                websocket.close(code, message)
            except Exception:
                logger.exception("Closing %s failed", format_addresses(websocket))

    def stop(self) -> None:
        """Stop the manager: websockets still open are closed with 1001, then
        given up to their ``close_timeout`` to finish before they are dropped."""
        self._stop_requested = True
        self._call_soon(lambda: None)

    def __len__(self) -> int:
        return len(self._websockets)

    def __iter__(self) -> Iterator[WebSocket]:
        return iter(list(self._websockets.values()))

    def __contains__(self, websocket: object) -> bool:
        return isinstance(websocket, WebSocket) and self._websockets.get(websocket._fd) is websocket

    # -- the loop ------------------------------------------------------------

    def run(self) -> None:
        """The loop; :meth:`start` runs it on the manager's own thread."""
        self._ident = threading.get_ident()
        try:
            self._loop()
        finally:
            self._shutdown()

    def _loop(self) -> None:
        poll = self.poller.poll
        calls = self._calls
        timers = self._timers
        service = self._service
        while True:
            if self._dirty:
                self._flush_dirty()
            if calls:
                timeout: float | None = 0
            elif timers:
                timeout = max(0.0, timers[0][0] - time.monotonic())
            else:
                timeout = None
            if self._stop_deadline is not None:
                left = max(0.0, self._stop_deadline - time.monotonic())
                timeout = left if timeout is None else min(timeout, left)
            for websocket, events in poll(timeout):
                if websocket is None:
                    self._drain_wakeups()
                else:
                    service(websocket, events)
            if calls:
                self._run_calls()
            if timers and timers[0][0] <= time.monotonic():
                self._run_timers()
            if self._stop_requested and self._stopping():
                return
            if self._exit_when_empty and not self._websockets:
                return

    def _flush_dirty(self) -> None:
        dirty, self._dirty = self._dirty, []
        for websocket in dirty:
            websocket._dirty = False
            if websocket._out and not websocket._terminated:
                try:
                    websocket._flush()
                    self._update(websocket)
                except Exception as exc:
                    self._fail(websocket, exc)

    def _run_calls(self) -> None:
        calls = self._calls
        while calls:
            try:
                calls.popleft()()
            except IndexError:
                return  # another thread ran the last one
            except Exception:
                logger.exception("ws4py manager: a queued call failed")

    def _stopping(self) -> bool:
        """Close what is open once, then wait for the closes; True when done."""
        if self._stop_deadline is None:
            timeout = max((ws.close_timeout for ws in self._websockets.values()), default=0.0)
            self._stop_deadline = time.monotonic() + timeout
            self.close_all(1001, "Server is shutting down")
        return not self._websockets or time.monotonic() >= self._stop_deadline

    def _service(self, websocket: WebSocket, events: int) -> None:
        try:
            if events & WRITE:
                websocket._flush()
            if events & READ:
                if not websocket._teardown:
                    websocket.once()
                elif websocket._teardown == _DRAINING:
                    websocket._drain()
            if websocket._dirty and websocket._out:
                websocket._flush()  # the answers this read caused, in one system call
            self._update(websocket)
        except Exception as exc:
            self._fail(websocket, exc)

    def _fail(self, websocket: WebSocket, exc: Exception) -> None:
        logger.error("Closing %s after an error in its handler", format_addresses(websocket), exc_info=exc)
        try:
            websocket.close(1011, "internal error")
            self._update(websocket)
        except Exception:
            websocket._teardown = _CLOSE_NOW
            self._update(websocket)

    def _update(self, websocket: WebSocket) -> None:
        """Bring the poller and the timers in line with ``websocket``'s state."""
        if websocket._terminated or self._websockets.get(websocket._fd) is not websocket:
            return
        teardown = websocket._teardown
        if teardown and (teardown == _CLOSE_NOW or (not websocket._out and websocket._flushed())):
            websocket.terminate()
            return
        if websocket._out:
            events = WRITE if websocket._out_size > websocket.write_high_water else READ | WRITE
        else:
            events = READ
        if events != websocket._interest:
            self.poller.modify(websocket._fd, events, websocket)
            websocket._interest = events
        deadline = websocket._next_timer()
        if deadline is not None and deadline != websocket._timer_at:
            websocket._timer_at = deadline
            heapq.heappush(self._timers, (deadline, next(self._seq), websocket))

    def _run_timers(self) -> None:
        timers = self._timers
        now = time.monotonic()
        while timers and timers[0][0] <= now:
            deadline, _, websocket = heapq.heappop(timers)
            if websocket._timer_at != deadline or websocket._terminated:
                continue  # superseded by a later deadline, or gone
            websocket._timer_at = None
            try:
                websocket._on_timer(now)
                self._update(websocket)
            except Exception as exc:
                self._fail(websocket, exc)

    def _register(self, websocket: WebSocket) -> None:
        if websocket._terminated or websocket.sock is None:
            return
        if self._finished:
            websocket.terminate()
            return
        fd = websocket.sock.fileno()
        websocket._fd = fd
        with self.lock:
            self._websockets[fd] = websocket
        self.poller.register(fd, READ, websocket)
        websocket._interest = READ
        try:
            websocket._open()
        except Exception as exc:
            self._fail(websocket, exc)
            return
        if websocket._pending_input:
            # Bytes that came with the handshake: no readiness event will announce them.
            self._service(websocket, READ)
        else:
            self._update(websocket)

    def _discard(self, websocket: WebSocket, release: bool = False) -> None:
        fd = websocket._fd
        if self._websockets.get(fd) is not websocket:
            return
        with self.lock:
            del self._websockets[fd]
        self.poller.unregister(fd)
        if release:
            websocket._manager = None
            websocket._fd = -1
            if websocket.sock is not None:
                websocket.sock.setblocking(True)

    # -- talking to the loop from other threads ---------------------------

    def _call_soon(self, function: Callable[..., Any], *args: Any) -> None:
        self._calls.append((lambda: function(*args)) if args else function)
        if self._finished:
            self._run_calls()  # the loop is over: no one else will
            return
        if self._ident != threading.get_ident() and not self._wake_pending:
            self._wake_pending = True
            # OSError: full (a wake-up is pending anyway) or closed (the loop is over).
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass
        # Cleared only once the socket is empty: a wake-up sent during the drain
        # would be swallowed, and the flag would then keep every later one from being sent.
        # The calls queued meanwhile run right after this, in the same iteration.
        self._wake_pending = False

    def _running_elsewhere(self) -> bool:
        """Whether the loop is alive on another thread than the caller's."""
        return self._ident is not None and not self._finished and self._ident != threading.get_ident()

    def _shutdown(self) -> None:
        self._finished = True
        self._run_calls()
        for websocket in list(self._websockets.values()):
            try:
                websocket.terminate()
            except Exception:
                logger.exception("Terminating %s failed", format_addresses(websocket))
        self.poller.release()
        self._wake_r.close()
        self._wake_w.close()
