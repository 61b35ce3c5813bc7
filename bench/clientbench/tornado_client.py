"""tornado (latest), its client: ``tornado.websocket.websocket_connect``, ``await conn.write_message()`` /
``await conn.read_message()``.

Run in bench/.venvs/tornado: ``python tornado_client.py PORT MODE KIND SIZE WARMUP DURATION [--uvloop]``.
No compression, messages up to 1 GiB; ``write_message`` returns a future that is done once its bytes are
written out (awaited: the drain).
"""

from __future__ import annotations

from typing import Any

from _common import Run, async_rows, main, run_async
from tornado.websocket import websocket_connect


def run_client(run: Run) -> None:
    def open_ws() -> Any:
        return websocket_connect(run.url, max_message_size=1 << 30)

    async def cycle() -> None:
        conn = await open_ws()
        conn.close()
        while await conn.read_message() is not None:  # None: the server's close frame and TCP close came
            pass

    def send(conn: Any) -> Any:
        write = conn.write_message
        if run.text:
            return write
        return lambda data: write(data, binary=not isinstance(data, str))  # the "end" mark is text

    run_async(run, async_rows(run, open_ws, cycle, send, lambda conn: conn.read_message))


if __name__ == "__main__":
    main(run_client, __doc__ or "")
