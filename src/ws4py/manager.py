"""One thread, one poller, thousands of websockets.

A :class:`WebSocketManager` is a thread that runs an
:class:`~ws4py.loop.EventLoop`: it waits on a poller for every websocket
added to it and runs their reads, callbacks, buffered writes and timers.
After a burst of activity it keeps polling for a moment (``busy_poll``) before
it sleeps, so that the next message of a conversation is seen at once; idle,
it sleeps in the poller with no timeout: it uses no CPU. Other threads
talk to it through a queue of calls and a wake-up socket pair, so the poller
is only ever touched by its own thread. The loop drives each websocket
through the public channel methods of :mod:`ws4py.channel` only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

from . import format_addresses
from .channel import Channel
from .loop import EventLoop
from .messaging import Message
from .pollers import EPollPoller, KQueuePoller, Poller, PollPoller, SelectPoller, default_poller
from .websocket import WebSocket, broadcast

__all__ = [
    "WebSocketManager",
    "SelectPoller",
    "PollPoller",
    "EPollPoller",
    "KQueuePoller",
    "default_poller",
]

logger = logging.getLogger("ws4py")


class WebSocketManager(threading.Thread):
    """A daemon thread that runs many websockets (see the module docstring).

    ``add`` a websocket once its handshake is done; it leaves the manager by
    itself when its connection ends. A failure in one websocket's callbacks
    goes to its ``unhandled_error`` and closes that websocket (1011); it
    never stops the manager. Other channels (a server's handshakes in
    progress) may run on its :attr:`loop` too; they are not websockets of
    the manager.
    """

    #: Bytes read from a socket at a time, into one buffer shared by all the websockets.
    read_size = 256 * 1024

    def __init__(
        self, poller: Poller | None = None, *, read_size: int | None = None, busy_poll: float | None = None
    ) -> None:
        """``busy_poll``: seconds the thread keeps polling after it handled something
        before it sleeps (:attr:`ws4py.loop.EventLoop.busy_poll`, 100 µs by default):
        lower latency for a conversation's next message, for at most that much CPU
        per burst of activity; 0 turns it off."""
        super().__init__(name="WebSocketManager", daemon=True)
        if read_size is not None:
            self.read_size = read_size
        #: The event loop the manager's thread runs.
        self.loop = EventLoop(poller, read_size=self.read_size, busy_poll=busy_poll)
        self.poller = self.loop.poller
        self.lock = self.loop.lock
        self._stop_requested = False

    # -- public API ---------------------------------------------------------

    @property
    def websockets(self) -> dict[int, WebSocket]:
        """A snapshot ``{fd: websocket}`` of the managed websockets (safe to iterate)."""
        with self.lock:
            channels = list(self.loop.channels.items())
        return {fd: ws for fd, ws in channels if isinstance(ws, WebSocket)}

    @property
    def running(self) -> bool:
        """Whether the manager's loop runs and has not been asked to stop."""
        loop = self.loop
        return loop.thread_id is not None and not loop.finished and not self._stop_requested

    def add(self, websocket: WebSocket) -> None:
        """Take over ``websocket``: register its socket and call its ``opened()``.

        ``opened()`` runs on the manager's thread, before any other callback
        of that websocket. Adding a websocket twice does nothing.
        """
        if websocket.bind_loop(self.loop):
            self.loop.attach(websocket)

    def remove(self, websocket: WebSocket) -> None:
        """Stop watching ``websocket`` (its ``closed()`` is not called)."""
        self.loop.call_soon(self._release, websocket)

    def _release(self, websocket: WebSocket) -> None:
        if self.loop.detach(websocket):
            websocket.unbind_loop()

    def broadcast(self, message: str | bytes | Message, binary: bool = False) -> None:
        """Send ``message`` to every open websocket; safe from any thread; never waits.

        The frame is built once for all server connections without
        compression. A peer whose write buffer is over its
        ``max_write_buffer`` is closed with 1008 instead of being sent to.
        """
        broadcast(self._websocket_list(), message, binary)

    def close_all(self, code: int = 1001, message: str = "Server is shutting down") -> None:
        """Start the closing handshake of every managed websocket."""
        for websocket in self._websocket_list():
            try:
                websocket.close(code, message)
            except Exception:
                logger.exception("Closing %s failed", format_addresses(websocket))

    def stop(self) -> None:
        """Stop the manager: websockets still open are closed with 1001, then
        given up to their ``close_timeout`` to finish before they are dropped."""
        self._stop_requested = True
        self.loop.call_soon(self._begin_stop)

    def __len__(self) -> int:
        return len(self._websocket_list())

    def __iter__(self) -> Iterator[WebSocket]:
        return iter(self._websocket_list())

    def __contains__(self, websocket: object) -> bool:
        return isinstance(websocket, WebSocket) and self.loop.channels.get(websocket.fileno()) is websocket

    def _websocket_list(self) -> list[WebSocket]:
        return [ws for ws in list(self.loop.channels.values()) if isinstance(ws, WebSocket)]

    # -- the loop ------------------------------------------------------------

    def run(self) -> None:
        """The loop; :meth:`start` runs it on the manager's own thread."""
        self.loop.run()

    def _begin_stop(self) -> None:
        """On the loop: close what is open once, drop what is not a websocket, then exit
        once the closes are done or the longest close timeout has passed."""
        websockets = self._websocket_list()
        timeout = max((ws.close_timeout for ws in websockets), default=0.0)
        others: list[Channel] = [ch for ch in list(self.loop.channels.values()) if not isinstance(ch, WebSocket)]
        for channel in others:
            try:
                channel.closed_by_loop()
            except Exception:
                logger.exception("Closing %r failed", channel)
        self.close_all(1001, "Server is shutting down")
        self.loop.exit_when_empty(time.monotonic() + timeout)
