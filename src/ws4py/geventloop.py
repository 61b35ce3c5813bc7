"""A :class:`ws4py.channel.Loop` that drives one websocket in one greenlet (gevent).

The threaded stack's :class:`~ws4py.websocket.WebSocket` is driven through
its channel methods (``on_readable``, ``on_writable``, ``on_timer``...) by an
event loop. Under gevent each connection already has a greenlet of its own
(the server's handler, the client's), so :class:`GreenletLoop` is that loop,
for one channel, in that greenlet: it waits on gevent's hub (an io watcher
on the socket, a timer for the channel's deadline) and calls the channel's
handlers, with no poller, wake-up socket pair or read buffer of its own
(one buffer per hub is shared: a handler call never switches greenlets
between the read and the core's parsing of it). The protocol stays in the
websocket and its core; this module only waits and dispatches.

Other greenlets may send, close or terminate the websocket: what has to
run in the driving greenlet is queued (:meth:`GreenletLoop.call_soon`) and
the loop woken up.

After a read the hub keeps polling without sleeping for
:attr:`GreenletLoop.busy_poll` (100 µs; one deadline per hub), as the
threaded :class:`~ws4py.loop.EventLoop` does: the next message of a
conversation is seen at once instead of after a wake-up of the thread.

After a read, the loop reads again before it waits, as a gevent socket's
``recv`` does: a peer on the same CPU has often answered by then, and the
hub's round trip (a switch, a poll, a switch back) is saved (see
:attr:`GreenletLoop.read_ahead`).

Why not :meth:`WebSocket.run() <ws4py.websocket.WebSocket.run>` (a private
:class:`~ws4py.loop.EventLoop` per websocket) in the greenlet, under
monkey-patching: it works, but each connection then holds a poller, a
wake-up socket pair (two descriptors) and a 64 KiB read buffer of its own,
and waits through gevent's emulated ``poll``; measured on the 50-connection
echo (16 in flight) this loop is 20-40 % faster (16 B to 64 KiB), and 38 %
in lockstep.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from gevent.monkey import get_original

from gevent import get_hub, getcurrent

from .channel import READ, WRITE, Channel
from .loop import spare_cpu

__all__ = ["GreenletLoop", "busy_polling", "read_buffer"]

logger = logging.getLogger("ws4py")

#: Bytes read from a socket at a time, into the one buffer of the hub (one per hub,
#: not per connection): 256 KiB, as ws4py.asyncio's, so that a read takes several
#: 64 KiB frames, not one and a part (fewer reads and turns, a frame split less often).
READ_SIZE = 256 * 1024

_buffers: weakref.WeakKeyDictionary[Any, memoryview] = weakref.WeakKeyDictionary()

#: The lock of :mod:`_thread` even once gevent patched it (see GreenletLoop.channel_lock).
_allocate_lock: Callable[[], Any] = get_original("_thread", "allocate_lock")

_TIMER = 4  # what the timer's wake-up says (READ and WRITE are 1 and 2)
_WAKE = 8  # another greenlet has work for the loop


class _HubSpinner:
    """Keeps a hub polling without sleeping until a deadline (see :attr:`GreenletLoop.busy_poll`).

    An active idle watcher makes the hub's loop poll with no timeout; it stops
    itself at the deadline, and the hub sleeps in its poller again.
    """

    __slots__ = ("deadline", "watcher")

    def __init__(self, hub: Any) -> None:
        self.deadline = 0.0
        self.watcher = hub.loop.idle()

    def keep_busy(self, seconds: float) -> None:
        self.deadline = time.perf_counter() + seconds
        if not self.watcher.active:
            self.watcher.start(self._check)

    def _check(self) -> None:
        if time.perf_counter() >= self.deadline:
            self.watcher.stop()


_spinners: weakref.WeakKeyDictionary[Any, _HubSpinner | None] = weakref.WeakKeyDictionary()


def _spinner(hub: Any) -> _HubSpinner | None:
    """The hub's spinner, made once; ``None`` in a process bound to one CPU (see ``spare_cpu``)."""
    try:
        return _spinners[hub]
    except KeyError:
        spinner = _spinners[hub] = _HubSpinner(hub) if spare_cpu() else None
        return spinner


def busy_polling() -> bool:
    """Whether the current thread's hub polls without sleeping now (see
    :attr:`GreenletLoop.busy_poll`): for a while after one of its loops handled a read."""
    spinner = _spinners.get(get_hub())
    return spinner is not None and bool(spinner.watcher.active)


