"""The publishing side on Redis: a publisher's id, its sequence numbers, and one PUBLISH (or SPUBLISH)."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any

from .broker import BrokerUnavailable
from .envelope import encode

__all__ = ["MAX_CHANNELS", "Publisher", "publish_errors"]

#: A publisher remembers the sequence numbers of at most this many channels (the least recently used
#: one is forgotten and starts again from 1: its subscribers take that as a new baseline, not a gap).
MAX_CHANNELS = 65536


def publish_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """redis-py's errors that mean Redis did not take the message: (certainly not, maybe)."""
    import redis.exceptions as errors

    return (errors.ConnectionError, errors.ClusterError, errors.BusyLoadingError, OSError), (errors.TimeoutError,)


class Publisher:
    """A publisher: a random id, and a sequence number per channel.

    :meth:`send` holds the publisher's lock while the message goes to Redis,
    so the order of the sequence numbers is the order on the wire. A message
    Redis certainly did not take leaves its number unused; one whose answer
    timed out uses it (Redis may have published it).
    """

    def __init__(self) -> None:
        self.id = os.urandom(16)
        self.lock = threading.Lock()
        self._seqs: OrderedDict[str, int] = OrderedDict()

    def renew(self) -> None:
        """A new id and sequence (a forked child must not publish as its parent)."""
        self.id = os.urandom(16)
        self._seqs.clear()
        self.lock = threading.Lock()

    def send(self, client: Any, channel: str, message: str | bytes, sharded: bool, timeout: float) -> int:
        """PUBLISH (SPUBLISH when ``sharded``) ``message`` with ``client``; the number of Redis subscribers.

        Raises :class:`BrokerUnavailable` when Redis cannot take it (after at
        most about ``timeout`` waiting for the lock, plus the client's timeouts).
        """
        if not self.lock.acquire(timeout=timeout):
            raise BrokerUnavailable(f"publishing on {channel!r}: another publish waited on Redis for {timeout}s")
        try:
            seqs = self._seqs
            seq = seqs.get(channel, 0) + 1
            data = encode(self.id, seq, message)
            certain, maybe = publish_errors()
            try:
                received = client.spublish(channel, data) if sharded else client.publish(channel, data)
            except maybe as exc:
                self._count(channel, seq)
                raise BrokerUnavailable(f"publishing on {channel!r}: Redis did not answer in time ({exc})") from exc
            except certain as exc:
                raise BrokerUnavailable(f"publishing on {channel!r}: Redis is unavailable ({exc})") from exc
            self._count(channel, seq)
            return int(received)
        finally:
            self.lock.release()

    def _count(self, channel: str, seq: int) -> None:
        seqs = self._seqs
        seqs[channel] = seq
        seqs.move_to_end(channel)
        if len(seqs) > MAX_CHANNELS:
            seqs.popitem(last=False)
