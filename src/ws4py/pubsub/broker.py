"""The broker interface (:class:`Broker`) and its error (:class:`BrokerUnavailable`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from .delivery import MAX_PENDING
from .gaps import Gap
from .registry import Registry

__all__ = ["Broker", "BrokerUnavailable"]

_B = TypeVar("_B", bound="Broker")

logger = logging.getLogger("ws4py")


class BrokerUnavailable(OSError):
    """The message could not be handed to the broker now (Redis down, unreachable or reconnecting): it was not sent."""


def check_channel(channel: object) -> str:
    """``channel``, if it is a usable channel name."""
    if not isinstance(channel, str) or not channel:
        raise ValueError(f"a channel is a non-empty str, not {channel!r}")
    return channel


def check_message(message: object) -> str | bytes:
    """``message`` as ``str`` (text) or ``bytes`` (binary)."""
    if isinstance(message, str):
        return message
    if isinstance(message, (bytes, bytearray, memoryview)):
        return bytes(message)
    raise TypeError(f"cannot publish {type(message).__name__}: use str or bytes")


class Broker:
    """Publish/subscribe between connections, in one process or across processes (see :mod:`ws4py.pubsub`).

    :meth:`subscribe` a connection to channels, :meth:`publish` to a
    channel: every subscriber receives the message (a ``str`` as a text
    message, ``bytes`` as a binary one). At most once; in order per
    publisher; a connection leaves its channels by itself when it closes.
    :attr:`on_gap` is called with each :class:`Gap` (messages a process
    missed), which is also logged. Use it as a context manager (``with`` or
    ``async with``), or call :meth:`start` and :meth:`close`.
    """

    #: Called with each :class:`Gap` (on the broker's reader thread: keep it short); ``None``: only logged.
    on_gap: Callable[[Gap], None] | None

    def __init__(self, *, on_gap: Callable[[Gap], None] | None = None, max_pending: int = MAX_PENDING) -> None:
        self.on_gap = on_gap
        self._max_pending = max_pending
        self._registry = Registry(self._channels_removed, max_pending)

    # -- subscribers ---------------------------------------------------------

    def subscribe(self, connection: Any, *channels: str) -> None:
        """Subscribe ``connection`` to ``channels`` (again: nothing changes).

        ``connection`` is a :mod:`ws4py.asyncio` connection or a
        :class:`ws4py.async_websocket.WebSocket` (subscribed from its event
        loop), or a :class:`ws4py.websocket.WebSocket` (threads or gevent, from
        any thread). It is unsubscribed by itself when it closes.
        """
        for channel in channels:
            check_channel(channel)
        self.start()
        new = self._registry.add(connection, channels)
        if new:
            try:
                self._channels_added(new)
            except BaseException:
                # Not subscribed after all (a Redis Cluster that did not answer): as before.
                self._registry.remove(connection, new)
                raise

    def unsubscribe(self, connection: Any, *channels: str) -> None:
        """Unsubscribe ``connection`` from ``channels``, or from every channel when none is named."""
        emptied = self._registry.remove(connection, channels or None)
        if emptied:
            self._channels_removed(emptied)

    def subscribers(self, channel: str) -> frozenset[Any]:
        """The connections of this process subscribed to ``channel``."""
        return self._registry.subscribers(channel)

    def subscribed(self, channel: str) -> bool:
        """Whether this process receives what is published on ``channel`` now (a Redis broker: Redis confirmed it)."""
        return bool(self._registry.subscribers(channel))

    # -- publishing ------------------------------------------------------------

    def publish(self, channel: str, message: str | bytes) -> None:
        """Send ``message`` to every subscriber of ``channel``; never waits long (see the subclass).

        Raises :class:`BrokerUnavailable` when the message could not be sent.
        """
        raise NotImplementedError

    async def apublish(self, channel: str, message: str | bytes) -> None:
        """:meth:`publish` for asyncio code, without ever stalling the event loop on the network."""
        self.publish(channel, message)

    # -- life cycle --------------------------------------------------------------

    def start(self) -> None:
        """Start the broker's work (idempotent; :meth:`subscribe` calls it too); it does not wait for the network."""

    def close(self) -> None:
        """Unsubscribe everyone and stop: threads ended, sockets closed."""
        self._registry.clear()

    def __enter__(self: _B) -> _B:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self: _B) -> _B:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- what subclasses provide --------------------------------------------------

    def _channels_added(self, channels: list[str]) -> None:
        """``channels`` have their first local subscriber."""

    def _channels_removed(self, channels: list[str]) -> None:
        """``channels`` lost their last local subscriber."""

    # -- for subclasses ------------------------------------------------------------

    def _deliver(self, channel: str, message: str | bytes, keep_waiting: Callable[[], bool]) -> None:
        """Send ``message`` to the local subscribers of ``channel``."""
        for target, connections in self._registry.groups(channel):
            if not target.deliver(connections, message, keep_waiting):
                logger.warning(
                    "pubsub: a message on %r was not delivered to %d connection(s): their event loop "
                    "is closed or does not keep up",
                    channel,
                    len(connections),
                )

    def _report_gap(self, gap: Gap) -> None:
        """Log ``gap`` and pass it to :attr:`on_gap`."""
        logger.warning(
            "pubsub: channel %r: missed %d message(s) from publisher %s", gap.channel, gap.missed, gap.publisher
        )
        callback = self.on_gap
        if callback is not None:
            try:
                callback(gap)
            except Exception:
                logger.exception("pubsub: on_gap failed")


def deadline_waiter(timeout: float) -> Callable[[], bool]:
    """A ``keep_waiting`` that says yes for ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    return lambda: time.monotonic() < deadline
