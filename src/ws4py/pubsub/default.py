"""The process's default broker, and brokers made from a URL."""

from __future__ import annotations

import os
import threading

from .broker import Broker
from .memory import InProcessBroker

__all__ = ["ENV_VAR", "broker_from_url", "get_broker", "set_broker"]

#: The environment variable :func:`get_broker` reads when no broker was set.
ENV_VAR = "WS4PY_BROKER"

_lock = threading.Lock()
_default: Broker | None = None


def broker_from_url(url: str | None) -> Broker:
    """A broker for ``url``: ``None``, ``""`` or ``"memory://"`` -> :class:`InProcessBroker`;
    ``redis://``, ``rediss://``, ``unix://``, ``redis+cluster://``, ``rediss+cluster://`` ->
    :class:`RedisBroker` (not started: :meth:`Broker.start`, or its first subscription, starts it)."""
    if not url or url == "memory://":
        return InProcessBroker()
    from .redisbroker import RedisBroker

    return RedisBroker(url)


def get_broker() -> Broker:
    """The process's broker: the one :func:`set_broker` set, else one made once from the
    ``WS4PY_BROKER`` environment variable (:func:`broker_from_url`), else an :class:`InProcessBroker`."""
    global _default
    broker = _default
    if broker is None:
        with _lock:
            if _default is None:
                _default = broker_from_url(os.environ.get(ENV_VAR))
            broker = _default
    return broker


def set_broker(broker: Broker | None) -> None:
    """Make ``broker`` the process's broker (``None``: back to the default of :func:`get_broker`).

    The broker set before is not closed: its owner closes it.
    """
    global _default
    with _lock:
        _default = broker
