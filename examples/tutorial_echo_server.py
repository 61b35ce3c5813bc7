"""The echo server of the tutorial: every message comes back to whoever sent it.

Run: python examples/tutorial_echo_server.py [PORT]  (default 8765; Ctrl-C stops it)
The same handler under the command line: python -m ws4py serve examples.tutorial_echo_server:echo --port 8765
"""

import asyncio
import contextlib
import sys

from ws4py.asyncio import serve


async def echo(websocket):
    async for message in websocket:
        await websocket.send(message)


async def main(port: int) -> None:
    async with serve(echo, "localhost", port) as server:
        print(f"serving on ws://localhost:{port}/", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8765))
