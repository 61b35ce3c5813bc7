"""``--broker URL``: the process's default broker (``ws4py.pubsub.set_broker``), started and closed with the worker."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from .errors import CliError

if TYPE_CHECKING:
    from ..pubsub import Broker

__all__ = ["close_broker", "make_broker", "start_broker"]


def make_broker(url: str | None) -> Broker | None:
    """The broker ``url`` names, made the process's default (``None``: leave the default alone)."""
    if url is None:
        return None
    from ..pubsub import broker_from_url, set_broker  # only a worker with --broker needs it (and redis-py)

    try:
        broker = broker_from_url(url)
    except (ValueError, ImportError) as exc:
        raise CliError(f"--broker {url!r}: {exc}") from None
    set_broker(broker)
    return broker


async def start_broker(broker: Broker | None) -> None:
    """Start ``broker`` from a running event loop (its ``start()`` may be a coroutine)."""
    if broker is not None:
        await _maybe_await(broker.start())


async def close_broker(broker: Broker | None) -> None:
    """Close ``broker`` and let the process's default be made again (asyncio side)."""
    if broker is not None:
        await _maybe_await(broker.close())
        _unset()


def start_broker_sync(broker: Broker | None) -> None:
    """Start ``broker`` from plain threads (the threaded server)."""
    if broker is not None:
        _no_coroutine(broker.start())


def close_broker_sync(broker: Broker | None) -> None:
    """Close ``broker`` from plain threads (the threaded server)."""
    if broker is not None:
        _no_coroutine(broker.close())
        _unset()


async def _maybe_await(result: Any) -> None:
    if inspect.isawaitable(result):
        await result


def _no_coroutine(result: Any) -> None:
    if inspect.iscoroutine(result):
        result.close()
        raise CliError("this broker must be started from asyncio: serve without --threaded")


def _unset() -> None:
    from ..pubsub import set_broker

    set_broker(None)
