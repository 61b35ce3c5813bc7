"""The application of the scale tests, served by ``python -m ws4py serve fanout_app:handler``.

Every connection is subscribed to the channel ``fanout`` of the process's broker
(``ws4py.pubsub.get_broker()``: what ``--broker`` sets in each worker), is told which
worker holds it (``worker <pid>``, its first message: only after the subscription), and
every text message it sends is published to the channel.
"""

from __future__ import annotations

import os

from ws4py.asyncio import Connection
from ws4py.pubsub import get_broker

CHANNEL = "fanout"


async def handler(connection: Connection) -> None:
    broker = get_broker()
    broker.subscribe(connection, CHANNEL)
    await connection.send(f"worker {os.getpid()}")
    async for message in connection:
        broker.publish(CHANNEL, message)
