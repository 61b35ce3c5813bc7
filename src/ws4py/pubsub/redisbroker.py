"""The Redis broker: publish/subscribe across processes and machines, on redis-py."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Any

from .broker import Broker, BrokerUnavailable, check_channel, check_message
from .connect import cluster_client, node_client, parse, single_client
from .delivery import MAX_PENDING
from .envelope import EnvelopeError, decode
from .gaps import Gap, GapTracker
from .link import Link
from .publisher import Publisher
from .registry import Registry

__all__ = ["RedisBroker"]

logger = logging.getLogger("ws4py")

# The brokers of this process, so that a forked child starts afresh (see RedisBroker._forked).
_brokers: weakref.WeakSet[RedisBroker] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for broker in list(_brokers):
        broker._forked()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class RedisBroker(Broker):
    """Publish/subscribe through Redis: every process subscribed to a channel gets each message once.

    ``url``: ``redis://host:port/db``, ``rediss://`` (TLS), ``unix:///path``
    for a single Redis (PUBLISH/SUBSCRIBE); ``redis+cluster://host:port``
    (or ``rediss+cluster://``, or ``cluster=True``) for a Redis Cluster
    (SPUBLISH/SSUBSCRIBE: sharded pub/sub, each channel on the master of its
    slot). One Redis subscription per channel per process, however many
    local subscribers.

    Design: one thread per Redis connection subscribed (one for a single
    Redis, one per master of a cluster holding subscribed channels) reads
    with redis-py's synchronous client and hands each message to the local
    subscribers (:mod:`ws4py.pubsub.delivery`): it serves asyncio, threaded
    and gevent applications alike (gevent: monkey-patch first, so that the
    thread is a greenlet). It reconnects by itself with exponential back-off
    (``backoff=(first, most)`` seconds) and jitter, subscribes every channel
    again, and reports the messages missed meanwhile as gaps when their
    publishers' next messages arrive.

    :meth:`publish` sends from the caller's thread on a connection of its own
    and waits for Redis's answer: a round trip, bounded by
    ``publish_timeout`` (about twice that at worst: one more attempt on a
    fresh connection after a connection error, when Redis certainly did not
    take the message). In an asyncio handler, ``await broker.apublish(...)``
    does the same on a worker thread, so that a Redis that does not answer
    never stalls the event loop.

    On a cluster, the first subscription asks it for its slots (a round
    trip; :class:`BrokerUnavailable` if no node answers), and each channel
    stays with the master that served its slot then: after a failover or a
    slot migration its subscriber connection keeps trying that node (a
    known limit: make a new broker).

    A process forked from one with a broker (a pre-fork server) gets the
    broker without its subscribers, threads or connections, and with a
    publisher id of its own; it starts again on its first subscription.
    """

    def __init__(
        self,
        url: str,
        *,
        cluster: bool | None = None,
        on_gap: Callable[[Gap], None] | None = None,
        publish_timeout: float = 2.0,
        backoff: tuple[float, float] = (0.05, 2.0),
        max_pending: int = MAX_PENDING,
    ) -> None:
        super().__init__(on_gap=on_gap, max_pending=max_pending)
        self.url = url
        self._target = parse(url, cluster)
        self.publish_timeout = publish_timeout
        self._backoff = backoff
        self._publisher = Publisher()
        self._publish_client: Any = None
        self._topology: Any = None  # the RedisCluster client that maps channels to nodes
        self._gaps = GapTracker()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._links: dict[str, Link] = {}
        self._channel_links: dict[str, Link] = {}
        self._started = False
        _brokers.add(self)

    def _forked(self) -> None:
        """In a forked child: forget the parent's subscribers, threads and connections (without closing
        what the parent still uses), and publish under an id of its own."""
        self._registry = Registry(self._channels_removed, self._max_pending)  # its lock may be held
        self._publisher.renew()
        self._gaps = GapTracker()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._links = {}
        self._channel_links = {}
        self._publish_client = self._topology = None
        self._started = False

    @property
    def cluster(self) -> bool:
        """Whether Redis is a cluster (sharded pub/sub)."""
        return self._target.cluster

    @property
    def publisher_id(self) -> str:
        """This broker's publisher id (hexadecimal), as its subscribers' gaps name it."""
        return self._publisher.id.hex()

    # -- publishing ------------------------------------------------------------

    def publish(self, channel: str, message: str | bytes) -> None:
        """Send ``message`` to the subscribers of ``channel`` in every process.

        Returns once Redis has taken it; raises :class:`BrokerUnavailable` if
        Redis cannot take it now (down, unreachable, not answering within
        ``publish_timeout``): the message was then not sent, or (a timeout)
        may have been.
        """
        channel = check_channel(channel)
        message = check_message(message)
        client = self._publish_client
        if client is None:
            client = self._make_publish_client()
        self._publisher.send(client, channel, message, self._target.cluster, self.publish_timeout)

    async def apublish(self, channel: str, message: str | bytes) -> None:
        """:meth:`publish` on a worker thread, for asyncio code: the event loop never waits for Redis.

        Successive ``await apublish(...)`` of one task keep their order.
        """
        await asyncio.to_thread(self.publish, channel, message)

    def _make_publish_client(self) -> Any:
        with self._lock:
            if self._publish_client is None:
                url = self._target.url
                try:
                    self._publish_client = (
                        cluster_client(url, self.publish_timeout)
                        if self._target.cluster
                        else single_client(url, self.publish_timeout)
                    )
                except Exception as exc:  # the cluster client asks for the topology at once
                    raise BrokerUnavailable(f"cannot reach Redis at {url}: {exc}") from exc
            return self._publish_client

    # -- subscribing -----------------------------------------------------------

    def subscribed(self, channel: str) -> bool:
        """Whether Redis has confirmed this process's subscription to ``channel`` (on the current connection)."""
        with self._lock:
            link = self._channel_links.get(channel)
        return link is not None and channel in link.confirmed

    def _channels_added(self, channels: list[str]) -> None:
        with self._lock:
            by_link: dict[Link, list[str]] = {}
            for channel in channels:
                link = self._link_for(channel)
                self._channel_links[channel] = link
                by_link.setdefault(link, []).append(channel)
            for link, added in by_link.items():
                link.want(added, [])

    def _channels_removed(self, channels: list[str]) -> None:
        with self._lock:
            for channel in channels:
                link = self._channel_links.pop(channel, None)
                if link is not None:
                    link.want([], [channel])
                self._gaps.forget(channel)

    def _link_for(self, channel: str) -> Link:
        """The link subscribing ``channel`` (lock held): the only one, or its slot's master's in a cluster."""
        if not self._target.cluster:
            name = self._target.url
            node_host, node_port = "", 0
        else:
            topology = self._topology
            if topology is None:
                try:
                    topology = self._topology = cluster_client(self._target.url, self.publish_timeout)
                except Exception as exc:
                    raise BrokerUnavailable(f"cannot reach the Redis Cluster at {self._target.url}: {exc}") from exc
            node = topology.nodes_manager.get_node_from_slot(topology.keyslot(channel))
            name, node_host, node_port = node.name, node.host, int(node.port)
        link = self._links.get(name)
        if link is None:
            url, timeout = self._target.url, self.publish_timeout
            if self._target.cluster:

                def make_client() -> Any:
                    return node_client(url, node_host, node_port, timeout, health_check_interval=10)

            else:

                def make_client() -> Any:
                    return single_client(url, timeout, retries=0, health_check_interval=10)

            link = self._links[name] = Link(
                name,
                make_client,
                self._received,
                sharded=self._target.cluster,
                lock=self._lock,
                stopping=self._stopping,
                backoff=self._backoff,
            )
            if self._started:
                link.start()
        return link

    def _received(self, channel: str, data: bytes) -> None:
        """A message from Redis (on a link's thread)."""
        try:
            envelope = decode(data)
        except EnvelopeError as exc:
            logger.warning("pubsub: dropped a message on %r that is not ws4py's: %s", channel, exc)
            return
        gap = self._gaps.observe(channel, envelope.publisher, envelope.seq)
        if gap is not None:
            self._report_gap(gap)
        try:
            self._deliver(channel, envelope.message, self._running)
        except Exception:  # a delivery's own failure is not the Redis connection's
            logger.exception("pubsub: delivering a message on %r failed", channel)

    def _running(self) -> bool:
        return not self._stopping.is_set()

    # -- life cycle ----------------------------------------------------------------

    def start(self) -> None:
        """Start the subscriber threads (idempotent; :meth:`subscribe` calls it); it does not wait for Redis."""
        with self._lock:
            if self._started:
                return
            self._started = True
            self._stopping.clear()
            for link in self._links.values():
                if not link.is_alive():
                    link.start()

    def close(self) -> None:
        """Unsubscribe everyone, stop the threads (within about a tenth of a second) and close every connection."""
        super().close()
        with self._lock:
            self._started = False
            self._stopping.set()
            links = list(self._links.values())
            self._links.clear()
            self._channel_links.clear()
            clients = [self._publish_client, self._topology]
            self._publish_client = self._topology = None
        for link in links:
            link.stop()
        for link in links:
            if link.is_alive() and link is not threading.current_thread():
                link.join(5.0)
        for client in clients:
            if client is not None:
                try:
                    client.close()
                except Exception:
                    logger.debug("pubsub: closing a Redis client failed", exc_info=True)

    def __repr__(self) -> str:
        return f"<RedisBroker {self.url} {len(self._registry.channels())} channel(s)>"
