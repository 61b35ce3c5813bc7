"""websockets + redis-py: the pub/sub fan-out of bench/pubsub_bench.py, written the way websockets' docs show.

Run in bench/.venvs/pubsub-websockets: ``python pubsub_websockets.py PORT --redis URL [--workers N]``.

The pattern of websockets' "Integrate with Django" guide (``example/django/notifications.py``),
with redis-py's asyncio client (``redis.asyncio``, what became of aioredis): the handler keeps
every connection in a set while it is open; one task per process subscribes to the channel
(``pubsub.subscribe``, ``async for message in pubsub.listen()``) and hands every message to
``websockets.asyncio.server.broadcast(CONNECTIONS, payload)``. Every text message a client
sends is published to the channel with ``await redis.publish(...)``. "Since Redis can publish
a message to multiple subscribers, multiple instances of this server can safely run in
parallel": ``--workers N`` starts N such processes sharing the port (``reuse_port=True``,
SO_REUSEPORT: "the operating system — all processes listen on the same port", websockets'
deployment guide). The parent only waits; killing its process group stops them all.

A text message ``pid?`` is answered with the worker's process id instead of being published:
the benchmark asks it until it has seen every worker (so that no run starts with one worker
still starting up).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys

import redis.asyncio as aioredis
from _common import prepare
from websockets.asyncio.server import ServerConnection, broadcast, serve

CHANNEL = "bench"
CONNECTIONS: set[ServerConnection] = set()


async def handler(websocket: ServerConnection, redis: aioredis.Redis) -> None:
    CONNECTIONS.add(websocket)
    try:
        async for message in websocket:
            if message == "pid?":
                await websocket.send(str(os.getpid()))
                continue
            await redis.publish(CHANNEL, message)
    finally:
        CONNECTIONS.discard(websocket)


async def process_events(redis: aioredis.Redis) -> None:
    """Listen to events in Redis and broadcast them (the docs' ``process_events``)."""
    pubsub = redis.pubsub()
    await pubsub.subscribe(CHANNEL)
    async for message in pubsub.listen():
        if message["type"] != "message":
            continue
        broadcast(CONNECTIONS, message["data"].decode())


async def main(port: int, url: str) -> None:
    redis = aioredis.from_url(url)
    async with serve(lambda ws: handler(ws, redis), "127.0.0.1", port, reuse_port=True):
        await process_events(redis)  # runs forever


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("port", type=int)
    parser.add_argument("--redis", required=True, help="redis://host:port")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    prepare()
    if args.worker or args.workers == 1:
        asyncio.run(main(args.port, args.redis))
        return
    argv = [sys.executable, __file__, str(args.port), "--redis", args.redis, "--worker"]
    workers = [subprocess.Popen(argv) for _ in range(args.workers)]
    try:
        for worker in workers:
            worker.wait()
    finally:
        for worker in workers:
            worker.kill()


if __name__ == "__main__":
    run()
