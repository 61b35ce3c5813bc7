"""A client of the cross-namespace test, run inside a network namespace (``ip netns exec NS python netns_client.py``).

``netns_client.py URL SEND EXPECT``: connects to URL (retrying while the server starts),
reads the server's greeting, prints ``ready``; on the line ``go`` on its stdin, sends SEND,
then reads until EXPECT arrives: prints ``got EXPECT`` and exits 0. Exits 1 after
:data:`TIMEOUT` seconds without it, printing what it received.
"""

from __future__ import annotations

import asyncio
import sys

from ws4py.asyncio import connect

TIMEOUT = 15.0


async def main(url: str, send: str, expect: str) -> int:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while True:
        try:
            conn = await connect(url, compression=None, open_timeout=2.0)
            break
        except OSError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)
    try:
        print("greeting", await asyncio.wait_for(conn.recv(), TIMEOUT), flush=True)
        print("ready", flush=True)
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if line.strip() != "go":
            return 1
        await conn.send(send)
        got: list[object] = []
        try:
            while True:
                message = await asyncio.wait_for(conn.recv(), max(0.0, deadline + TIMEOUT - loop.time()))
                got.append(message)
                if message == expect:
                    print("got", message, flush=True)
                    return 0
        except asyncio.TimeoutError:
            print("received only", got, flush=True)
            return 1
    finally:
        await asyncio.wait_for(conn.close(), TIMEOUT)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(*sys.argv[1:4])))
