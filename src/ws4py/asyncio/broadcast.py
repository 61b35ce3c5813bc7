"""``broadcast``: one message to many connections, framed once, written without waiting."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterable
from typing import NamedTuple, Protocol

from .. import fanout
from ..protocol import Connection as CoreConnection
from ..protocol import frames
from .writing import CORK_LIMIT

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


class _Tail:
    """The frames a round's broadcasts to one tuple of connections owe its armed ones (sent when it ends)."""

    __slots__ = ("connections", "others", "outlets", "owed", "size")

    def __init__(self, connections: tuple[Broadcastable, ...]) -> None:
        self.connections = connections
        self.outlets = [conn.outlet for conn in connections]
        self.owed = fanout.Owed()
        #: The connections that get each frame on their own (not armed, or they paid what they owed).
        self.others: list[Broadcastable] = []
        self.size = 0
        for index in fanout.owe(self.outlets, self.owed):
            conn = connections[index]
            if conn.arm_outlet() and not fanout.owe([self.outlets[index]], self.owed):
                continue  # armed now, and owes like the others
            self.others.append(conn)

    def add(self, frame: bytes) -> None:
        """``frame`` to every connection: owed by the armed ones, the others take it one by one after this."""
        owed = self.owed
        if owed.paid:  # their owners wrote what they owed: from now on they take frames on their own
            paid = {id(outlet) for outlet in owed.paid}
            owed.paid.clear()
            self.others += [conn for conn, out in zip(self.connections, self.outlets, strict=True) if id(out) in paid]
        owed.frames.append(frame)
        self.size += len(frame)

    @property
    def full(self) -> bool:
        """Whether the frames owed should go now rather than wait for the round to end."""
        return self.size >= TAIL_LIMIT or len(self.owed.frames) >= CORK_LIMIT

    def send(self) -> None:
        """The frames owed, joined, to each connection that still owes them; one ``send()`` each from C."""
        frames = self.owed.frames
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        for index, sent in fanout.send_owed(self.outlets, self.owed, data):
            self.connections[index].write_rest(data, max(sent, 0))


class _Round:
    """What broadcasts did on one event loop since it last went round.

    A broadcast to a tuple of connections (what :mod:`ws4py.pubsub` hands
    over) makes the connections whose outlet is armed (nothing queued before
    it) owe the frame, from C with no Python per connection
    (:func:`ws4py.fanout.owe`); the frames of every broadcast to the same
    tuple in the round pile up in one :class:`_Tail`, and when the round ends
    they go out joined, one ``send()`` per connection from C
    (:func:`ws4py.fanout.send_owed`). A connection that writes anything
    before that writes what it owes first. However many messages a round
    holds (a burst, or a server that fell behind), each connection costs one
    system call a round.

    A broadcast to another iterable: the first :data:`STRAIGHT_PER_ROUND` of
    a round go straight to the armed outlets, one ``send()`` each from C
    (:func:`ws4py.fanout.send_ready`); the messages after them are corked on
    each connection and go out joined when the round ends.

    Either way, connections not armed are checked one by one (and armed for
    the next time when they can be).
    """

    __slots__ = ("corked", "straight_left", "tails")

    def __init__(self) -> None:
        #: How many more broadcasts of this round go straight (see STRAIGHT_PER_ROUND).
        self.straight_left = STRAIGHT_PER_ROUND
        #: The connections whose cork a broadcast of this round opened (``cork_frame``).
        self.corked: list[Broadcastable] = []
        #: The tails of the tuples broadcast to in this round, by the tuple's id (the tail keeps the tuple).
        self.tails: dict[int, _Tail] = {}


#: The broadcasts of a loop round to an iterable that is not a tuple that go straight to the armed
#: outlets, one ``send()`` each from C; those after them are corked. A corked message costs Python per
#: connection (the cork, then the re-arm when the round ends), nearly what a ``send()`` costs:
#: corking pays in a burst, while a server a few messages behind still sends from C alone.
STRAIGHT_PER_ROUND = 4
#: The frames a tail holds before they are sent without waiting for the round to end (bytes; and
#: at most CORK_LIMIT frames).
TAIL_LIMIT = 64 * 1024

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
    """Write what the round owes and corked: each connection's frames joined, on its socket where nothing waits."""
    if _rounds.get(loop) is round_:
        del _rounds[loop]
    for tail in round_.tails.values():
        tail.send()
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

    It does not wait: each frame goes to the connection's socket when the
    caller yields (broadcasts made in a row to the same tuple of connections
    reach each peer in one write), or now (the first
    :data:`STRAIGHT_PER_ROUND` messages of a loop round to an iterable that
    is not a tuple), and a connection that cannot take it (see :class:`Skipped`) is left out
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
    if type(connections) is tuple:
        key = id(connections)
        tail = round_.tails.get(key)
        if tail is None:
            tail = round_.tails[key] = _Tail(connections)
        tail.add(shared)
        _queue(tail.others, payload, binary, shared, round_.corked, skipped)
        if tail.full:
            del round_.tails[key]
            tail.send()
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
