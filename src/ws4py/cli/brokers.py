"""``--broker URL``: the process's default broker (``ws4py.pubsub.set_broker``), started and closed with the worker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import CliError

if TYPE_CHECKING:
    from ..pubsub import Broker

__all__ = ["close_broker", "open_broker"]


def open_broker(url: str | None) -> Broker | None:
    """Make the broker ``url`` names the process's default and start it (``None``: leave the default alone).

    Starting does not wait for Redis: a worker serves while its broker connects.
    """
    if url is None:
        return None
    from ..pubsub import broker_from_url, set_broker  # only a worker with --broker needs it (and redis-py)

    try:
        broker = broker_from_url(url)
    except (ValueError, ImportError) as exc:
        raise CliError(f"--broker {url!r}: {exc}") from None
    set_broker(broker)
    broker.start()
    return broker


def close_broker(broker: Broker | None) -> None:
    """Close ``broker`` (its subscriptions, threads and sockets) and unset it."""
    if broker is not None:
        from ..pubsub import set_broker

        broker.close()
        set_broker(None)
