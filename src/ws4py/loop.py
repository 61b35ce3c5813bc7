"""One thread's event loop: a poller, timers and a queue of calls, driving channels.

:class:`EventLoop` waits on a poller for the channels attached to it (see
:mod:`ws4py.channel`) and calls their handlers; idle, it sleeps in the poller
with no timeout. Other threads talk to it through a queue of calls and a
wake-up socket pair, so the poller is only ever touched by its own thread.
A :class:`~ws4py.manager.WebSocketManager` runs one on its thread;
:meth:`ws4py.websocket.WebSocket.run` runs one on the calling thread.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from .channel import READ, WRITE, Channel
from .pollers import Poller, default_poller

__all__ = ["EventLoop", "spare_cpu"]

logger = logging.getLogger("ws4py")


def spare_cpu() -> bool:
    """Whether this process may run on more than one CPU: busy polling needs one to spare.

    On a single CPU it would only delay the peer it waits for (another process on
    the same CPU), as a spin lock on a single CPU does, so it is turned off there.
    """
    try:
        return len(os.sched_getaffinity(0)) > 1
    except (AttributeError, OSError):  # not Linux
        return (os.cpu_count() or 1) > 1


#: Held by the one loop of the process that polls busily (see EventLoop.busy_poll): several
#: threads doing so would pass the GIL back and forth, each slowing the others down.
_busy_polling = threading.Lock()


class _Entry:
    """The loop's record of one attached channel (what the poller hands back)."""

    __slots__ = ("channel", "dirty", "events", "fd", "live", "timer_at")

    def __init__(self, channel: Channel, fd: int) -> None:
        self.channel = channel
        self.fd = fd
        self.events = 0
        self.timer_at: float | None = None
        self.live = True
        self.dirty = False  # on_writable() is due before the next wait


