"""The "Producer" pattern of the websockets "Patterns" page, on ws4py.asyncio.

``producer_handler`` is the page's snippet as written; ``producer()`` makes
"tick 1", "tick 2", ... one every 0.2 s. The loop ends when the client leaves:
``send`` then raises ``ConnectionClosed``, which the server takes as a normal end.
Run: python examples/asyncio_producer.py [PORT]  (default 8765; Ctrl-C stops it)
"""

import asyncio
import itertools
import signal
import sys

from ws4py.asyncio import serve

ticks = itertools.count(1)


async def producer() -> str:
    await asyncio.sleep(0.2)
    return f"tick {next(ticks)}"


async def producer_handler(websocket):
    while True:
        message = await producer()
        await websocket.send(message)


async def main(port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with serve(producer_handler, "localhost", port) as server:
        print(f"serving on ws://localhost:{server.sockets[0].getsockname()[1]}/", flush=True)
        await stop.wait()
    # Leaving ``async with`` closed every connection with 1001 and waited for the handlers.


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8765))
