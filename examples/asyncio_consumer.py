"""The "Consumer" pattern of the websockets "Patterns" page, on ws4py.asyncio.

``consumer_handler`` is the page's snippet as written; ``consumer()`` prints
each message it is given (``str`` for text, ``bytes`` for binary).
Run: python examples/asyncio_consumer.py [PORT]  (default 8765; Ctrl-C stops it)
"""

import asyncio
import signal
import sys

from ws4py.asyncio import serve


async def consumer(message: str | bytes) -> None:
    print(f"received: {message!r}", flush=True)


async def consumer_handler(websocket):
    async for message in websocket:
        await consumer(message)


async def main(port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with serve(consumer_handler, "localhost", port) as server:
        print(f"serving on ws://localhost:{server.sockets[0].getsockname()[1]}/", flush=True)
        await stop.wait()
    # Leaving ``async with`` closed every connection with 1001 and waited for the handlers.


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8765))
