"""ws4py (this repository), its awaitable client: ``ws4py.asyncio.connect``, ``await ws.send()`` / ``await ws.recv()``.

Run in bench/.venvs/threaded: ``python ws4py_connect.py PORT MODE KIND SIZE WARMUP DURATION [--uvloop]``.
No compression; ``send`` waits while the write buffer is over its limit (the library's flow control).
"""

from __future__ import annotations

from typing import Any

from _common import Run, async_rows, main, run_async

from ws4py.asyncio import connect


def run_client(run: Run) -> None:
    def open_ws() -> Any:
        return connect(run.url, compression=None)

    async def cycle() -> None:
        async with open_ws():
            pass

    run_async(run, async_rows(run, open_ws, cycle, lambda ws: ws.send, lambda ws: ws.recv))


if __name__ == "__main__":
    main(run_client, __doc__ or "")
