"""The write side of an asyncio WebSocket: corking, large frames without copies, and waiting for the buffer to drain.

:class:`WriteSide` is the base of :class:`~ws4py.asyncio.endpoint.Endpoint`:
it only moves framed bytes to the transport. What to frame is the core's
business, when to close is the endpoint's.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable

from .. import fanout

__all__ = ["CORK_LIMIT", "WriteSide", "direct_socket_fd"]

#: At most this many frames wait in a cork before they are written.
CORK_LIMIT = 64

# asyncio's writelines sends a list with one sendmsg from Python 3.12; before, it joins. Until
# 3.12.9 and 3.13.2 it also never paused the protocol at the high-water mark (CPython gh-127655),
# so send() would not wait for a peer that does not read: those versions take the writev path.
_VECTORED_WRITELINES = sys.version_info >= (3, 13, 2) or (3, 12, 9) <= sys.version_info < (3, 13)
#: Below this, a large frame's header and payload are joined into one write (no vectored writelines).
_JOIN_LIMIT = 256 * 1024
# The plain socket transport when its writelines is not used, whose socket a large frame may be
# written to directly. asyncio has no public name for that class (nor a public vectored write
# before 3.12): getattr on asyncio's own module, and nothing breaks if a version drops it (large
# frames are then joined).
_SELECTOR_TRANSPORT: type | None = None
if not _VECTORED_WRITELINES and hasattr(os, "writev"):
    import asyncio.selector_events

    _SELECTOR_TRANSPORT = getattr(asyncio.selector_events, "_SelectorSocketTransport", None)


def writev_fd(transport: asyncio.BaseTransport) -> int:
    """The descriptor a large frame may be written to with ``os.writev``, or -1.

    Only for the plain (not TLS) socket transport when its writelines is not
    used (see ``_VECTORED_WRITELINES``): without it a large frame costs a copy of its payload
    (header and payload joined) or a second system call (and a packet of its
    own for the header, TCP_NODELAY being set).
    """
    if _SELECTOR_TRANSPORT is None or type(transport) is not _SELECTOR_TRANSPORT:
        return -1
    sock = transport.get_extra_info("socket")
    return -1 if sock is None else int(sock.fileno())


# The transports that write a socket's bytes as they are, and only from their own buffer: asyncio's
# plain socket transport and uvloop's TCP transport (by name: neither is a public class), not TLS.
_PLAIN_SOCKET_TRANSPORTS = frozenset(
    {("asyncio.selector_events", "_SelectorSocketTransport"), ("uvloop.loop", "TCPTransport")}
)


def direct_socket_fd(transport: asyncio.BaseTransport) -> int:
    """The descriptor of ``transport``'s socket if bytes may be written to it directly, or -1.

    Only for a plain socket transport (asyncio's or uvloop's; not TLS): while
    its buffer is empty, a ``send()`` on its socket is what its own ``write``
    would do, so :func:`ws4py.asyncio.broadcast` can send one frame to many
    such sockets in one call (:func:`ws4py.fanout.send_ready`). Both transports
    call ``connection_lost`` before they close their socket, so a descriptor
    a connection holds until then is never another connection's.
    """
    cls = type(transport)
    if (cls.__module__, cls.__name__) not in _PLAIN_SOCKET_TRANSPORTS:
        return -1
    sock = transport.get_extra_info("socket")
    return -1 if sock is None else int(sock.fileno())


# Emptied cork lists for the next cork to open (at most _SPARE_MAX kept): a fan-out to thousands of
# connections then allocates no list per connection, which would make the garbage collector run
# (and, in time, walk every connection alive) while the fan-out goes on.
_spare_lists: list[list[bytes]] = []
_SPARE_MAX = 16384


def _cork_list(data: bytes) -> list[bytes]:
    """A cork holding ``data``: a spare list if there is one."""
    if _spare_lists:
        pending = _spare_lists.pop()
        pending.append(data)
        return pending
    return [data]


def _recycle(pending: list[bytes]) -> None:
    pending.clear()
    if len(_spare_lists) < _SPARE_MAX:
        _spare_lists.append(pending)


class WriteSide(asyncio.BufferedProtocol):
    """Framed bytes to the transport, in as few system calls as they can go.

    - :meth:`write_frame` writes now, or after the frames gathered before it
      while corked; :meth:`write_frame_soon` corks until the running callback
      or task yields (many small frames, one system call); :meth:`flush_frames`
      uncorks now.
    - :meth:`write_large_frame` writes a large frame's header and payload with
      no copy of the payload where the transport allows it.
    - :meth:`drain` waits while the transport holds more than its high-water
      mark (``pause_writing`` / ``resume_writing``).
    - :attr:`outlet` lets a fan-out send on the socket straight, in C, while
      nothing would go before what it sends; :meth:`write_rest` takes what
      such a send did not.
    """

    __slots__ = (
        "_closed",
        "_direct_fd",
        "_drain_waiters",
        "_loop",
        "_pending",
        "_transport",
        "_write_paused",
        "_writev_fd",
        "outlet",
    )

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._writev_fd = -1  # see writev_fd
        self._direct_fd = -1  # see direct_socket_fd
        #: Resolved when the transport is gone.
        self._closed: asyncio.Future[None] = self._loop.create_future()
        self._write_paused = False
        # Frames held back to go out in one write (see write_frame_soon); None when not corking.
        self._pending: list[bytes] | None = None
        self._drain_waiters: list[asyncio.Future[None]] = []
        #: Where :func:`ws4py.asyncio.broadcast` sends a shared frame straight (:func:`ws4py.fanout.send_ready`).
        #: Its ``fd`` is the socket's only while armed (``Endpoint.arm_outlet`` checked that nothing would go
        #: before the frame) and is set back to -1 (:meth:`_disarm`) by anything that might change that:
        #: every write or cork here, every event from the transport, every close. Until the next check,
        #: broadcasts take the Python path for this connection.
        self.outlet = fanout.Outlet()

    def _disarm(self) -> None:
        """Something is about to be written, corked or changed: no frame may go straight any more.

        Frames a broadcast owes this connection (:func:`ws4py.fanout.owe`) are
        written first, in order, and the broadcast is told (``paid``): what it
        sends after this comes the Python way.
        """
        outlet = self.outlet
        outlet.fd = -1
        owed = outlet.owed
        if owed is not None:
            outlet.owed = None
            owed.paid.append(outlet)
            transport = self._transport
            if owed.frames and transport is not None and not transport.is_closing():
                transport.write(b"".join(owed.frames))

    @property
    def closed(self) -> bool:
        """Whether the connection is closed (the transport is gone)."""
        return self._closed.done()

    def add_close_callback(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` on the event loop once the connection is closed (soon, if it already is).

        For code that keeps connections, such as :mod:`ws4py.pubsub`, to let
        them go without the application's help.
        """
        self._closed.add_done_callback(lambda _: callback())

    def write_frame(self, data: bytes) -> None:
        """Write ``data`` now, or after the frames being gathered when corked."""
        self._disarm()
        pending = self._pending
        if pending is not None:
            pending.append(data)
            return
        transport = self._transport
        assert transport is not None
        transport.write(data)

    def write_frame_soon(self, data: bytes) -> None:
        """Write ``data`` when the running callback or task yields, with whatever else is sent until then.

        Many small frames then cost one system call. The gathered frames are
        written at once past :data:`CORK_LIMIT` of them, so the wait stays short.
        """
        pending = self._pending
        if pending is None:
            self._disarm()
            self._pending = _cork_list(data)
            self._loop.call_soon(self.flush_frames)
        else:
            pending.append(data)
            if len(pending) >= CORK_LIMIT:
                self.flush_frames()

    def write_large_frame(self, header: bytes, payload: bytes | memoryview) -> None:
        """A large frame's header and payload, in one system call when that costs no copy of the payload."""
        self._disarm()
        corked = self._pending is not None
        self.flush_frames()
        transport = self._transport
        assert transport is not None
        if not payload:
            transport.write(header)
        elif _VECTORED_WRITELINES or type(transport).__module__.startswith("uvloop"):
            transport.writelines((header, payload))  # sendmsg/writev: no copy
        elif self._writev_fd >= 0:
            self._writev(transport, header, payload)
        elif len(payload) <= _JOIN_LIMIT:
            transport.write(header + payload)  # a copy costs less than a second system call
        else:
            transport.write(header)
            transport.write(payload)
        if corked:
            self._pending = []

    def _writev(self, transport: asyncio.Transport, header: bytes, payload: bytes | memoryview) -> None:
        """Header and payload in one ``writev`` on the socket; what it did not take, to the transport."""
        sent = 0
        # With bytes queued before these (or the transport going), only the
        # transport may write: it appends both to its buffer, one copy either way.
        if not transport.get_write_buffer_size() and not transport.is_closing():
            # Full (BlockingIOError), or broken: the transport meets the same
            # condition on its own write and handles it its own way. (Not
            # contextlib.suppress: three Python calls per large frame.)
            try:  # noqa: SIM105
                sent = os.writev(self._writev_fd, (header, payload))
            except OSError:
                pass
        if sent < len(header):
            transport.write(header[sent:])
            transport.write(payload)
        elif sent < len(header) + len(payload):
            transport.write(memoryview(payload)[sent - len(header) :])

    def cork_frame(self, data: bytes) -> bool:
        """Gather ``data`` for one write with the frames around it; True if this opened the cork.

        Like :meth:`write_frame_soon`, but the caller flushes the cork it
        opened (with :meth:`take_frames`) instead of the event loop, so that a
        fan-out flushes thousands of connections from one callback. Past
        :data:`CORK_LIMIT` frames they are written at once, as there.
        """
        pending = self._pending
        if pending is None:
            self._disarm()
            self._pending = _cork_list(data)
            return True
        pending.append(data)
        if len(pending) >= CORK_LIMIT:
            self.flush_frames()
        return False

    def take_frames(self) -> bytes | None:
        """Uncork without writing: the frames gathered, joined (``None`` if none), which the caller
        writes before anything else (on the socket if it can arm the :attr:`outlet`, else with
        :meth:`write_rest`)."""
        pending = self._pending
        if pending is None:
            return None
        self._pending = None
        data = None if not pending else pending[0] if len(pending) == 1 else b"".join(pending)
        _recycle(pending)
        return data

    def write_rest(self, data: bytes, sent: int) -> None:
        """The part of ``data`` a direct send to the socket did not take, to the transport.

        The transport buffers it and writes it when the socket can take more
        (or, if the send failed, meets the error and closes).
        """
        self._disarm()
        transport = self._transport
        if transport is not None and not transport.is_closing():
            transport.write(data[sent:] if sent else data)

    def flush_frames(self) -> None:
        """Uncork: one write (one system call) for every frame gathered."""
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        self._disarm()
        transport = self._transport
        if pending and transport is not None and not transport.is_closing():
            transport.write(pending[0] if len(pending) == 1 else b"".join(pending))
        _recycle(pending)

    # -- flow control ------------------------------------------------------

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drainers()

    def _wake_drainers(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def drain(self) -> None:
        """Wait until the transport's buffer is under ``write_limit`` again (or the connection is gone)."""
        while self._write_paused and not self._closed.done():
            waiter = self._loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter
