"""``broadcast``: one message to many connections, framed once, written without waiting."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, Protocol

from ..protocol import Connection as CoreConnection

__all__ = ["Broadcastable", "Skipped", "broadcast"]


class Broadcastable(Protocol):
    """What :func:`broadcast` sends to: a :mod:`ws4py.asyncio` connection (any
    :class:`~ws4py.asyncio.endpoint.Endpoint`) or a callbacks-API
    :class:`ws4py.async_websocket.WebSocket`."""

    def broadcast_core(self) -> CoreConnection | str: ...

    def write_frame_soon(self, data: bytes) -> None: ...


class Skipped(NamedTuple):
    """A connection :func:`broadcast` did not write to, and why.

    ``reason`` is ``"closed"`` (not open: still in its handshake, closing or
    closed), ``"slow"`` (its write buffer is over ``write_limit``: the peer
    does not keep up) or ``"busy"`` (a fragmented message is being sent on it).
    """

    connection: Broadcastable
    reason: str


def broadcast(connections: Iterable[Broadcastable], message: str | bytes) -> list[Skipped]:
    """Send ``message`` to every open connection in ``connections`` now, and return the skipped ones.

    It does not wait: each frame goes to the connection's transport when the
    caller yields (broadcasts made in a row reach each peer in one write),
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
    for conn in connections:
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
    return skipped
