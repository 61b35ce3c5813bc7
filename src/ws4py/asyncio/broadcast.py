"""``broadcast``: one message to many connections, framed once, written without waiting."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable
from typing import NamedTuple, Protocol

from .. import fanout
from ..protocol import Connection as CoreConnection

__all__ = ["Broadcastable", "Skipped", "broadcast"]


class Broadcastable(Protocol):
    """What :func:`broadcast` sends to: a :mod:`ws4py.asyncio` connection (any
    :class:`~ws4py.asyncio.endpoint.Endpoint`) or a callbacks-API
    :class:`ws4py.async_websocket.WebSocket`."""

    def broadcast_core(self) -> CoreConnection | str: ...

    def write_frame_soon(self, data: bytes) -> None: ...

    def broadcast_fd(self) -> int: ...

    def cork_frame(self, data: bytes) -> bool: ...

    def take_frames(self) -> bytes | None: ...

    def direct_fd(self) -> int: ...

    def write_rest(self, data: bytes, sent: int) -> None: ...


class Skipped(NamedTuple):
    """A connection :func:`broadcast` did not write to, and why.

    ``reason`` is ``"closed"`` (not open: still in its handshake, closing or
    closed), ``"slow"`` (its write buffer is over ``write_limit``: the peer
    does not keep up) or ``"busy"`` (a fragmented message is being sent on it).
    """

    connection: Broadcastable
    reason: str


class _Round:
    """What broadcasts did on one event loop since it last went round.

    The first message of a round goes straight to the sockets with nothing
    queued, one ``send()`` each from C (:func:`ws4py.fanout.send_each`). The
    messages broadcast after it in the same round are corked on each
    connection and, when the round ends, each connection's frames go out
    joined, again one ``send()`` per connection from C: a burst, or a server
    that fell behind and finds several messages at once, costs one system
    call per connection per round, not one per message.
    """

    __slots__ = ("corked", "sent_straight")

    def __init__(self) -> None:
        self.sent_straight = False
        #: The connections whose cork a broadcast of this round opened (``cork_frame``).
        self.corked: list[Broadcastable] = []


_rounds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Round] = weakref.WeakKeyDictionary()


def _this_round() -> _Round | None:
    """The running loop's round (``None`` without a running loop: the connections' loops write)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    round_ = _rounds.get(loop)
    if round_ is None:
        round_ = _rounds[loop] = _Round()
        loop.call_soon(_end_round, loop, round_)
    return round_


def _end_round(loop: asyncio.AbstractEventLoop, round_: _Round) -> None:
    """Write what the round corked: each connection's frames joined, on its socket where nothing waits."""
    if _rounds.get(loop) is round_:
        del _rounds[loop]
    # Connections with the same bytes to send share one call to send_each.
    batches: dict[bytes, tuple[list[int], list[Broadcastable]]] = {}
    for conn in round_.corked:
        data = conn.take_frames()
        if data is None:  # flushed meanwhile (CORK_LIMIT, a close...)
            continue
        fd = conn.direct_fd()
        if fd < 0:
            conn.write_rest(data, 0)  # all of it to the transport, behind what it holds
            continue
        batch = batches.get(data)
        if batch is None:
            batch = batches[data] = ([], [])
        batch[0].append(fd)
        batch[1].append(conn)
    for data, (fds, owners) in batches.items():
        _send_each(fds, owners, data)


def _send_each(fds: list[int], owners: list[Broadcastable], data: bytes) -> None:
    """``data`` straight to the sockets ``fds`` (of ``owners``, in step), one ``send()`` each from C;
    what a socket did not take goes to its connection's transport, before anything else."""
    for index, sent in fanout.send_each(fds, data):
        owners[index].write_rest(data, sent)


def broadcast(connections: Iterable[Broadcastable], message: str | bytes) -> list[Skipped]:
    """Send ``message`` to every open connection in ``connections`` now, and return the skipped ones.

    It does not wait: each frame goes to the connection's socket now (the
    first message of a loop round) or when the caller yields (broadcasts made
    in a row reach each peer in one write),
    and a connection that cannot take it (see :class:`Skipped`) is left out
    rather than holding up the others or growing memory. Server connections
    without compression share one frame, built once; a client connection
    (masked) or one compressing gets its own. Order is kept per connection.
    """
    if isinstance(message, str):
        payload, binary = message.encode(), False
    elif isinstance(message, (bytes, bytearray, memoryview)):
        payload, binary = bytes(message), True
    else:
        raise TypeError(f"cannot broadcast {type(message).__name__}: use str or bytes")
    shared: bytes | None = None
    skipped: list[Skipped] = []
    round_ = _this_round()
    # The first message of a round: the connections with nothing queued take the shared frame
    # straight from their sockets, all in one call after this loop (nothing else is written to
    # them before it: order is kept). Later ones: corked, written when the round ends.
    straight = False
    corked: list[Broadcastable] | None = None
    if round_ is not None:
        corked = round_.corked
        if not round_.sent_straight:
            straight = round_.sent_straight = True
    fds: list[int] = []
    direct: list[Broadcastable] = []
    for conn in connections:
        if straight:
            fd = conn.broadcast_fd()
            if fd >= 0:
                if shared is None:
                    core = conn.broadcast_core()
                    assert not isinstance(core, str)
                    shared = core.send_binary(payload) if binary else core.send_text(payload)
                fds.append(fd)
                direct.append(conn)
                continue
        core = conn.broadcast_core()
        if isinstance(core, str):
            skipped.append(Skipped(conn, core))
            continue
        if core.frames_shareable:
            if shared is None:
                shared = core.send_binary(payload) if binary else core.send_text(payload)
            if corked is None:
                conn.write_frame_soon(shared)
            elif conn.cork_frame(shared):
                corked.append(conn)
        else:
            conn.write_frame_soon(core.send_binary(payload) if binary else core.send_text(payload))
    if fds:
        assert shared is not None
        _send_each(fds, direct, shared)
    return skipped
