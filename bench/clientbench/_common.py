"""What every client runner of the client benchmark shares: its command line, the phases, the loops, the result.

A runner is one client library (and API) in its own virtualenv and process:
``python RUNNER.py PORT MODE KIND SIZE WARMUP DURATION [--uvloop]``. It connects to
the C server (``server.c``) at ``ws://127.0.0.1:PORT/{echo,stream,count}/KIND/SIZE``
(receive rows then send the text message ``go``, which starts the stream),
runs for WARMUP seconds, prints ``start`` (the harness reads the server's CPU
then), runs for DURATION seconds, and prints one JSON line::

    {"ok": true, "count": N, "wall_s": ..., "cpu_s": ...}

``count``: the round trips (lockstep), messages (receive, send) or
connections (connect) of the measured interval; ``cpu_s``: the runner's CPU
time over it (every thread: ``getrusage(RUSAGE_SELF)``). A failure prints
``{"ok": false, "error": ...}``. The runner then exits at once (``os._exit``):
what it would do after the interval (closing a stream that the server keeps
filling) is not measured, and must not hang.

Every message, both ways, is SIZE bytes of the pattern ``'a' + i % 26`` (ASCII,
so valid UTF-8): the runner checks each one it receives, the server each one
it gets. This module sits next to the runners (the script's directory is on
``sys.path``) and uses only the standard library.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from time import perf_counter
from typing import Any, NoReturn

MODES = ("lockstep", "receive", "send", "connect")
#: The server's mode for each runner mode (the first part of the request path).
SERVER_MODE = {"lockstep": "echo", "receive": "stream", "send": "count", "connect": "echo"}
END = "end"  # send rows: the text message after the last one; the server answers "count N"
GO = "go"  # receive rows: the text message that starts the server's stream (a subscription)


def pattern(size: int) -> bytes:
    """The SIZE bytes of every message: byte i is ``'a' + i % 26``."""
    alphabet = bytes(range(0x61, 0x61 + 26))
    return (alphabet * (size // 26 + 1))[:size]


def cpu_time() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Run:
    """One measurement: what to run, the phases (warm-up, then the measured interval) and the result."""

    def __init__(self, description: str, argv: list[str] | None = None) -> None:
        parser = argparse.ArgumentParser(description=description)
        parser.add_argument("port", type=int)
        parser.add_argument("mode", choices=MODES)
        parser.add_argument("kind", choices=("text", "binary"))
        parser.add_argument("size", type=int)
        parser.add_argument("warmup", type=float)
        parser.add_argument("duration", type=float)
        parser.add_argument("--uvloop", action="store_true", help="run on uvloop (asyncio clients)")
        args = parser.parse_args(argv)
        self.mode: str = args.mode
        self.text: bool = args.kind == "text"
        self.size: int = args.size
        self.warmup: float = args.warmup
        self.duration: float = args.duration
        self.uvloop: bool = args.uvloop
        self.url = f"ws://127.0.0.1:{args.port}/{SERVER_MODE[args.mode]}/{args.kind}/{args.size}"
        self.data = pattern(args.size)
        #: The message as the library hands it over: ``str`` for text, ``bytes`` for binary.
        self.payload: str | bytes = self.data.decode("ascii") if self.text else self.data
        #: Loops look at the clock when ``n & mask == 0``: every 64 small messages (a clock read is a few
        #: percent of a 1 µs message), every large one or round trip.
        self.mask = 63 if args.mode in ("receive", "send") and args.size <= 1024 else 0
        self.started = 0.0
        self.started_cpu = 0.0
        self.warm_end = perf_counter() + self.warmup  # reset by the runner once it is connected
        self.end = 0.0

    def connected(self) -> None:
        """The warm-up starts now (connecting is not part of it, except in connect rows)."""
        self.warm_end = perf_counter() + self.warmup

    def start(self) -> None:
        """The measured interval starts now."""
        sys.stdout.write("start\n")
        sys.stdout.flush()
        self.started_cpu = cpu_time()
        self.started = perf_counter()
        self.end = self.started + self.duration

    def finish(self, count: int) -> NoReturn:
        """The measured interval ends now: prints the result and exits."""
        wall = perf_counter() - self.started
        cpu = cpu_time() - self.started_cpu
        print(json.dumps({"ok": True, "count": count, "wall_s": round(wall, 6), "cpu_s": round(cpu, 6)}), flush=True)
        os._exit(0)

    def fail(self, error: str) -> NoReturn:
        print(json.dumps({"ok": False, "error": error}), flush=True)
        os._exit(1)

    def wrong(self, got: object) -> NoReturn:
        length = len(got) if isinstance(got, (str, bytes, bytearray, memoryview)) else "?"
        self.fail(f"a wrong message ({length} long, not {self.size}): {repr(got)[:60]}")

    def check_count(self, reply: object, total: int) -> None:
        """Send rows: the server's answer to ``end`` must count every message sent."""
        if reply != f"count {total}":
            self.fail(f"sent {total} messages, the server answered {reply!r}")