class EventLoop:
    """Drives channels on the thread that calls :meth:`run` (see the module docstring).

    ``read_size`` is the size of :attr:`read_buffer`, the one buffer its
    channels read into.
    """

    #: Bytes read from a socket at a time, into one buffer shared by all the channels.
    read_size = 256 * 1024
    #: Another thread's write goes straight to the socket: the loop's thread may be busy
    #: with other channels for a while.
    corks_all_writes = False
    #: Seconds the loop keeps polling without sleeping after it handled something,
    #: before it sleeps in the poller; 0 turns it off. The next message of a
    #: conversation often comes within that time, and a thread that did not sleep
    #: sees it at once: waking a sleeping thread (a CPU gone idle, in a virtual
    #: machine a halted virtual CPU) takes tens of microseconds, often more than
    #: handling the message. It costs at most this much CPU per burst of activity;
    #: an idle loop sleeps as before. Off in a process bound to one CPU (see
    #: :func:`spare_cpu`), and done by one loop of the process at a time.
    busy_poll = 0.0001

    def __init__(
        self, poller: Poller | None = None, *, read_size: int | None = None, busy_poll: float | None = None
    ) -> None:
        if busy_poll is not None:
            if not busy_poll >= 0:
                raise ValueError(f"busy_poll must be 0 or more seconds, not {busy_poll!r}")
            self.busy_poll = busy_poll
        self.poller = poller if poller is not None else default_poller()
        #: Held while :attr:`channels` changes, to take snapshots from other threads.
        self.lock = threading.Lock()
        #: ``{fd: channel}`` of the attached channels; changed only by the loop's thread.
        self.channels: dict[int, Channel] = {}
        self.thread_id: int | None = None
        #: True once :meth:`run` returned.
        self.finished = False
        if read_size is not None:
            self.read_size = read_size
        self.read_buffer = memoryview(bytearray(self.read_size))
        self._entries: dict[int, _Entry] = {}  # id(channel) -> entry
        self._calls: deque[Callable[[], Any]] = deque()
        self._timers: list[tuple[float, int, _Entry]] = []
        self._dirty: list[_Entry] = []  # channels with corked writes, flushed before the next poll
        self._seq = itertools.count()
        self._exit_when_empty = False
        self._exit_at: float | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._wake_pending = False
        self.poller.register(self._wake_r.fileno(), READ, None)
        #: Called (loop thread) with each channel :meth:`detach` lets go of: the owner's
        #: books (a manager's members) follow the loop's.
        self.on_detach: Callable[[Channel], None] | None = None

    # -- the channels' services (ws4py.channel.Loop) ---------------------------

    def attach(self, channel: Channel) -> None:
        """Watch ``channel`` from the next turn on; safe from any thread."""
        self.call_soon(self.register, channel)

    def register(self, channel: Channel) -> None:
        """Watch ``channel`` now (loop thread): it is registered, then its ``on_attached()`` runs."""
        self._register(channel)

    def detach(self, channel: Channel) -> bool:
        """Stop watching ``channel`` (loop thread); False if it was not watched."""
        entry = self._entries.pop(id(channel), None)
        if entry is None:
            return False
        entry.live = False
        with self.lock:
            if self.channels.get(entry.fd) is channel:
                del self.channels[entry.fd]
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(entry.fd)
        if self.on_detach is not None:
            self.on_detach(channel)
        return True

    def update(self, channel: Channel) -> None:
        """Bring the poller and the timers in line with ``channel`` (loop thread)."""
        entry = self._entries.get(id(channel))
        if entry is not None:
            self._sync(entry)

    def update_soon(self, channel: Channel) -> None:
        """:meth:`update`, from any thread."""
        self.call_soon(self.update, channel)

    def flush_soon(self, channel: Channel) -> None:
        """Call ``channel.on_writable()`` before the next wait (loop thread)."""
        entry = self._entries.get(id(channel))
        if entry is not None and not entry.dirty:
            entry.dirty = True
            self._dirty.append(entry)

    def call_soon(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` on the loop's thread soon; safe from any thread."""
        self._calls.append((lambda: function(*args)) if args else function)
        if self.finished:
            self._run_calls()  # the loop is over: no one else will
            return
        if self.thread_id != threading.get_ident() and not self._wake_pending:
            self._wake_pending = True
            # OSError: full (a wake-up is pending anyway) or closed (the loop is over).
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")

    def serves_elsewhere(self) -> bool:
        """Whether the loop is not over and the caller is not its thread: work on its
        channels is to be handed to it with :meth:`call_soon` (a loop that has not
        started yet does it when it starts)."""
        return not self.finished and self.thread_id != threading.get_ident()

    def in_loop(self) -> bool:
        """Whether the caller runs on the loop's thread."""
        return self.thread_id == threading.get_ident()

    # -- running -------------------------------------------------------------

    def exit_when_empty(self, deadline: float | None = None) -> None:
        """Have :meth:`run` return once no channel is left, or at ``deadline`` (monotonic)."""
        self._exit_when_empty = True
        self._exit_at = deadline

    def run(self) -> None:
        """The loop, on the calling thread; on its way out it closes what is left."""
        self.thread_id = threading.get_ident()
        try:
            self._loop()
        finally:
            self._shutdown()

    def _loop(self) -> None:
        poll = self.poller.poll
        calls = self._calls
        timers = self._timers
        service = self._service
        busy_poll = self.busy_poll if spare_cpu() else 0.0
        active = False
        while True:
            if self._dirty:
                self._flush_dirty()
            if self._exit_when_empty and not self._entries and not calls:
                return
            while timers and (not timers[0][2].live or timers[0][2].timer_at != timers[0][0]):
                heapq.heappop(timers)  # a gone channel's, or superseded: no reason to wake up for it
            if calls:
                timeout: float | None = 0
            elif timers:
                timeout = max(0.0, timers[0][0] - time.monotonic())
            else:
                timeout = None
            if self._exit_at is not None:
                left = max(0.0, self._exit_at - time.monotonic())
                timeout = left if timeout is None else min(timeout, left)
            busy = active and busy_poll and timeout != 0
            ready = self._poll_busily(busy_poll, timeout) if busy else poll(timeout)
            active = bool(ready) or bool(calls)
            for entry, events in ready:
                if entry is None:
                    self._drain_wakeups()
                else:
                    service(entry, events)
            if calls:
                self._run_calls()
            if timers and timers[0][0] <= time.monotonic():
                self._run_timers()
            if self._exit_at is not None and time.monotonic() >= self._exit_at:
                return

    def _poll_busily(self, busy_poll: float, timeout: float | None) -> list[tuple[Any, int]]:
        """``poll(timeout)``, but polling without sleeping for up to ``busy_poll`` seconds first
        (unless another loop of the process does so now)."""
        poll = self.poller.poll
        if not _busy_polling.acquire(blocking=False):
            return poll(timeout)
        start = time.perf_counter()
        try:
            ready = self.poller.spin(busy_poll if timeout is None else min(busy_poll, timeout))
        finally:
            _busy_polling.release()
        if ready:
            return poll(0)
        return poll(None if timeout is None else max(0.0, timeout - (time.perf_counter() - start)))

    def _service(self, entry: _Entry, events: int) -> None:
        channel = entry.channel
        try:
            if events & WRITE:
                channel.on_writable()
            if events & READ and entry.live:
                channel.on_readable()
                if entry.dirty:
                    # The answers this read caused go out now, in one system call: the
                    # peer has them while the loop reads the other sockets.
                    entry.dirty = False
                    channel.on_writable()
        except Exception as exc:
            self._failed(entry, exc)
            return
        self._sync(entry)

    def _sync(self, entry: _Entry) -> None:
        if not entry.live:
            return
        channel = entry.channel
        events = channel.wanted_events
        if events != entry.events:
            self.poller.modify(entry.fd, events, entry)
            entry.events = events
        deadline = channel.next_deadline()
        if deadline is not None and deadline != entry.timer_at:
            entry.timer_at = deadline
            heapq.heappush(self._timers, (deadline, next(self._seq), entry))

    def _failed(self, entry: _Entry, exc: Exception) -> None:
        channel = entry.channel
        try:
            channel.handler_failed(exc)
        except Exception:
            logger.exception("ws4py loop: %r failed to handle an error; closing it", channel)
            with contextlib.suppress(Exception):
                channel.closed_by_loop()
        self._sync(entry)

    def _flush_dirty(self) -> None:
        dirty, self._dirty = self._dirty, []
        for entry in dirty:
            if not entry.dirty or not entry.live:
                continue  # flushed after its read already, or gone
            entry.dirty = False
            try:
                entry.channel.on_writable()
            except Exception as exc:
                self._failed(entry, exc)
                continue
            self._sync(entry)

    def _run_calls(self) -> None:
        calls = self._calls
        while calls:
            try:
                calls.popleft()()
            except IndexError:
                return  # another thread ran the last one
            except Exception:
                logger.exception("ws4py loop: a queued call failed")

    def _run_timers(self) -> None:
        timers = self._timers
        now = time.monotonic()
        while timers and timers[0][0] <= now:
            deadline, _, entry = heapq.heappop(timers)
            if entry.timer_at != deadline or not entry.live:
                continue  # superseded by a later deadline, or gone
            entry.timer_at = None
            try:
                entry.channel.on_timer(now)
            except Exception as exc:
                self._failed(entry, exc)
                continue
            self._sync(entry)

    def _register(self, channel: Channel) -> None:
        if id(channel) in self._entries:
            return
        if self.finished:
            channel.closed_by_loop()
            return
        fd = channel.fileno()
        if fd < 0:
            return  # closed before its turn came
        entry = _Entry(channel, fd)
        self._entries[id(channel)] = entry
        with self.lock:
            self.channels[fd] = channel
        events = channel.wanted_events
        if self.poller.is_registered(fd):
            # A socket closed without being detached left its number behind, and a new one
            # got it: register() would keep the stale entry (it ignores a repeat, as in 0.6).
            self.poller.unregister(fd)
        self.poller.register(fd, events, entry)
        entry.events = events
        try:
            channel.on_attached()
        except Exception as exc:
            self._failed(entry, exc)
            return
        self._sync(entry)

    def _drain_wakeups(self) -> None:
        try:
            # A wake-up is one byte and at most one is pending (the flag below): a read that
            # comes back short emptied the socket, without a second read to learn so.
            while len(self._wake_r.recv(4096)) == 4096:
                pass
        except OSError:
            pass
        # Cleared only once the socket is empty: a wake-up sent during the drain
        # would be swallowed, and the flag would then keep every later one from being sent.
        # The calls queued meanwhile run right after this, in the same iteration.
        self._wake_pending = False

    def _shutdown(self) -> None:
        self.finished = True
        self._run_calls()
        for entry in list(self._entries.values()):
            try:
                entry.channel.closed_by_loop()
            except Exception:
                logger.exception("ws4py loop: closing %r failed", entry.channel)
            self.detach(entry.channel)
        self.poller.release()
        self._wake_r.close()
        self._wake_w.close()
