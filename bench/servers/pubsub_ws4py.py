"""ws4py (this repository): the pub/sub fan-out of bench/pubsub_bench.py, on ``python -m ws4py serve``.

Run in bench/.venvs/pubsub: ``python pubsub_ws4py.py PORT [--workers N] [--broker URL]``, which
replaces itself (``exec``) with ``python -m ws4py serve pubsub_ws4py:handler --port PORT
--workers N --broker URL`` (the descriptor limit raised first: the workers inherit it). Without
``--broker``, the in-process broker; with ``--broker redis://...``, ``ws4py.pubsub.RedisBroker``.

The application is ``handler``: every connection is subscribed to one channel, and every text
message a client sends is published to it, through the process's broker
(``ws4py.pubsub.get_broker()``, which ``--broker`` sets in each worker). A text message
``pid?`` is answered with the worker's process id instead of being published: the benchmark
asks it until it has seen every worker (so that no run starts with one worker still starting up).
"""

from __future__ import annotations

import argparse
import os
import sys

from ws4py.asyncio import Connection
from ws4py.pubsub import get_broker

CHANNEL = "bench"


async def handler(connection: Connection) -> None:
    broker = get_broker()
    broker.subscribe(connection, CHANNEL)
    async for message in connection:
        if message == "pid?":
            await connection.send(str(os.getpid()))
            continue
        broker.publish(CHANNEL, message)


def run() -> None:
    from _common import prepare

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("port", type=int)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--broker", default=None, help="redis://host:port (default: the in-process broker)")
    args = parser.parse_args()
    prepare()
    here = os.path.dirname(os.path.abspath(__file__))
    argv = [sys.executable, "-m", "ws4py", "serve", "pubsub_ws4py:handler", "--host", "127.0.0.1"]
    argv += ["--port", str(args.port), "--workers", str(args.workers)]
    if args.broker:
        argv += ["--broker", args.broker]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p))
    os.execve(sys.executable, argv, env)


if __name__ == "__main__":
    run()
