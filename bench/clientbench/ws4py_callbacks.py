"""ws4py (this repository), its callbacks client on asyncio: ``ws4py.async_websocket.connect(url, Handler)``, whose
``opened()`` / ``received_message()`` run straight from the protocol's reads (issue 22).

Run in bench/.venvs/threaded: ``python ws4py_callbacks.py PORT MODE KIND SIZE WARMUP DURATION [--uvloop]``.
The style of the threaded client's runner (``ws4py_threaded.py``): lockstep rows send the next message from
``received_message``, receive rows count there. Send rows call ``ws.send()`` from a task and ``await
ws.drain()`` (the client's flow control: it waits while the write buffer is over ``write_limit``) once per
64 small messages (16 B, 1 KiB) or after every large one, where the loop looks at the clock. Connect rows:
``connect()``, ``close()``, ``await ws.wait_closed()``. No compression; a text message is read as
``str(message)``, a binary one as ``message.data``.
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import Any

from _common import END, GO, Counter, Run, async_connect, main, run_async

from ws4py.async_websocket import WebSocket, connect


class Client(WebSocket):
    job: Run  # set before the first connection

    def __init__(self, proto: Any) -> None:
        super().__init__(proto)
        self.counter = Counter(self.job)
        self.counts = self.job.mode in ("lockstep", "receive")
        self.lockstep = self.job.mode == "lockstep"
        self.binary = not self.job.text
        self.out = self.job.payload
        self.reply: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def opened(self) -> None:
        if self.counts:  # the warm-up starts; lockstep sends the first message, receive subscribes
            self.job.connected()
            self.counter.end = self.job.warm_end
            if self.lockstep:
                self.send(self.out, self.binary)
            else:
                self.send(GO)

    def received_message(self, message: Any) -> None:
        if not self.counts:
            if not self.reply.done():
                self.reply.set_result(str(message))
            return
        got = message.data if self.binary else str(message)
        if got != self.out:
            self.job.wrong(got)
        if self.counter.tick():
            self.job.finish(self.counter.n)
        if self.lockstep:
            self.send(self.out, self.binary)


async def send_rows(run: Run, ws: Client) -> None:
    send = ws.send
    drain = ws.drain
    payload = run.payload
    binary = ws.binary
    mask = run.mask

    async def phase(end: float) -> int:
        n = 0
        while True:
            send(payload, binary)
            n += 1
            if not n & mask:
                await drain()
                if perf_counter() >= end:
                    return n

    run.connected()
    total = await phase(run.warm_end)
    run.start()
    n = await phase(run.end)
    send(END)
    run.check_count(await ws.reply, total + n)
    run.finish(n)


def run_client(run: Run) -> None:
    Client.job = run

    async def client() -> None:
        if run.mode == "connect":

            async def cycle() -> None:
                ws = await connect(run.url, Client, compression=None)
                ws.close()
                await ws.wait_closed()

            await async_connect(run, cycle)
        ws = await connect(run.url, Client, compression=None)
        if run.mode == "send":
            await send_rows(run, ws)
        await ws.wait_closed()
        run.fail("the connection ended")

    run_async(run, client())


if __name__ == "__main__":
    main(run_client, __doc__ or "")
