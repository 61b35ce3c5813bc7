"""The echo client of the tutorial: sends each message given, prints each answer.

Run: python examples/tutorial_echo_client.py ws://localhost:8765/ hello "how are you?"
"""

import asyncio
import sys

from ws4py.asyncio import connect


async def main(uri: str, messages: list[str]) -> None:
    async with connect(uri) as websocket:
        for message in messages:
            await websocket.send(message)
            answer = await websocket.recv()
            print(f"< {answer}", flush=True)
    # Leaving ``async with`` closed the connection: the closing handshake, code 1000.
    print(f"closed: {websocket.close_code}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
