"""The "Registration" pattern of the websockets "Patterns" page, on ws4py.asyncio.

The handler is the page's snippet as written, with ``websockets.broadcast``
spelled ``ws4py.asyncio.broadcast``: each new client is registered, "Hello!"
goes to every connected client (itself included), and 10 s later it is
unregistered and its connection closed.
Run: python examples/asyncio_registration_broadcast.py [PORT]  (default 8765; Ctrl-C stops it,
once the handlers still sleeping have returned)
"""

import asyncio
import signal
import sys

import ws4py.asyncio

connected = set()


async def handler(websocket):
    # Register.
    connected.add(websocket)
    try:
        # Broadcast a message to all connected clients.
        ws4py.asyncio.broadcast(connected, "Hello!")
        await asyncio.sleep(10)
    finally:
        # Unregister.
        connected.remove(websocket)


async def main(port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with ws4py.asyncio.serve(handler, "localhost", port) as server:
        print(f"serving on ws://localhost:{server.sockets[0].getsockname()[1]}/", flush=True)
        await stop.wait()
    # Leaving ``async with`` closed every connection with 1001 and waited for the handlers.


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8765))
