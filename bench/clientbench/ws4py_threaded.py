"""ws4py's threaded client, ``ws4py.client.threadedclient.WebSocketClient``: this repository's, and ws4py 0.6.0's.

Run in bench/.venvs/threaded (this repository) or bench/.venvs/ws4py-orig (ws4py 0.6.0, the same API):
``python ws4py_threaded.py PORT MODE KIND SIZE WARMUP DURATION``.
The documented style: a subclass whose ``received_message`` runs on the client's thread; lockstep rows
send the next message from it, receive rows count there. Send rows call ``ws.send()`` from the main thread
(it writes before it returns); the server's answer comes to ``received_message`` through a queue. Connect
rows: ``connect()``, ``close()``, ``run_forever()`` (until the server's close frame and TCP close).
A text message is read as ``str(message)``, a binary one as ``message.data``.
"""

from __future__ import annotations

import functools
import queue
from typing import Any

from _common import GO, Counter, Run, main, sync_connect, sync_send

from ws4py.client.threadedclient import WebSocketClient


class Client(WebSocketClient):  # type: ignore[misc]
    job: Run  # set before the first connection (not "run": the client thread's target)

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.counter = Counter(self.job)
        self.counts = self.job.mode in ("lockstep", "receive")
        self.lockstep = self.job.mode == "lockstep"
        self.replies: queue.Queue[str] = queue.Queue()
        self.binary = not self.job.text
        self.out = self.job.payload

    def opened(self) -> None:
        if self.counts:  # the warm-up starts; lockstep sends the first message
            self.job.connected()
            self.counter.end = self.job.warm_end
            if self.lockstep:
                self.send(self.out, self.binary)
            else:
                self.send(GO)

    def received_message(self, message: Any) -> None:
        if not self.counts:
            self.replies.put(str(message))
            return
        got = message.data if self.binary else str(message)
        if got != self.out:
            self.job.wrong(got)
        if self.counter.tick():
            self.job.finish(self.counter.n)
        if self.lockstep:
            self.send(self.out, self.binary)


def run_client(run: Run) -> None:
    Client.job = run
    if run.mode == "connect":

        def cycle() -> None:
            ws = Client(run.url)
            ws.connect()
            ws.close()
            ws.run_forever()

        sync_connect(run, cycle)
    ws = Client(run.url)
    ws.connect()
    if run.mode == "send":
        run.connected()
        send = functools.partial(ws.send, binary=True) if ws.binary else ws.send
        sync_send(run, send, ws.send, ws.replies.get)
    ws.run_forever()
    run.fail("the connection ended")


if __name__ == "__main__":
    main(run_client, __doc__ or "")
