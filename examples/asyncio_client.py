"""A ws4py.asyncio client: ``async with connect(...)`` and ``async for message in websocket``.

It sends "Hello world!", then prints the messages it receives: COUNT of
them, or until the server closes the connection or Ctrl-C. Run it against
examples/asyncio_consumer_producer_gather.py (or _wait.py): the server prints
"received: 'Hello world!'" and this client prints its ticks.
Run: python examples/asyncio_client.py [URI] [COUNT]  (default ws://localhost:8765/, no limit)
"""

import asyncio
import contextlib
import sys

from ws4py.asyncio import connect


async def main(uri: str, count: int | None) -> None:
    async with connect(uri) as websocket:
        await websocket.send("Hello world!")
        received = 0
        async for message in websocket:
            print(f"< {message}", flush=True)
            received += 1
            if received == count:
                break
    # Leaving ``async with`` closed the connection (1000), on Ctrl-C too.
    print(f"closed: {websocket.close_code}", flush=True)


if __name__ == "__main__":
    uri = sys.argv[1] if len(sys.argv) > 1 else "ws://localhost:8765/"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else None
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(uri, count))
