"""websockets (latest), its asyncio client: ``websockets.asyncio.client.connect``, ``await ws.send()`` /
``await ws.recv()``.

Run in bench/.venvs/websockets: ``python websockets_asyncio.py PORT MODE KIND SIZE WARMUP DURATION [--uvloop]``.
No compression, no message size limit; ``send`` waits for the write buffer to drain (websockets' own flow
control).
"""

from __future__ import annotations

from typing import Any

from _common import Run, async_rows, main, run_async
from websockets.asyncio.client import connect


def run_client(run: Run) -> None:
    def open_ws() -> Any:
        return connect(run.url, compression=None, max_size=None)

    async def cycle() -> None:
        async with open_ws():
            pass

    async def client() -> None:
        await async_rows(run, open_ws, cycle, lambda ws: ws.send, lambda ws: ws.recv)

    run_async(run, client())


if __name__ == "__main__":
    main(run_client, __doc__ or "")
