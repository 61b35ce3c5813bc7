"""The "Consumer and producer" pattern of the websockets "Patterns" page, with ``asyncio.wait``.

The handlers are the page's snippets as written: as soon as one task ends
(the consumer's, when the client leaves) the other is cancelled.
``consumer()`` prints each message; ``producer()`` makes "tick 1",
"tick 2", ... one every 0.2 s, and prints "producer cancelled" when cancelled.
Run: python examples/asyncio_consumer_producer_wait.py [PORT]  (default 8765; Ctrl-C stops it)
"""

import asyncio
import itertools
import signal
import sys

from ws4py.asyncio import serve

ticks = itertools.count(1)


async def consumer(message: str | bytes) -> None:
    print(f"received: {message!r}", flush=True)


async def producer() -> str:
    try:
        await asyncio.sleep(0.2)
    except asyncio.CancelledError:
        print("producer cancelled", flush=True)
        raise
    return f"tick {next(ticks)}"


async def consumer_handler(websocket):
    async for message in websocket:
        await consumer(message)


async def producer_handler(websocket):
    while True:
        message = await producer()
        await websocket.send(message)


async def handler(websocket):
    consumer_task = asyncio.create_task(consumer_handler(websocket))
    producer_task = asyncio.create_task(producer_handler(websocket))
    done, pending = await asyncio.wait(  # noqa: RUF059 (the page's code, as written)
        [consumer_task, producer_task],
        return_when=asyncio.FIRST_COMPLETED,
    )
    for task in pending:
        task.cancel()


async def main(port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with serve(handler, "localhost", port) as server:
        print(f"serving on ws://localhost:{server.sockets[0].getsockname()[1]}/", flush=True)
        await stop.wait()
    # Leaving ``async with`` closed every connection with 1001 and waited for the handlers.


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8765))
