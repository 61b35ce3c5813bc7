"""ws4py (this repository), its gevent client: ``ws4py.client.geventclient.WebSocketClient``, ``ws.send()`` /
``ws.receive()`` in the main greenlet (the connection runs in a greenlet of its own).

Run in bench/.venvs/integrations: ``python ws4py_gevent.py PORT MODE KIND SIZE WARMUP DURATION``.
``monkey.patch_all()`` first, as the client requires. A text message is read as ``str(message)``, a binary
one as ``message.data``. Connect rows: ``connect()``, ``close()``, ``run_forever()``.
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import functools  # noqa: E402 - after the monkey-patching
from typing import Any  # noqa: E402

from _common import Run, main, sync_rows  # noqa: E402

from ws4py.client.geventclient import WebSocketClient  # noqa: E402


def run_client(run: Run) -> None:
    def open_ws() -> Any:
        ws = WebSocketClient(run.url)
        ws.connect()
        return ws

    def cycle() -> None:
        ws = open_ws()
        ws.close()
        ws.run_forever()

    def send(ws: Any) -> Any:
        return ws.send if run.text else functools.partial(ws.send, binary=True)

    def recv(ws: Any) -> Any:
        receive = ws.receive
        if run.text:
            return lambda: str(receive())
        return lambda: receive().data

    def recv_reply(ws: Any) -> Any:
        receive = ws.receive
        return lambda: str(receive())

    sync_rows(run, open_ws, cycle, send, recv, send_end=lambda ws: ws.send, recv_reply=recv_reply)


if __name__ == "__main__":
    main(run_client, __doc__ or "")