def read_buffer() -> memoryview:
    """The read buffer of the current thread's hub, shared by the greenlets it runs."""
    hub = get_hub()
    buffer = _buffers.get(hub)
    if buffer is None:
        buffer = _buffers[hub] = memoryview(bytearray(READ_SIZE))
    return buffer


class GreenletLoop:
    """Drives one channel in the greenlet that calls :meth:`run` (see the module docstring)."""

    #: Another greenlet's writes wait in the channel's buffer too: the driving greenlet
    #: flushes them as soon as the writer yields, so a broadcast of many messages costs
    #: each peer one system call, not one per message (one OS thread: nothing is gained
    #: by writing from the caller at once).
    corks_all_writes = True
    #: Seconds the hub keeps polling without sleeping after this loop handled a read,
    #: before it sleeps (as :attr:`ws4py.loop.EventLoop.busy_poll`, which says why);
    #: 0 turns it off, and so does a process bound to one CPU. One deadline per hub:
    #: the busy polling costs at most this much CPU per burst of activity of all its
    #: connections together.
    busy_poll = 0.0001
    #: Reads the loop makes in a row without waiting for the hub, each right after
    #: the previous one's answers are written: a peer that answers at once (a
    #: lockstep client on the same CPU, a pipelining one) has its next message read
    #: with no poll and no two greenlet switches (measured: +40 % echoed 16 B
    #: messages/s with server and client on one CPU). Then the hub gets its turn,
    #: so the other greenlets do too. 0 turns it off.
    read_ahead = 16
    #: After a read ahead that found nothing (its cost: one failed ``recv``), the
    #: next this many waits read no further ahead: a conversation whose messages
    #: come later (another CPU's client, a person) pays one failed read in that many.
    read_ahead_backoff = 16

    def __init__(self) -> None:
        self.read_buffer = read_buffer()
        #: :func:`threading.get_ident` in the driving greenlet (a greenlet's own once
        #: gevent patched :mod:`threading`), ``None`` until :meth:`run`.
        self.thread_id: int | None = None
        #: True once :meth:`run` returned.
        self.finished = False
        self._hub = get_hub()
        self._spinner = _spinner(self._hub) if self.busy_poll else None
        self._greenlet: Any = None
        self._channel: Channel | None = None
        self._calls: deque[Callable[[], Any]] = deque()
        self._dirty = False
        self._waiting: Any = None  # the greenlet in _wait, switched back by _ready
        self._woken = False
        self._reads_ahead = 0  # reads the lean path may still make before waiting
        self._read_ahead_pause = 0  # waits left before reading ahead again
        self._read_watcher: Any = None
        self._write_watcher: Any = None
        self._timer: Any = None

    # -- the channel's services (ws4py.channel.Loop) ---------------------------------

    @staticmethod
    def channel_lock() -> Any:
        """The lock for a channel this loop drives: the OS thread's own lock, not gevent's.

        All the greenlets of a loop run in one OS thread and switch only where they
        block; a websocket holds its lock only around non-blocking work (the core,
        a non-blocking socket's send and read, closing it), never across a switch,
        so no greenlet ever finds it taken and the plain lock is enough (0.17 us a
        pair against gevent's 0.34). A :class:`threading.Condition` on it still
        works: its waiters are gevent's.
        """
        return _allocate_lock()

    def _elsewhere(self) -> bool:
        return getcurrent() is not self._greenlet

    def _wake(self) -> None:
        """Have the driving greenlet look again, if it waits (from another greenlet)."""
        if self._waiting is not None and not self._woken:
            self._woken = True
            self._hub.loop.run_callback(self._ready, _WAKE)

    def call_soon(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` in the driving greenlet soon."""
        self._calls.append((lambda: function(*args)) if args else function)
        if self.finished:
            self._run_calls()  # over: no one else will
        elif self._elsewhere():
            self._wake()

    def serves_elsewhere(self) -> bool:
        """Whether the loop is not over and the caller is another greenlet (it may not
        have started yet): the channel's work is then handed to it."""
        return not self.finished and self._elsewhere()

    def in_loop(self) -> bool:
        """Whether the caller is the driving greenlet."""
        return not self._elsewhere()

    def update(self, channel: Channel) -> None:
        """The loop reads the channel's wishes before every wait: only wake it up."""
        if self._elsewhere():
            self._wake()

    update_soon = update

    def flush_soon(self, channel: Channel) -> None:
        """Call ``channel.on_writable()`` before the next wait."""
        self._dirty = True
        if getcurrent() is not self._greenlet:  # _elsewhere(), inline: this runs per message
            self._wake()

    def detach(self, channel: Channel) -> bool:
        """Stop driving ``channel``; :meth:`run` returns. False if it was not driven."""
        if self._channel is not channel or channel is None:
            return False
        self._channel = None
        # Its socket is about to be closed: no watcher may stay on the descriptor.
        self._stop_watchers()
        if self._elsewhere():
            self._wake()
        return True

    # -- running ---------------------------------------------------------------------------

    def run(self, channel: Channel) -> None:
        """Drive ``channel`` in the calling greenlet until it is detached (the connection is
        over); on the way out a channel still attached is closed (``closed_by_loop``)."""
        self._greenlet = getcurrent()
        self.thread_id = threading.get_ident()
        self._channel = channel
        try:
            self._attach(channel)
            self._loop()
        finally:
            self._shutdown()

    def start(self, channel: Channel) -> bool:
        """Take ``channel`` in the calling greenlet without waiting (its ``on_attached()``
        runs: what waits is written), for an API that drives it from its own blocking calls
        (:meth:`step`, :meth:`flush`). False if the loop ran already."""
        if self._greenlet is not None or self.finished:
            return False
        self._greenlet = getcurrent()
        self.thread_id = threading.get_ident()
        self._channel = channel
        self._attach(channel)
        return True

    def step(self, channel: Channel) -> bool:
        """One turn of the loop in the calling greenlet (which becomes the driving one; the
        first turn starts it, see :meth:`start`): run what is queued, flush, wait for the socket or
        a timer, dispatch. False once the connection is over."""
        if self._greenlet is None:
            self.start(channel)
        if self._channel is not None:
            self._greenlet = getcurrent()
            self.thread_id = threading.get_ident()
            self._turn()
        if self._channel is None:
            if not self.finished:
                self._shutdown()
            return False
        return True

    def flush(self, channel: Channel) -> None:
        """Run what is queued and write what waits, without waiting (driving greenlet)."""
        if self._channel is channel:
            self._housekeep(channel)

    def _attach(self, channel: Channel) -> None:
        fd = channel.fileno()
        if fd < 0:
            self._channel = None
            return
        loop = self._hub.loop
        self._read_watcher = loop.io(fd, READ)
        # The write watcher only once a write waits (most connections never fill their socket).
        try:
            channel.on_attached()
        except Exception as exc:
            self._failed(channel, exc)

    def _loop(self) -> None:
        while self._channel is not None:
            self._turn()
            channel = self._channel
            if channel is not None and self._lean(channel):
                # The common case (nothing queued, no timer, only READ wanted): a lockstep
                # echo goes round the lean path, each read answered in one write.
                while self._lean_turn(channel):
                    pass

    def _lean(self, channel: Channel) -> bool:
        """Whether the next wait is for READ alone, with nothing to do before it and no timer."""
        return not (self._calls or self._dirty) and channel.next_deadline() is None and channel.wanted_events == READ

    def _lean_turn(self, channel: Channel) -> bool:
        """:meth:`_turn` for the common case :meth:`_lean` checked: wait for READ (the watcher
        started already), read, write the answers; whether the next turn is lean again."""
        if self._reads_ahead:
            self._reads_ahead -= 1
            if self._read_and_answer(channel):
                return self._lean_again(channel)
            if self._channel is not channel:
                return False
            # Nothing was there: wait for the hub, and for a while do not read ahead.
            self._reads_ahead = 0
            self._read_ahead_pause = self.read_ahead_backoff
        read_watcher = self._read_watcher
        if not read_watcher.active:
            read_watcher.start(self._ready, READ)
        write_watcher = self._write_watcher
        if write_watcher is not None and write_watcher.active:
            write_watcher.stop()
        self._woken = False
        self._waiting = getcurrent()
        try:
            events = self._hub.switch()
        finally:
            self._waiting = None
        if self._channel is not channel:
            return False
        if events != READ:
            if type(events) is int and events:
                self._dispatch(channel, events, None)
            return False
        spinner = self._spinner
        if spinner is not None:
            spinner.keep_busy(self.busy_poll)
        if self._read_ahead_pause:
            self._read_ahead_pause -= 1
        else:
            self._reads_ahead = self.read_ahead
        if not self._read_and_answer(channel) and self._channel is channel:
            self._reads_ahead = 0  # a spurious wake-up: nothing to read ahead of
        return self._lean_again(channel)

    def _read_and_answer(self, channel: Channel) -> bool:
        """Read, then write the answers; whether the read found bytes (see ``on_readable``)."""
        try:
            read = channel.on_readable() is not False
            if self._dirty and self._channel is channel:
                self._dirty = False
                channel.on_writable()
        except Exception as exc:
            self._failed(channel, exc)
            return False
        return read

    def _lean_again(self, channel: Channel) -> bool:
        """:meth:`_lean`, for the channel the turn served (it may have been detached)."""
        return (
            self._channel is channel
            and not (self._calls or self._dirty)
            and channel.next_deadline() is None
            and channel.wanted_events == READ
        )

    def _housekeep(self, channel: Channel) -> None:
        if self._calls:
            self._run_calls()
        if self._dirty and self._channel is channel:
            self._dirty = False
            try:
                channel.on_writable()
            except Exception as exc:
                self._failed(channel, exc)

    def _turn(self) -> None:
        channel = self._channel
        assert channel is not None
        self._housekeep(channel)
        if self._channel is not channel:
            return
        if self._calls or self._dirty:
            return  # more to do before waiting
        deadline = channel.next_deadline()
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        events = self._wait(channel.wanted_events, timeout)
        if self._channel is channel:
            self._dispatch(channel, events, deadline)

    def _dispatch(self, channel: Channel, events: int, deadline: float | None) -> None:
        """Call the channel's handlers for what the wait returned."""
        try:
            if events & WRITE:
                channel.on_writable()
            if events & READ and self._channel is channel:
                if self._spinner is not None:
                    self._spinner.keep_busy(self.busy_poll)
                channel.on_readable()
                if self._dirty and self._channel is channel:
                    # The answers this read caused go out now, in one system call.
                    self._dirty = False
                    channel.on_writable()
            if deadline is not None and self._channel is channel:
                now = time.monotonic()
                if now >= deadline:
                    channel.on_timer(now)
        except Exception as exc:
            self._failed(channel, exc)

    def _wait(self, events: int, timeout: float | None) -> int:
        """Wait for ``events`` on the socket, ``timeout`` seconds or a wake-up; what came.

        The io watchers stay started from one wait to the next while their event is
        wanted (a lockstep echo waits for READ turn after turn): no watcher is started
        and stopped, and no waiter made, per turn; :meth:`_ready` switches back here.
        """
        read_watcher, write_watcher = self._read_watcher, self._write_watcher
        ready = self._ready
        if events & READ:
            if not read_watcher.active:
                read_watcher.start(ready, READ)
        elif read_watcher.active:
            read_watcher.stop()
        if events & WRITE:
            if write_watcher is None:
                write_watcher = self._write_watcher = self._hub.loop.io(read_watcher.fd, WRITE)
            if not write_watcher.active:
                write_watcher.start(ready, WRITE)
        elif write_watcher is not None and write_watcher.active:
            write_watcher.stop()
        timer = None
        if timeout is not None:
            timer = self._timer = self._hub.loop.timer(timeout)
            timer.start(ready, _TIMER)
        self._woken = False
        self._waiting = getcurrent()
        try:
            result = self._hub.switch()
        finally:
            self._waiting = None
            if timer is not None:
                timer.close()
                self._timer = None
        # Anything else switching in (none of ws4py's) is a spurious wake-up: the turn looks again.
        return result if type(result) is int else 0

    def _ready(self, events: int) -> None:
        """The hub's callback of the watchers, the timer and :meth:`_wake`."""
        waiting = self._waiting
        if waiting is not None:
            self._waiting = None
            waiting.switch(events)
        elif events & (READ | WRITE):
            # The driving greenlet blocks elsewhere (a callback's own gevent call): a
            # level-triggered watcher would fire on every turn of the hub until then;
            # the next wait starts it again.
            watcher = self._read_watcher if events == READ else self._write_watcher
            if watcher is not None:
                watcher.stop()

    def _stop_watchers(self) -> None:
        for watcher in (self._read_watcher, self._write_watcher):
            if watcher is not None:
                watcher.stop()

    def _failed(self, channel: Channel, exc: Exception) -> None:
        try:
            channel.handler_failed(exc)
        except Exception:
            logger.exception("ws4py greenlet loop: %r failed to handle an error; closing it", channel)
            with contextlib.suppress(Exception):
                channel.closed_by_loop()

    def _run_calls(self) -> None:
        calls = self._calls
        while calls:
            try:
                calls.popleft()()
            except Exception:
                logger.exception("ws4py greenlet loop: a queued call failed")

    def _shutdown(self) -> None:
        self.finished = True
        self._run_calls()
        channel = self._channel
        if channel is not None:
            try:
                channel.closed_by_loop()
            except Exception:
                logger.exception("ws4py greenlet loop: closing %r failed", channel)
            self._channel = None
        for watcher in (self._read_watcher, self._write_watcher):
            if watcher is not None:
                watcher.close()
        self._read_watcher = self._write_watcher = None
