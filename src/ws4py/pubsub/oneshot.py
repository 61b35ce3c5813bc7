"""``publish(url, channel, message)``: one message from plain synchronous code, with no broker running."""

from __future__ import annotations

import os
import threading

from .broker import BrokerUnavailable, check_channel, check_message
from .connect import cluster_client, parse, single_client
from .publisher import Publisher

__all__ = ["publish"]

# The process's publisher: its messages are in order, numbered per channel, across calls.
_process = Publisher()
_clients_lock = threading.Lock()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_process.renew)


def publish(url: str, channel: str, message: str | bytes, *, timeout: float = 5.0) -> int:
    """Publish ``message`` on ``channel`` through the Redis at ``url`` and return the number of
    subscribed processes Redis handed it to (on a cluster: of the channel's shard).

    For a Django or Flask view, a cron job: it connects, publishes (in ws4py's
    envelope, as this process's publisher) and disconnects (a few round
    trips). Code that publishes often keeps a
    :class:`~ws4py.pubsub.RedisBroker` instead (one connection, a round trip
    per message). Raises
    :class:`~ws4py.pubsub.BrokerUnavailable` when Redis cannot take the
    message, after at most about ``timeout`` seconds.
    """
    channel = check_channel(channel)
    message = check_message(message)
    target = parse(url)
    try:
        client = cluster_client(target.url, timeout) if target.cluster else single_client(target.url, timeout)
    except Exception as exc:
        raise BrokerUnavailable(f"cannot reach Redis at {target.url}: {exc}") from exc
    try:
        return _process.send(client, channel, message, target.cluster, timeout)
    finally:
        client.close()
