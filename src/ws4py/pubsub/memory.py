"""The in-process broker: the default, with no dependency."""

from __future__ import annotations

from .broker import Broker, check_channel, check_message, deadline_waiter

__all__ = ["InProcessBroker"]


class InProcessBroker(Broker):
    """Publish/subscribe within one process, for every kind of connection.

    :meth:`publish` delivers at once from the caller's thread: to the
    connections of the caller's event loop directly, to those of another
    loop through that loop (waiting at most ``publish_timeout`` for room
    while it is behind), to threaded ones with their ``broadcast``. There are
    no gaps: :attr:`on_gap` is never called.
    """

    def __init__(self, *, publish_timeout: float = 5.0, max_pending: int | None = None) -> None:
        if max_pending is None:
            super().__init__()
        else:
            super().__init__(max_pending=max_pending)
        self.publish_timeout = publish_timeout

    def publish(self, channel: str, message: str | bytes) -> None:
        """Send ``message`` to the subscribers of ``channel`` in this process."""
        self._deliver(check_channel(channel), check_message(message), deadline_waiter(self.publish_timeout))

    def __repr__(self) -> str:
        return f"<InProcessBroker {len(self._registry.channels())} channel(s)>"
