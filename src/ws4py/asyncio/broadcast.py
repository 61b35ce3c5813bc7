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

    def write_rest(self, data: bytes, sent: int) -> None: ...


class Skipped(NamedTuple):
    """A connection :func:`broadcast` did not write to, and why.

    ``reason`` is ``"closed"`` (not open: still in its handshake, closing or
    closed), ``"slow"`` (its write buffer is over ``write_limit``: the peer
    does not keep up) or ``"busy"`` (a fragmented message is being sent on it).
    """

    connection: Broadcastable
    reason: str


# The event loops on which a broadcast sent straight to the sockets since the loop last went round.
_sent_this_round: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def _first_this_round() -> bool:
    """Whether this is the running loop's first broadcast since it last went round (and mark it so).

    The first message of a round goes straight to the sockets, one ``send()``
    per connection from C; the messages broadcast after it in the same round
    are corked (``write_frame_soon``) and reach each peer in one write when
    the round ends: a burst costs a few system calls per connection, not one
    per message.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no loop runs here: the connections' own loops write
        return False
    if loop in _sent_this_round:
        return False
    _sent_this_round.add(loop)
    loop.call_soon(_sent_this_round.discard, loop)
    return True


def broadcast(connections: Iterable[Broadcastable], message: str | bytes) -> list[Skipped]:
    """Send ``message`` to every open connection in ``connections`` now, and return the skipped ones.

    It does not wait: each frame goes to the connection's socket now or when
    the caller yields (broadcasts made in a row reach each peer in one write),
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
    # The connections with nothing queued take the shared frame straight from their sockets, all in
    # one call after this loop (nothing else is written to them before it: order is kept).
    straight = _first_this_round()
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
            conn.write_frame_soon(shared)
        else:
            conn.write_frame_soon(core.send_binary(payload) if binary else core.send_text(payload))
    if fds:
        assert shared is not None
        for index, sent in fanout.send_each(fds, shared):
            direct[index].write_rest(shared, sent)
    return skipped
