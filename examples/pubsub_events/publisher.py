"""The publishing side of the events example: a plain Python process, no WebSocket, no event loop.

Run: python examples/pubsub_events/publisher.py redis://127.0.0.1:6379 orders [--count 10] [--interval 1]

Each event is a JSON text ``{"channel": ..., "n": ..., "at": ...}`` sent with
``ws4py.pubsub.publish``, as a Django view or a cron job would send its own:
every ws4py server subscribed to the channel (``server.py``, on any number of
processes and machines) forwards it to its clients of that channel. Prints
how many server processes received each one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from ws4py.pubsub import BrokerUnavailable, publish


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("url", help="the Redis: redis://host:port")
    parser.add_argument("channel")
    parser.add_argument("--count", type=int, default=10, help="how many events (default: 10)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between two events (default: 1)")
    args = parser.parse_args()
    for n in range(1, args.count + 1):
        event = json.dumps({"channel": args.channel, "n": n, "at": time.time()})
        try:
            servers = publish(args.url, args.channel, event)
        except BrokerUnavailable as exc:
            print(f"event {n} not sent: {exc}", file=sys.stderr, flush=True)
            return 1
        print(f"event {n} on {args.channel!r}: {servers} server process(es) received it", flush=True)
        if n < args.count:
            time.sleep(args.interval)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
