"""websockets (latest), its threaded client: ``websockets.sync.client.connect``, ``ws.send()`` / ``ws.recv()``.

Run in bench/.venvs/websockets: ``python websockets_sync.py PORT MODE KIND SIZE WARMUP DURATION``.
No compression, no message size limit (a background thread reads the socket, as the library does).
"""

from __future__ import annotations

from typing import Any

from _common import Run, main, sync_rows
from websockets.sync.client import connect


def run_client(run: Run) -> None:
    def open_ws() -> Any:
        return connect(run.url, compression=None, max_size=None)

    def cycle() -> None:
        with open_ws():
            pass

    sync_rows(run, open_ws, cycle, lambda ws: ws.send, lambda ws: ws.recv)


if __name__ == "__main__":
    main(run_client, __doc__ or "")
