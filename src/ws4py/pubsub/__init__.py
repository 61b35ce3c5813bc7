"""Publish/subscribe for WebSocket connections: in one process, or across processes and machines through Redis.

::

    from ws4py.pubsub import get_broker

    async def handler(websocket):
        broker = get_broker()
        broker.subscribe(websocket, "chat")          # left by itself when the connection closes
        async for message in websocket:
            broker.publish("chat", message)          # to every subscriber, in every process

    # From plain synchronous code (a Django view, a cron job), with no server running:
    ws4py.pubsub.publish("redis://127.0.0.1:6379", "chat", "hello")

The brokers: :class:`InProcessBroker` (the default; no dependency) and
:class:`RedisBroker` (redis-py: PUBLISH/SUBSCRIBE on a single Redis,
SPUBLISH/SSUBSCRIBE on a Redis Cluster). :func:`get_broker` is the process's
broker: set by :func:`set_broker` (``python -m ws4py serve --broker URL``
does), else made from the ``WS4PY_BROKER`` environment variable, else
in-process.

Semantics
---------
- **At most once.** A message reaches each subscriber once or not at all: a
  process not subscribed or not connected to Redis when it is published
  never gets it; nothing is stored or replayed.
- **Order per publisher.** The messages of one publisher (one broker, or one
  process for :func:`publish`) on one channel reach each subscriber in the
  order they were published. Nothing is said of the order between publishers.
- **Gaps are reported.** Each message carries its publisher's id and a
  sequence number per (publisher, channel) (:mod:`ws4py.pubsub.envelope`).
  A subscriber process that sees a publisher's number jump (its Redis
  connection was down, or Redis dropped it past its
  ``client-output-buffer-limit pubsub``) reports a :class:`Gap` naming the
  channel, the publisher and how many messages were missed: to
  :attr:`Broker.on_gap` and as a WARNING of the ``ws4py`` logger. A gap is
  known when the publisher's next message arrives. A publish that raised
  :class:`BrokerUnavailable` after a timeout may count in a gap (Redis may
  or may not have published it); one refused outright does not.
- **Back-pressure as** ``broadcast``. Each process frames a message once per
  framing setting and writes it without waiting: asyncio connections by
  :func:`ws4py.asyncio.broadcast` (a peer over ``write_limit`` is skipped
  for that message), threaded and gevent ones by
  :func:`ws4py.websocket.broadcast` (a peer over ``max_write_buffer`` is
  closed with 1008). No queue grows without bound: a Redis reader thread
  waits for an event loop that is behind (at most ``max_pending`` messages
  handed over), and Redis holds the rest up to its own limit, past which it
  drops the subscriber, which connects again and reports the gap.
- **Faults.** The Redis broker reconnects with exponential back-off and
  jitter, subscribes every channel again and reports gaps; the WebSocket
  connections stay open meanwhile. :meth:`Broker.publish` raises
  :class:`BrokerUnavailable` (an :class:`OSError`) when Redis cannot take
  the message, after at most about ``publish_timeout``: it never hangs.

Life cycle: a broker starts by itself on its first subscription (or
:meth:`Broker.start`; neither waits for Redis) and :meth:`Broker.close`
unsubscribes everyone and stops its threads; ``with`` and ``async with``
do both.
"""

from .broker import Broker, BrokerUnavailable
from .default import broker_from_url, get_broker, set_broker
from .gaps import Gap
from .memory import InProcessBroker
from .oneshot import publish
from .redisbroker import RedisBroker

__all__ = [
    "Broker",
    "BrokerUnavailable",
    "Gap",
    "InProcessBroker",
    "RedisBroker",
    "broker_from_url",
    "get_broker",
    "publish",
    "set_broker",
]
