"""Delivery to the local subscribers, per kind of connection, with ``broadcast``'s back-pressure rules.

- asyncio connections (:mod:`ws4py.asyncio`'s, and
  :class:`ws4py.async_websocket.WebSocket`): :func:`ws4py.asyncio.broadcast`
  on their event loop, framed once per framing setting; a connection that
  does not keep up (its write buffer over ``write_limit``) is skipped for
  that message. From another thread (a Redis broker's reader) the call is
  handed to the loop, with at most :data:`MAX_PENDING` messages waiting per
  loop: past that the reader waits for the loop (and Redis holds the rest,
  up to its ``client-output-buffer-limit``) instead of a queue growing.
- the threaded (and gevent) :class:`ws4py.websocket.WebSocket`:
  :func:`ws4py.websocket.broadcast`, which never waits; a peer over its
  ``max_write_buffer`` is closed with 1008.

Each kind also says when a connection is over (``add_close_callback``), so
the broker lets it go without the application's help.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ..async_websocket import WebSocket as AsyncWebSocket
from ..asyncio import broadcast as asyncio_broadcast
from ..asyncio.endpoint import Endpoint
from ..websocket import WebSocket as ThreadedWebSocket
from ..websocket import broadcast as threaded_broadcast

__all__ = ["MAX_PENDING", "AsyncioTarget", "Target", "ThreadedTarget", "close_hook", "target_key"]

logger = logging.getLogger("ws4py")

#: Messages handed to one event loop by other threads that it has not delivered yet, at most.
MAX_PENDING = 256

#: ``keep_waiting()``: whether a delivery that cannot be handed over yet should go on waiting.
KeepWaiting = Callable[[], bool]


class Target:
    """Where a group of connections is delivered to: one event loop, or the threaded stack."""

    def deliver(self, connections: Sequence[Any], message: str | bytes, keep_waiting: KeepWaiting) -> bool:
        """Send ``message`` to ``connections``; False if it was not (the loop is gone, or it gave up waiting)."""
        raise NotImplementedError


class ThreadedTarget(Target):
    """The threaded and gevent :class:`ws4py.websocket.WebSocket`: its ``broadcast`` is safe from any thread."""

    def deliver(self, connections: Sequence[Any], message: str | bytes, keep_waiting: KeepWaiting) -> bool:
        threaded_broadcast(connections, message, isinstance(message, bytes))
        return True


THREADED = ThreadedTarget()


class AsyncioTarget(Target):
    """The asyncio connections of one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_pending: int = MAX_PENDING) -> None:
        self.loop = loop
        self._room = threading.Semaphore(max_pending)

    def deliver(self, connections: Sequence[Any], message: str | bytes, keep_waiting: KeepWaiting) -> bool:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            asyncio_broadcast(connections, message)
            return True
        while not self._room.acquire(timeout=0.05):
            if not keep_waiting():
                return False
        try:
            self.loop.call_soon_threadsafe(self._deliver, connections, message)
        except RuntimeError:  # the loop is closed: its connections are gone with it
            self._room.release()
            return False
        return True

    def _deliver(self, connections: Sequence[Any], message: str | bytes) -> None:
        self._room.release()
        asyncio_broadcast(connections, message)


def target_key(connection: object) -> asyncio.AbstractEventLoop | None:
    """What groups ``connection`` for delivery: its event loop (the running one), or ``None`` for the threaded stack.

    Raises :class:`TypeError` for an object that is not a ws4py connection, and
    :class:`RuntimeError` for an asyncio connection subscribed outside its event loop.
    """
    if isinstance(connection, ThreadedWebSocket):
        return None
    if isinstance(connection, (Endpoint, AsyncWebSocket)):
        try:
            return asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(f"subscribe {connection!r} from its event loop (no event loop runs here)") from None
    raise TypeError(
        f"cannot subscribe {type(connection).__name__}: a ws4py.asyncio connection, a "
        "ws4py.async_websocket.WebSocket or a ws4py.websocket.WebSocket is expected"
    )


def close_hook(connection: Any, callback: Callable[[], object]) -> None:
    """Have ``callback()`` called once ``connection`` is closed (soon, if it already is)."""
    if isinstance(connection, AsyncWebSocket):
        connection.proto.add_close_callback(callback)
    else:
        connection.add_close_callback(callback)
