"""picows (latest), its callback client: ``ws_connect`` with a ``WSListener``; frames arrive in
``on_ws_frame``, ``transport.send(WSMsgType.TEXT or BINARY, payload)`` sends one.

Run in bench/.venvs/picows: ``python picows_client.py PORT MODE KIND SIZE WARMUP DURATION [--uvloop]``.
picows hands over frames, not messages (the server sends each message as one frame, and the runner checks
FIN); a text payload is decoded with ``get_payload_as_utf8_text()`` (as a JSON feed would), a binary one
compared through ``get_payload_as_memoryview()`` (no copy). Send rows: ``send`` while the transport is
writable, and wait for ``resume_writing`` when it paused (picows' flow control: its ``send`` never waits).
Connect rows: ``send_close()`` then ``wait_disconnected()`` (the server's close frame and TCP close).
"""

from __future__ import annotations

import asyncio
from time import perf_counter
from typing import Any

from _common import END, GO, Counter, Run, async_connect, main, run_async
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect


class Client(WSListener):
    """The listener of every mode; ``run`` and the mode are class attributes (set before connecting)."""

    run: Run

    def __init__(self) -> None:
        self.transport: WSTransport | None = None
        self.counter = Counter(self.run)
        self.msg_type = WSMsgType.TEXT if self.run.text else WSMsgType.BINARY
        self.payload = self.run.payload
        self.data = self.run.data
        self.lockstep = self.run.mode == "lockstep"
        self.counts = self.run.mode in ("lockstep", "receive")  # send rows: the only data frame is the count
        self.writable = asyncio.Event()
        self.writable.set()
        self.reply: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport
        if self.run.mode in ("lockstep", "receive"):  # the warm-up starts; lockstep sends the first message
            self.run.connected()
            self.counter.end = self.run.warm_end
            if self.lockstep:
                transport.send(self.msg_type, self.data)
            else:
                transport.send(WSMsgType.TEXT, GO.encode())

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        msg_type = frame.msg_type
        if msg_type != self.msg_type or not frame.fin or not self.counts:
            self.other_frame(transport, frame)
            return
        if self.run.text:
            got: Any = frame.get_payload_as_utf8_text()
        else:
            got = frame.get_payload_as_memoryview()
        if got != self.payload:
            self.run.wrong(bytes(got) if isinstance(got, memoryview) else got)
        if self.counter.tick():
            self.run.finish(self.counter.n)
        if self.lockstep:
            transport.send(msg_type, self.data)

    def other_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type == WSMsgType.TEXT and not self.reply.done() and self.run.mode == "send":
            self.reply.set_result(frame.get_payload_as_utf8_text())
        elif frame.msg_type == WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code())
            transport.disconnect()
        elif frame.msg_type == WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
        else:
            self.run.fail(f"unexpected frame {frame.msg_type!r} (fin {frame.fin})")

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()


async def send_rows(run: Run, transport: WSTransport, client: Client) -> None:
    send = transport.send
    msg_type = client.msg_type
    data = run.data
    writable = client.writable
    mask = run.mask

    async def phase(end: float) -> int:
        n = 0
        while True:
            if not writable.is_set():
                await writable.wait()
            send(msg_type, data)
            n += 1
            if not n & mask and perf_counter() >= end:
                return n

    run.connected()
    total = await phase(run.warm_end)
    run.start()
    n = await phase(run.end)
    transport.send(WSMsgType.TEXT, END.encode())
    run.check_count(await client.reply, total + n)
    run.finish(n)


def run_client(run: Run) -> None:
    Client.run = run

    async def client() -> None:
        if run.mode == "connect":

            async def cycle() -> None:
                transport, _ = await ws_connect(Client, run.url)
                transport.send_close()
                await transport.wait_disconnected()

            await async_connect(run, cycle)
        transport, listener = await ws_connect(Client, run.url, max_frame_size=1 << 30)
        assert isinstance(listener, Client)
        if run.mode == "send":
            await send_rows(run, transport, listener)
        await transport.wait_disconnected()
        run.fail("the server closed the connection")

    run_async(run, client())


if __name__ == "__main__":
    main(run_client, __doc__ or "")
