"""The seam between a thread's event loop and the sockets it drives.

A loop (:class:`ws4py.loop.EventLoop`, which a
:class:`~ws4py.manager.WebSocketManager` runs on its thread, or
:meth:`ws4py.websocket.WebSocket.run` on the calling one) knows nothing of
WebSocket: it waits on a poller and drives *channels* through the
:class:`Channel` methods below. A channel knows nothing of pollers, timers'
heaps or threads: it asks its loop for services through :class:`Loop`.
Both sides import only this module, so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from .pollers import READ, WRITE

__all__ = ["READ", "WRITE", "Channel", "Loop"]


class Loop(Protocol):
    """What a channel may ask of the loop that drives it."""

    #: The loop's read buffer, shared by its channels: valid during one handler call.
    read_buffer: memoryview
    #: The identity of the thread running the loop, ``None`` until it runs.
    thread_id: int | None
    #: Whether a write from another thread waits for the loop too (corked, then flushed
    #: by :meth:`flush_soon`), rather than going straight to the socket.
    corks_all_writes: bool

    def call_soon(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` on the loop's thread soon; safe from any thread."""

    def serves_elsewhere(self) -> bool:
        """Whether the loop is not over and the caller is not its thread (the loop may not
        have started yet): what concerns its channels is then handed to it."""

    def update(self, channel: Channel) -> None:
        """Read the channel's :attr:`~Channel.wanted_events` and :meth:`~Channel.next_deadline`
        again (the loop's thread only)."""

    def update_soon(self, channel: Channel) -> None:
        """:meth:`update` from any thread (it runs on the loop's thread)."""

    def flush_soon(self, channel: Channel) -> None:
        """Call the channel's :meth:`~Channel.on_writable` before the loop waits again (the
        loop's thread only, or any thread if it :attr:`corks_all_writes`): writes made
        during a step go out in one system call."""

    def detach(self, channel: Channel) -> bool:
        """Stop watching the channel (the loop's thread only); False if it was not watched."""


class Channel(Protocol):
    """What a loop drives: a socket's I/O state, through public methods only.

    Every method is called on the loop's thread. What a handler raises goes
    to :meth:`handler_failed`; if that raises too, the loop logs it and calls
    :meth:`closed_by_loop`. After each call the loop reads
    :attr:`wanted_events` and :meth:`next_deadline` again.
    """

    def fileno(self) -> int:
        """The socket's file descriptor (-1 once closed)."""

    @property
    def wanted_events(self) -> int:
        """``READ``, ``WRITE`` or both: what the channel waits for now."""

    def next_deadline(self) -> float | None:
        """When (:func:`time.monotonic`) :meth:`on_timer` is due, or ``None``."""

    def on_attached(self) -> None:
        """The loop registered the channel (it may already have bytes to handle)."""

    def on_readable(self) -> bool | None:
        """The socket is readable (or at its end).

        ``False`` if the read found nothing after all (it would have blocked):
        a loop that reads ahead of the readiness events (:class:`ws4py.geventloop.GreenletLoop`)
        then waits for the next one.
        """

    def on_writable(self) -> None:
        """The socket is writable, or the channel asked :meth:`Loop.flush_soon`."""

    def on_timer(self, now: float) -> None:
        """The deadline :meth:`next_deadline` gave has come."""

    def handler_failed(self, error: Exception) -> None:
        """One of the handlers above raised ``error``."""

    def closed_by_loop(self) -> None:
        """The loop ends, or gave up on the channel: close now."""