class Counter:
    """The phases for callback clients: ``tick()`` after each message, True once the measured interval is over."""

    __slots__ = ("end", "mask", "measuring", "n", "run")

    def __init__(self, run: Run) -> None:
        self.run = run
        self.mask = run.mask
        self.n = 0
        self.end = run.warm_end
        self.measuring = False

    def tick(self) -> bool:
        self.n += 1
        if self.n & self.mask or perf_counter() < self.end:
            return False
        if self.measuring:
            return True
        self.run.start()
        self.n = 0
        self.end = self.run.end
        self.measuring = True
        return False


def main(run_client: Callable[[Run], Any], description: str) -> None:
    """Parses the command line and runs ``run_client(run)`` (it ends with ``run.finish`` or ``run.fail``);
    an exception is a failed run."""
    run = Run(description)
    try:
        run_client(run)
    except BaseException as exc:  # whatever the library raised is the run's error
        traceback.print_exc(file=sys.stderr)
        run.fail(f"{type(exc).__name__}: {exc}")
    run.fail("the runner returned without a result")


def run_async(run: Run, coro: Coroutine[Any, Any, Any]) -> None:
    """``asyncio.run``, or ``uvloop.run`` with ``--uvloop``."""
    if run.uvloop:
        import uvloop

        uvloop.run(coro)
    else:
        asyncio.run(coro)


# -- loops for clients with a blocking send() and recv() ----------------------------


def sync_rows(
    run: Run,
    connect: Callable[[], Any],
    cycle: Callable[[], None],
    send: Callable[[Any], Callable[[Any], object]],
    recv: Callable[[Any], Callable[[], object]],
    send_end: Callable[[Any], Callable[[str], object]] | None = None,
    recv_reply: Callable[[Any], Callable[[], object]] | None = None,
) -> NoReturn:
    """Every mode for a blocking client: ``connect()`` opens a connection; ``cycle()`` opens and closes one
    (connect rows); ``send(ws)`` and ``recv(ws)`` give the bound methods the loops call; ``send_end`` /
    ``recv_reply`` (default: ``send`` / ``recv``) send the text ``end`` and receive the server's text answer in
    send rows."""
    if run.mode == "connect":
        sync_connect(run, cycle)
    ws = connect()
    run.connected()
    if run.mode == "lockstep":
        sync_lockstep(run, send(ws), recv(ws))
    if run.mode == "receive":
        (send_end or send)(ws)(GO)
        sync_receive(run, recv(ws))
    sync_send(run, send(ws), (send_end or send)(ws), (recv_reply or recv)(ws))


def sync_lockstep(run: Run, send: Callable[[Any], object], recv: Callable[[], object]) -> NoReturn:
    payload = run.payload
    mask = run.mask

    def phase(end: float) -> int:
        n = 0
        while True:
            send(payload)
            got = recv()
            if got != payload:
                run.wrong(got)
            n += 1
            if not n & mask and perf_counter() >= end:
                return n

    phase(run.warm_end)
    run.start()
    run.finish(phase(run.end))


def sync_receive(run: Run, recv: Callable[[], object]) -> NoReturn:
    payload = run.payload
    mask = run.mask

    def phase(end: float) -> int:
        n = 0
        while True:
            got = recv()
            if got != payload:
                run.wrong(got)
            n += 1
            if not n & mask and perf_counter() >= end:
                return n

    phase(run.warm_end)
    run.start()
    run.finish(phase(run.end))


