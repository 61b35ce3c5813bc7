"""The local subscribers: channel -> connections, and each connection's channels; safe from any thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .delivery import THREADED, AsyncioTarget, Target, close_hook, target_key

__all__ = ["Group", "Registry"]

#: Connections delivered to together: their target and themselves.
Group = tuple[Target, tuple[Any, ...]]


class Registry:
    """Who is subscribed to what in this process.

    A connection is let go by itself when it closes (``on_closed`` is then
    called with the channels it left); the delivery groups of a channel are
    kept ready between changes, so a message costs no sorting.
    """

    def __init__(self, on_closed: Callable[[list[str]], None], max_pending: int) -> None:
        self._lock = threading.Lock()
        self._channels: dict[str, dict[Any, Target]] = {}
        self._by_connection: dict[Any, set[str]] = {}
        self._hooked: set[Any] = set()  # connections whose close callback is set (once each)
        self._targets: dict[asyncio.AbstractEventLoop, tuple[AsyncioTarget, int]] = {}
        self._groups: dict[str, tuple[Group, ...]] = {}
        self._on_closed = on_closed
        self._max_pending = max_pending

    def add(self, connection: Any, channels: Iterable[str]) -> list[str]:
        """Subscribe ``connection``; the channels that had no local subscriber before."""
        key = target_key(connection)
        new: list[str] = []
        with self._lock:
            hook = connection not in self._hooked
            if hook:
                self._hooked.add(connection)
            mine = self._by_connection.setdefault(connection, set())
            for channel in channels:
                if channel in mine:
                    continue
                mine.add(channel)
                subscribers = self._channels.get(channel)
                if subscribers is None:
                    subscribers = self._channels[channel] = {}
                    new.append(channel)
                subscribers[connection] = self._take_target(key)
                self._groups.pop(channel, None)
        if hook:
            close_hook(connection, lambda: self._closed(connection))
        return new

    def remove(self, connection: Any, channels: Iterable[str] | None = None) -> list[str]:
        """Unsubscribe ``connection`` (from ``channels``, or from all); the channels left with no subscriber."""
        emptied: list[str] = []
        with self._lock:
            mine = self._by_connection.get(connection)
            if mine is None:
                return emptied
            for channel in list(mine) if channels is None else channels:
                if channel not in mine:
                    continue
                mine.discard(channel)
                subscribers = self._channels[channel]
                self._drop_target(subscribers.pop(connection))
                self._groups.pop(channel, None)
                if not subscribers:
                    del self._channels[channel]
                    emptied.append(channel)
            if not mine:
                del self._by_connection[connection]
        return emptied

    def clear(self) -> list[str]:
        """Unsubscribe everyone; the channels there were."""
        with self._lock:
            channels = list(self._channels)
            self._channels.clear()
            self._by_connection.clear()
            self._targets.clear()
            self._groups.clear()
        return channels

    def subscribers(self, channel: str) -> frozenset[Any]:
        """The connections subscribed to ``channel`` now."""
        with self._lock:
            return frozenset(self._channels.get(channel, ()))

    def channels(self) -> list[str]:
        """The channels with a local subscriber."""
        with self._lock:
            return list(self._channels)

    def groups(self, channel: str) -> tuple[Group, ...]:
        """The subscribers of ``channel``, grouped by where they are delivered."""
        groups = self._groups.get(channel)
        if groups is not None:
            return groups
        with self._lock:
            subscribers = self._channels.get(channel)
            if not subscribers:
                return ()
            by_target: dict[Target, list[Any]] = {}
            for connection, target in subscribers.items():
                by_target.setdefault(target, []).append(connection)
            groups = self._groups[channel] = tuple((t, tuple(c)) for t, c in by_target.items())
            return groups

    # -- internals -----------------------------------------------------------

    def _closed(self, connection: Any) -> None:
        with self._lock:
            self._hooked.discard(connection)
        emptied = self.remove(connection)
        if emptied:
            self._on_closed(emptied)

    def _take_target(self, key: asyncio.AbstractEventLoop | None) -> Target:
        if key is None:
            return THREADED
        entry = self._targets.get(key)
        target = entry[0] if entry is not None else AsyncioTarget(key, self._max_pending)
        self._targets[key] = (target, (entry[1] if entry is not None else 0) + 1)
        return target

    def _drop_target(self, target: Target) -> None:
        if isinstance(target, AsyncioTarget):
            loop = target.loop
            entry = self._targets.get(loop)
            if entry is not None:
                if entry[1] <= 1:
                    del self._targets[loop]
                else:
                    self._targets[loop] = (entry[0], entry[1] - 1)
