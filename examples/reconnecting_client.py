"""A client that stays connected: when the connection is lost, it connects again, with back-off.

It prints each message it receives. ``async for websocket in connect(uri)``
opens a new connection each time the body of the loop ends; an attempt that
fails (refused, timed out, or answered 500, 502, 503 or 504) is logged and
retried after a random wait, from ``--delay`` seconds, doubled after each
failure up to ``--max-delay``. Whatever else fails (403, 404, a bad TLS
certificate) will not get better by waiting: it ends the program, exit 1.
Run: python examples/reconnecting_client.py [URI] [--delay 1] [--max-delay 60]
(default ws://localhost:8765/; try it against examples/asyncio_producer.py,
and stop, kill and restart that server under it). Ctrl-C stops it.
"""

import argparse
import asyncio
import contextlib
import logging
import random
import sys

from ws4py.asyncio import ConnectionClosed, HandshakeError, connect


async def run(uri: str, delay: float, max_delay: float) -> None:
    async for websocket in connect(uri, reconnect_delay=delay, max_reconnect_delay=max_delay):
        print(f"connected to {uri}", flush=True)
        try:
            async for message in websocket:  # ends quietly on a normal close (1000, 1001)
                print(f"< {message}", flush=True)
        except ConnectionClosed:
            pass  # lost without a closing handshake (1006) or closed with an error code
        print(f"disconnected: {websocket.close_code}", flush=True)
        # A server that restarts drops all its clients at once: a random wait spreads them out,
        # and a server that accepts and closes at once is not hammered in a tight loop.
        await asyncio.sleep(random.uniform(0, delay))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("uri", nargs="?", default="ws://localhost:8765/")
    parser.add_argument("--delay", type=float, default=1.0, help="the first wait before a retry, in seconds")
    parser.add_argument("--max-delay", type=float, default=60.0, help="the longest wait, in seconds")
    args = parser.parse_args()
    # connect() logs each failed attempt at INFO on "ws4py.asyncio.client": show them.
    logging.basicConfig(format="%(asctime)s %(message)s", level=logging.WARNING)
    logging.getLogger("ws4py.asyncio.client").setLevel(logging.INFO)
    try:
        asyncio.run(run(args.uri, args.delay, args.max_delay))
    except HandshakeError as exc:
        print(f"not retrying: {exc} (HTTP status: {exc.status})", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
