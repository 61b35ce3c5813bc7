"""One subscriber connection to one Redis (or one cluster node), on a thread of its own.

The thread keeps the connection subscribed to the channels wanted of it:
it (S)SUBSCRIBEs and (S)UNSUBSCRIBEs as they change (within :data:`POLL`
seconds), hands each message to the broker, and when the connection fails
(Redis down or restarted, or Redis dropping it past its
``client-output-buffer-limit pubsub``) it connects again after an
exponential back-off with jitter and subscribes every channel again. With
no channel wanted it holds no connection.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["POLL", "Link"]

logger = logging.getLogger("ws4py")

#: Seconds between two looks at the wanted channels while waiting for messages.
POLL = 0.05


class Link(threading.Thread):
    """The subscriber thread of one Redis connection (see the module docstring).

    ``make_client()`` makes the ``redis.Redis`` to subscribe with;
    ``received(channel, data)`` gets each message; ``sharded``: SSUBSCRIBE
    (Redis Cluster) instead of SUBSCRIBE. ``wanted`` and :meth:`want` are
    guarded by ``lock``, the broker's.
    """

    def __init__(
        self,
        name: str,
        make_client: Callable[[], Any],
        received: Callable[[str, bytes], None],
        *,
        sharded: bool,
        lock: threading.Lock,
        stopping: threading.Event,
        backoff: tuple[float, float],
    ) -> None:
        super().__init__(name=f"ws4py.pubsub {name}", daemon=True)
        self.redis_name = name
        self.wanted: set[str] = set()
        self._make_client = make_client
        self._received = received
        self._sharded = sharded
        self._lock = lock
        self._stopping = stopping
        self._wake = threading.Event()
        self._backoff = backoff
        self._failures = 0  # failures in a row: the back-off grows with them
        #: Confirmed subscriptions on the current connection (read by tests and ``subscribed``).
        self.confirmed: frozenset[str] = frozenset()

    def want(self, add: list[str], remove: list[str]) -> None:
        """Change the wanted channels (``lock`` held)."""
        self.wanted.update(add)
        self.wanted.difference_update(remove)
        self._wake.set()

    def stop(self) -> None:
        """Wake the thread so it sees ``stopping``."""
        self._wake.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                idle = not self.wanted
            if idle:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            try:
                self._serve()
                self._failures = 0
            except Exception as exc:
                # Every failure of the connection or of redis-py: connect again, later.
                self._failures = failures = self._failures + 1
                low, high = self._backoff
                ceiling = min(high, low * 2 ** min(failures - 1, 32))
                delay = ceiling / 2 + random.uniform(0, ceiling / 2)
                logger.warning(
                    "pubsub: subscriber connection to %s lost (%s: %s); connecting again in %.2fs",
                    self.redis_name,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                self._stopping.wait(delay)

    def _serve(self) -> None:
        """One connection, until nothing is wanted, the broker stops, or the connection fails."""
        client = self._make_client()
        pubsub = client.pubsub()
        subscribed: set[str] = set()
        confirmed: set[str] = set()
        unsubscribing: dict[str, int] = {}  # UNSUBSCRIBEs sent, not confirmed yet
        sub, unsub = (
            (pubsub.ssubscribe, pubsub.sunsubscribe) if self._sharded else (pubsub.subscribe, pubsub.unsubscribe)
        )
        try:
            while not self._stopping.is_set():
                with self._lock:
                    wanted = set(self.wanted)
                if not wanted:
                    return
                add, drop = wanted - subscribed, subscribed - wanted
                if add:
                    sub(*add)
                    subscribed |= add
                if drop:
                    unsub(*drop)
                    subscribed -= drop
                    for channel in drop:
                        unsubscribing[channel] = unsubscribing.get(channel, 0) + 1
                message = pubsub.get_message(timeout=POLL)
                if message is None:
                    continue
                kind = message["type"]
                if isinstance(kind, bytes):
                    kind = kind.decode()
                channel = message["channel"]
                if isinstance(channel, bytes):
                    channel = channel.decode("utf-8", "replace")
                if kind in ("message", "smessage"):
                    self._received(channel, message["data"])
                elif kind in ("subscribe", "ssubscribe"):
                    confirmed.add(channel)
                    self.confirmed = frozenset(confirmed)
                    if self._failures and confirmed == subscribed:
                        self._failures = 0  # back: the next failure starts the back-off over
                        logger.warning(
                            "pubsub: subscribed again to %d channel(s) on %s", len(confirmed), self.redis_name
                        )
                elif kind in ("unsubscribe", "sunsubscribe"):
                    pending = unsubscribing.pop(channel, 0)
                    if pending > 1:
                        unsubscribing[channel] = pending - 1
                    if channel not in subscribed:
                        confirmed.discard(channel)
                        self.confirmed = frozenset(confirmed)
                    elif not pending:
                        # Not asked for: the cluster moved the channel's slot elsewhere.
                        raise ConnectionError(f"Redis unsubscribed {channel!r} by itself")
        finally:
            self.confirmed = frozenset()
            try:
                pubsub.close()
                client.close()
            except Exception:  # closing a broken connection: nothing more to do
                logger.debug("pubsub: closing the subscriber connection failed", exc_info=True)
