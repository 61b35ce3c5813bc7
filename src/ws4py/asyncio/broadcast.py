"""``broadcast``: one message to many connections, framed once, written without waiting."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable
from typing import NamedTuple, Protocol

from .. import fanout
from ..protocol import Connection as CoreConnection
from ..protocol import frames

__all__ = ["Broadcastable", "Skipped", "broadcast"]


class Broadcastable(Protocol):
    """What :func:`broadcast` sends to: a :mod:`ws4py.asyncio` connection (any
    :class:`~ws4py.asyncio.endpoint.Endpoint`) or a callbacks-API
    :class:`ws4py.async_websocket.WebSocket`."""

    outlet: fanout.OutletLike

    def broadcast_core(self) -> CoreConnection | str: ...

    def write_frame_soon(self, data: bytes) -> None: ...

    def arm_outlet(self) -> bool: ...

    def cork_frame(self, data: bytes) -> bool: ...

    def take_frames(self) -> bytes | None: ...

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

    The first :data:`STRAIGHT_PER_ROUND` messages of a round go straight to
    the sockets of the connections whose outlet is armed (nothing queued
    before them), one ``send()`` each from C with no Python per connection
    (:func:`ws4py.fanout.send_ready`); the others are checked one by one (and
    armed for the next time when they can be). The messages broadcast after
    them in the same round are corked on each connection and, when the round
    ends, each connection's frames go out joined, again straight where they
    can: a burst costs a few system calls per connection per round, not one
    per message.
    """

    __slots__ = ("corked", "straight_left")

    def __init__(self) -> None:
        #: How many more broadcasts of this round go straight (see STRAIGHT_PER_ROUND).
        self.straight_left = STRAIGHT_PER_ROUND
        #: The connections whose cork a broadcast of this round opened (``cork_frame``).
        self.corked: list[Broadcastable] = []


#: The broadcasts of a loop round that go straight to the armed outlets, one ``send()`` each from C;
#: those after them are corked. A corked message costs Python per connection (the cork, then the
#: re-arm when the round ends), nearly what a ``send()`` costs: corking pays in a burst, while a
#: server a few messages behind still sends from C alone and catches up (with 1, 5,000 subscribers
#: and a message every 20 ms, the first round of two messages tipped the server into corking every
#: round, and the delivery latency stayed two to four times higher; see bench/results/pubsub.md).
STRAIGHT_PER_ROUND = 4

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
    # Connections with the same bytes to send share one call to send_ready.
    batches: dict[bytes, list[Broadcastable]] = {}
    for conn in round_.corked:
        data = conn.take_frames()
        if data is None:  # flushed meanwhile (CORK_LIMIT, a close...)
            continue
        if conn.arm_outlet():
            batches.setdefault(data, []).append(conn)
        else:
            conn.write_rest(data, 0)  # all of it to the transport, behind what it holds
    for data, owners in batches.items():
        _send_straight(owners, data)


def _send_straight(owners: list[Broadcastable], data: bytes) -> None:
    """``data`` straight to the sockets of ``owners`` (armed), one ``send()`` each from C;
    what a socket did not take goes to its connection's transport, before anything else."""
    for index, sent in fanout.send_ready([conn.outlet for conn in owners], data):
        owners[index].write_rest(data, max(sent, 0))


def _queue(
    connections: Iterable[Broadcastable],
    payload: bytes,
    binary: bool,
    shared: bytes,
    corked: list[Broadcastable] | None,
    skipped: list[Skipped],
) -> None:
    """The frame of each connection, to be written when the caller yields (or the round ends)."""
    for conn in connections:
        core = conn.broadcast_core()
        if isinstance(core, str):
            skipped.append(Skipped(conn, core))
        elif not core.frames_shareable:
            conn.write_frame_soon(core.send_binary(payload) if binary else core.send_text(payload))
        elif corked is None:
            conn.write_frame_soon(shared)
        elif conn.cork_frame(shared):
            corked.append(conn)


def broadcast(connections: Iterable[Broadcastable], message: str | bytes) -> list[Skipped]:
    """Send ``message`` to every open connection in ``connections`` now, and return the skipped ones.

    It does not wait: each frame goes to the connection's socket now (the
    first :data:`STRAIGHT_PER_ROUND` messages of a loop round) or when the
    caller yields (more broadcasts made in a row reach each peer in one write),
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
    # What every connection whose frames are shareable gets (see CoreConnection.frames_shareable).
    shared = frames.build_frame(frames.WHOLE_BINARY if binary else frames.WHOLE_TEXT, payload, None)
    skipped: list[Skipped] = []
    round_ = _this_round()
    if round_ is None:
        _queue(connections, payload, binary, shared, None, skipped)
        return skipped
    if not round_.straight_left:
        _queue(connections, payload, binary, shared, round_.corked, skipped)
        return skipped
    # One of the first messages of a round: straight to every armed outlet at once; the others one by one.
    round_.straight_left -= 1
    conns = connections if isinstance(connections, (list, tuple)) else list(connections)
    armed: list[Broadcastable] = []
    others: list[Broadcastable] = []
    for index, sent in fanout.send_ready([conn.outlet for conn in conns], shared):
        conn = conns[index]
        if sent >= 0:
            conn.write_rest(shared, sent)
        elif conn.arm_outlet():
            armed.append(conn)
        else:
            others.append(conn)
    if armed:
        _send_straight(armed, shared)
    _queue(others, payload, binary, shared, round_.corked, skipped)
    return skipped
