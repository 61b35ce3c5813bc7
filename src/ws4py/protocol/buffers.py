"""Large receive buffers, kept for reuse by every connection of the process."""

from __future__ import annotations

__all__ = ["SpareBuffers", "spare_buffers"]


class SpareBuffers:
    """Large receive buffers kept for the next large frames.

    A fresh buffer of a megabyte costs more than filling it: the allocator
    maps new pages (and unmaps them when it is freed), and each one faults on
    first touch. Keeping the buffers of completed frames makes a stream of
    large frames, on one connection or many, reuse the same memory instead of
    depending on the allocator's mood. They are memory the process holds
    already, so a frame that takes one commits nothing new: the pool's bound
    (``max_buffers`` buffers, ``max_bytes`` in all, none over ``max_size``)
    is a bound of the whole process. Shared by every connection; each step
    is a single list operation, atomic, so threads need no lock.
    """

    def __init__(self, max_buffers: int = 64, max_bytes: int = 64 * 2**20, max_size: int = 16 * 2**20) -> None:
        self._buffers: list[bytearray] = []
        self.max_buffers = max_buffers
        self.max_bytes = max_bytes
        self.max_size = max_size

    def take(self, size: int) -> bytearray | None:
        """A kept buffer of at least ``size`` bytes (at most twice that), or ``None``.

        Never a new one: a caller allocates only for bytes it has.
        """
        try:
            buffer = self._buffers.pop()  # the most recently kept: its pages are warm
        except IndexError:
            return None
        if size <= len(buffer) <= 2 * size:
            return buffer
        self.give(buffer)
        return None

    def give(self, buffer: bytearray) -> None:
        """Keep ``buffer`` for a later :meth:`take`, if it is not too large and there is room."""
        buffers = self._buffers
        if (
            len(buffer) <= self.max_size
            and len(buffers) < self.max_buffers
            and sum(map(len, buffers)) + len(buffer) <= self.max_bytes
        ):
            buffers.append(buffer)

    def clear(self) -> None:
        """Drop every kept buffer (their memory goes back to the allocator)."""
        self._buffers.clear()


#: The process's pool, shared by every connection.
spare_buffers = SpareBuffers()
