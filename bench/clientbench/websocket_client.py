"""websocket-client (latest): ``websocket.create_connection``, ``ws.send()`` / ``ws.recv()`` (blocking, no thread).

Run in bench/.venvs/websocket-client: ``python websocket_client.py PORT MODE KIND SIZE WARMUP DURATION``.
``send`` of a ``str`` sends a text message, of ``bytes`` (``send_bytes``) a binary one; ``recv`` gives
``str`` for text and ``bytes`` for binary. Its defaults: TCP_NODELAY, UTF-8 validation of text.
"""

from __future__ import annotations

from typing import Any

import websocket
from _common import Run, main, sync_rows


def run_client(run: Run) -> None:
    def open_ws() -> Any:
        return websocket.create_connection(run.url)

    def cycle() -> None:
        open_ws().close()

    def send(ws: Any) -> Any:
        if run.text:
            return ws.send
        send_bytes = ws.send_bytes

        def send_either(data: str | bytes) -> None:  # the "end" mark is text
            if isinstance(data, str):
                ws.send(data)
            else:
                send_bytes(data)

        return send_either

    sync_rows(run, open_ws, cycle, send, lambda ws: ws.recv)


if __name__ == "__main__":
    main(run_client, __doc__ or "")
