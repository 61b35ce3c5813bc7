"""Publish throughput from one synchronous publisher, for bench/pubsub_bench.py.

``python pubsub_publish.py KIND --url redis://... --count N [--size 64]`` publishes N text
messages of SIZE bytes to the channel ``bench`` from plain synchronous code (no event loop, no
server), one after the other, with:

- ``ws4py-publish``: ``ws4py.pubsub.publish(url, channel, message)``, the one-shot function
  (a Django or Flask view, a cron job); run in bench/.venvs/pubsub;
- ``ws4py-broker``: ``ws4py.pubsub.RedisBroker(url)`` started once, then ``broker.publish``;
  run in bench/.venvs/pubsub;
- ``redis-py``: ``redis.Redis.from_url(url)`` made once, then ``r.publish(channel, message)``,
  what an application without ws4py writes; run in bench/.venvs/pubsub-websockets.

A subscriber process (this script with ``--subscribe N``: redis-py's ``pubsub.listen()`` in the
same virtualenv) is subscribed first; the clock runs from the first publish to the moment it
has received the Nth message (CLOCK_MONOTONIC is one clock for every process), so a publisher
that only queues its messages is not measured doing nothing. One JSON line on stdout:
``msgs_per_s`` (delivered to the subscriber) and ``calls_per_s`` (the publish calls alone).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable

CHANNEL = "bench"


def publisher(kind: str, url: str) -> tuple[Callable[[str], object], Callable[[], None]]:
    """(publish one message, close) for ``kind``."""
    if kind == "ws4py-publish":
        from ws4py.pubsub import publish

        return (lambda message: publish(url, CHANNEL, message)), (lambda: None)
    if kind == "ws4py-broker":
        from ws4py.pubsub import RedisBroker

        broker = RedisBroker(url)
        broker.start()
        return (lambda message: broker.publish(CHANNEL, message)), broker.close
    if kind == "redis-py":
        import redis

        client = redis.Redis.from_url(url)
        return (lambda message: client.publish(CHANNEL, message)), client.close
    raise SystemExit(f"unknown publisher {kind!r}")


def subscribe(url: str, count: int) -> None:
    """The subscriber: prints "ready" once subscribed, then the monotonic time of the ``count``-th message."""
    import redis

    client = redis.Redis.from_url(url)
    pubsub = client.pubsub()
    pubsub.subscribe(CHANNEL)
    got = 0
    for message in pubsub.listen():
        if message["type"] == "subscribe":
            print("ready", flush=True)
        elif message["type"] == "message":
            got += 1
            if got == count:
                print(json.dumps({"last": time.monotonic()}), flush=True)
                return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", nargs="?", choices=("ws4py-publish", "ws4py-broker", "redis-py"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--subscribe", type=int, metavar="N", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.subscribe:
        subscribe(args.url, args.subscribe)
        return
    sub = subprocess.Popen(
        [sys.executable, __file__, "--url", args.url, "--subscribe", str(args.count)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert sub.stdout is not None
        if sub.stdout.readline().strip() != "ready":
            raise SystemExit("the subscriber did not subscribe")
        send, close = publisher(args.kind, args.url)
        payloads = [f"{i:06d}".ljust(args.size, ".") for i in range(args.count)]
        t0 = time.monotonic()
        for payload in payloads:
            send(payload)
        t1 = time.monotonic()
        try:
            out, _ = sub.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            raise SystemExit(f"the subscriber did not receive {args.count} messages within 60 s") from None
        close()
        last = json.loads(out.strip().splitlines()[-1])["last"]
    finally:
        sub.kill()
        sub.wait()
    print(
        json.dumps(
            {
                "ok": True,
                "kind": args.kind,
                "count": args.count,
                "size": args.size,
                "calls_s": t1 - t0,
                "calls_per_s": args.count / (t1 - t0),
                "all_s": last - t0,
                "msgs_per_s": args.count / (last - t0),
            }
        )
    )


if __name__ == "__main__":
    main()
