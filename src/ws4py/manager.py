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
        # The websockets added and not removed, by identity: what len(), in and iteration
        # answer from, so that they are right as soon as add() or remove() returns, on any
        # thread (the loop registers the sockets on its own thread, later). One that has
        # terminated is no longer managed.
        self._members: dict[int, WebSocket] = {}
        self._members_lock = threading.Lock()
        self.loop.on_detach = self._forget

    # -- public API ---------------------------------------------------------

    @property
    def websockets(self) -> dict[int, WebSocket]:
        """A snapshot ``{fd: websocket}`` of the managed websockets (safe to iterate)."""
        return {ws.fileno(): ws for ws in self._websocket_list()}

    @property
    def running(self) -> bool:
        """Whether the manager's loop runs and has not been asked to stop."""
        loop = self.loop
        return loop.thread_id is not None and not loop.finished and not self._stop_requested

    def add(self, websocket: WebSocket) -> None:
        """Take over ``websocket``: register its socket and call its ``opened()``.

        It is in the manager (``in``, ``len()``, iteration) as soon as this
        returns; ``opened()`` runs on the manager's thread, before any other
        callback of that websocket. Adding a websocket twice does nothing, nor
        does adding one whose connection is over.
        """
        with self._members_lock:
            if self._is_member(websocket):
                return
            bound = websocket.bind_loop(self.loop)  # ValueError without a socket: not added
            if not bound and websocket.terminated:
                return
            self._members[id(websocket)] = websocket
        if bound:
            self.loop.attach(websocket)
        # Not bound, not over: removed a moment ago and its release has not run yet; that
        # release sees it is a member again and leaves it on the loop.

    def remove(self, websocket: WebSocket) -> None:
        """Stop watching ``websocket`` (its ``closed()`` is not called); an unknown one is ignored.

        It is out of the manager as soon as this returns. Called from another
        thread than the manager's, it returns once the manager has let go of
        the socket (blocking again, for its caller to use), or after
        :attr:`release_timeout` seconds if the manager's thread is busy.
        """
        with self._members_lock:
            if self._members.pop(id(websocket), None) is None:
                return
        loop = self.loop
        if loop.in_loop() or loop.finished:
            self._release(websocket)
            return
        released = threading.Event()
        loop.call_soon(self._release, websocket, released)
        if loop.thread_id is not None:  # a loop that has not started releases it when it starts
            released.wait(self.release_timeout)

    #: Seconds :meth:`remove` waits, on another thread, for the manager's thread to let go.
    release_timeout = 5.0

    def _release(self, websocket: WebSocket, released: threading.Event | None = None) -> None:
        try:
            with self._members_lock:
                if id(websocket) in self._members:
                    return  # added again meanwhile: it stays
            if self.loop.detach(websocket):
                websocket.unbind_loop()
        finally:
            if released is not None:
                released.set()

    def _forget(self, channel: Channel) -> None:
        """The loop let go of ``channel`` (loop thread): a websocket whose connection ended
        is no longer a member. (One being removed is not a member any more; one removed
        and added again is not let go of.)"""
        with self._members_lock:
            self._members.pop(id(channel), None)

    def _is_member(self, websocket: object) -> bool:
        """Whether ``websocket`` was added, not removed, and is not over (members lock held)."""
        if not isinstance(websocket, WebSocket) or self._members.get(id(websocket)) is not websocket:
            return False
        if websocket.terminated:
            del self._members[id(websocket)]
            return False
        return True

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
        with self._members_lock:
            return self._is_member(websocket)

    def _websocket_list(self) -> list[WebSocket]:
        """The managed websockets (those over are dropped on the way)."""
        with self._members_lock:
            members = list(self._members.values())
            over = [ws for ws in members if ws.terminated]
            for ws in over:
                del self._members[id(ws)]
        return [ws for ws in members if not ws.terminated] if over else members

    # -- the loop ------------------------------------------------------------

    def run(self) -> None:
        """The loop; :meth:`start` runs it on the manager's own thread."""
        self.loop.run()

    def _begin_stop(self) -> None:
        """On the loop: close what is open once, drop what is not a websocket, then exit
        once the closes are done or the longest close timeout has passed."""
        websockets = [ch for ch in list(self.loop.channels.values()) if isinstance(ch, WebSocket)]
        timeout = max((ws.close_timeout for ws in websockets), default=0.0)
        others: list[Channel] = [ch for ch in list(self.loop.channels.values()) if not isinstance(ch, WebSocket)]
        for channel in others:
            try:
                channel.closed_by_loop()
            except Exception:
                logger.exception("Closing %r failed", channel)
        self.close_all(1001, "Server is shutting down")
        self.loop.exit_when_empty(time.monotonic() + timeout)
