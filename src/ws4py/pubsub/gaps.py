"""Gap detection: the sequence numbers of each publisher on each channel, as a subscriber process sees them."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import NamedTuple

__all__ = ["MAX_TRACKED", "Gap", "GapTracker"]

#: At most this many (channel, publisher) pairs are remembered; the least recently heard of is forgotten
#: first (its next message then counts as its first: no gap can be reported across it).
MAX_TRACKED = 65536


class Gap(NamedTuple):
    """Messages a subscriber process missed: ``missed`` of ``publisher``'s on ``channel``.

    ``publisher`` is the publisher's id in hexadecimal. A gap is known when the
    publisher's next message arrives (its sequence number jumps).
    """

    channel: str
    publisher: str
    missed: int


class GapTracker:
    """The last sequence number seen per (channel, publisher); safe from any thread.

    The first message of a publisher on a channel (since this process subscribed
    to it) only sets the baseline: what was published before is not missed. A
    number at or below the last one means the publisher started over (a new
    sequence after its counters were forgotten): a new baseline too.
    """

    def __init__(self, max_tracked: int = MAX_TRACKED) -> None:
        self._last: OrderedDict[tuple[str, bytes], int] = OrderedDict()
        self._max = max_tracked
        self._lock = threading.Lock()

    def observe(self, channel: str, publisher: bytes, seq: int) -> Gap | None:
        """Record ``seq``; the gap before it, if any."""
        key = (channel, publisher)
        with self._lock:
            last = self._last.get(key)
            self._last[key] = seq
            if last is None:
                if len(self._last) > self._max:
                    self._last.popitem(last=False)
                return None
            self._last.move_to_end(key)
        if seq > last + 1:
            return Gap(channel, publisher.hex(), seq - last - 1)
        return None

    def forget(self, channel: str) -> None:
        """Drop what is known of ``channel`` (no longer subscribed: what comes later starts anew)."""
        with self._lock:
            for key in [key for key in self._last if key[0] == channel]:
                del self._last[key]