def sync_send(
    run: Run, send: Callable[[Any], object], send_end: Callable[[str], object], recv_reply: Callable[[], object]
) -> NoReturn:
    payload = run.payload
    mask = run.mask

    def phase(end: float) -> int:
        n = 0
        while True:
            send(payload)
            n += 1
            if not n & mask and perf_counter() >= end:
                return n

    total = phase(run.warm_end)
    run.start()
    n = phase(run.end)
    send_end(END)
    run.check_count(recv_reply(), total + n)
    run.finish(n)


def sync_connect(run: Run, cycle: Callable[[], None]) -> NoReturn:
    def phase(end: float) -> int:
        n = 0
        while True:
            cycle()
            n += 1
            if perf_counter() >= end:
                return n

    run.connected()
    phase(run.warm_end)
    run.start()
    run.finish(phase(run.end))


# -- loops for clients with awaitable send() and recv() ------------------------------


async def async_rows(
    run: Run,
    connect: Callable[[], Awaitable[Any]],
    cycle: Callable[[], Awaitable[None]],
    send: Callable[[Any], Callable[[Any], Awaitable[object]]],
    recv: Callable[[Any], Callable[[], Awaitable[object]]],
    send_end: Callable[[Any], Callable[[str], Awaitable[object]]] | None = None,
    recv_reply: Callable[[Any], Callable[[], Awaitable[object]]] | None = None,
) -> NoReturn:
    """Every mode for an awaitable client, as :func:`sync_rows`; ``send_end`` / ``recv_reply`` (default: ``send``
    / ``recv``) send the text ``end`` and receive the server's text answer in send rows."""
    if run.mode == "connect":
        await async_connect(run, cycle)
    ws = await connect()
    run.connected()
    if run.mode == "lockstep":
        await async_lockstep(run, send(ws), recv(ws))
    if run.mode == "receive":
        await (send_end or send)(ws)(GO)
        await async_receive(run, recv(ws))
    await async_send(run, send(ws), (send_end or send)(ws), (recv_reply or recv)(ws))


async def async_lockstep(
    run: Run, send: Callable[[Any], Awaitable[object]], recv: Callable[[], Awaitable[object]]
) -> NoReturn:
    payload = run.payload
    mask = run.mask

    async def phase(end: float) -> int:
        n = 0
        while True:
            await send(payload)
            got = await recv()
            if got != payload:
                run.wrong(got)
            n += 1
            if not n & mask and perf_counter() >= end:
                return n

    await phase(run.warm_end)
    run.start()
    run.finish(await phase(run.end))


async def async_receive(run: Run, recv: Callable[[], Awaitable[object]]) -> NoReturn:
    payload = run.payload
    mask = run.mask

    async def phase(end: float) -> int:
        n = 0
        while True:
            got = await recv()
            if got != payload:
                run.wrong(got)
            n += 1
            if not n & mask and perf_counter() >= end:
                return n

    await phase(run.warm_end)
    run.start()
    run.finish(await phase(run.end))


async def async_send(
    run: Run,
    send: Callable[[Any], Awaitable[object]],
    send_end: Callable[[str], Awaitable[object]],
    recv_reply: Callable[[], Awaitable[object]],
) -> NoReturn:
    payload = run.payload
    mask = run.mask

    async def phase(end: float) -> int:
        n = 0
        while True:
            await send(payload)
            n += 1
            if not n & mask and perf_counter() >= end:
                return n

    total = await phase(run.warm_end)
    run.start()
    n = await phase(run.end)
    await send_end(END)
    run.check_count(await recv_reply(), total + n)
    run.finish(n)


async def async_connect(run: Run, cycle: Callable[[], Awaitable[None]]) -> NoReturn:
    async def phase(end: float) -> int:
        n = 0
        while True:
            await cycle()
            n += 1
            if perf_counter() >= end:
                return n

    run.connected()
    await phase(run.warm_end)
    run.start()
    run.finish(await phase(run.end))
