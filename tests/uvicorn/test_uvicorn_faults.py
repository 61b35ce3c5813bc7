"""Faults through uvicorn with ws4py's protocol: peers that vanish (mid-message, or while the app
waits to send to them) and 10,000 connections.

Each ends with nothing left behind: no connection in ``server_state.connections``, no task in
``server_state.tasks`` or on the server's loop beyond the ones it had before, no file descriptor.
The vanishing peers' server runs in a thread of this process (:func:`uvicorn_support.serving`),
so ``/proc/self/fd`` counts its descriptors (and the clients', closed by then); the 10,000
connections' runs in a process of its own (``served_apart.py``), which its ``/probe`` reports on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from faultkit import fd_count, reset, unsent_bytes
from faultkit import wait_until as poll_until
from uvicorn_apps import asgi_app
from uvicorn_support import (
    TIMEOUT,
    RawClient,
    Record,
    Running,
    nothing_left,
    run,
    serving,
    unmeasured_env,
    wait_until,
)

import ws4py.server.uvicorn
from ws4py.asyncio import connect
from ws4py.protocol import ClientHandshake, TextReceived


def _loop_tasks(running: Running) -> int:
    """The tasks on the server's loop (the probe's own one included: the same every time)."""
    return running.call(lambda: len(asyncio.all_tasks()))


@pytest.mark.parametrize("how", ["rst", "fin"])
def test_a_peer_that_vanishes_mid_message_is_a_disconnect_1006_with_nothing_left(how: str) -> None:
    record = Record()
    with serving(asgi_app(record)) as running:
        RawClient(running.port, "/echo").close()  # the first connection's lazy imports and caches
        assert record.get() == ("disconnect", 1006, "")
        nothing_left(running)
        tasks, fds = _loop_tasks(running), fd_count()
        client = RawClient(running.port, "/echo")
        client.send(client.core.send_text("whole"))
        assert client.next_event((TextReceived,)) == TextReceived("whole")
        # A fragmented message (its first frame whole) and half of a large second frame.
        client.send(client.core.send_text("first part ", fin=False))
        frame = client.core.send_continuation("x" * 1_000_000, fin=True)
        client.send(frame[: len(frame) // 2])
        assert poll_until(lambda: unsent_bytes(client.sock) == 0, TIMEOUT), "the server did not read the half frame"
        if how == "rst":
            reset(client.sock)
        else:
            client.close()  # a FIN without a close frame
        assert record.get() == ("disconnect", 1006, "")
        nothing_left(running)
        assert _loop_tasks(running) == tasks
        assert poll_until(lambda: fd_count() == fds, TIMEOUT), f"{fd_count() - fds} descriptors left"


@pytest.mark.parametrize("how", ["rst", "fin", "close frame"])
def test_a_peer_that_stops_reading_and_leaves_ends_the_apps_waiting_send_with_nothing_left(
    how: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client stops reading, the app's send waits for the transport to drain, then the client goes:
    with a reset, with a FIN (no close frame), or with its close frame (and still reads nothing).

    Closing a transport flushes its buffer first, which a peer that reads nothing never lets
    happen: the closing handshake's bound (``close_timeout``, made short here) ends it.
    """
    monkeypatch.setattr(ws4py.server.uvicorn, "CLOSE_TIMEOUT", 0.3)
    record = Record()
    with serving(asgi_app(record)) as running:
        client = RawClient(running.port, "/flood", rcvbuf=64 * 1024)
        try:
            wait_until(running, _stuck_in_send(record), "the app waiting in send")
            if how == "rst":
                reset(client.sock)
            elif how == "fin":
                client.sock.shutdown(socket.SHUT_WR)  # a FIN without a close frame, its unread bytes kept
            else:
                client.send(client.core.send_close(1000))
            events = [record.get()]
            while events[-1][0] == "sent":
                events.append(record.get())
            assert events[-1][0] == "send raised" and isinstance(events[-1][1], OSError), events[-3:]
            nothing_left(running)
        finally:
            client.close()
    assert record.empty()
    # The app's OSError is the client's leaving, not an application error (and nothing on the loop).
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def _stuck_in_send(record: Record) -> Callable[[], bool]:
    """A predicate for the server's loop: the flood app began and sent nothing since the last poll."""
    began = False

    def stuck() -> bool:
        nonlocal began
        progressed = not record.empty()
        record.clear()
        began = began or progressed
        return began and not progressed

    return stuck


#: The connections of the churn test, and how many are open at once.
CYCLES = 10_000
AT_ONCE = 50
SERVED_APART = Path(__file__).with_name("served_apart.py")


@contextlib.contextmanager
def server_apart() -> Iterator[tuple[int, subprocess.Popen[str]]]:
    """served_apart.py's uvicorn in a process of its own: its port; SIGTERM must end its graceful shutdown."""
    server = subprocess.Popen(
        [sys.executable, str(SERVED_APART)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=unmeasured_env(),  # traced, the 10,000 cycles would take twice as long
    )
    try:
        assert server.stdout is not None
        ready = select.select([server.stdout], [], [], TIMEOUT)[0]
        line = server.stdout.readline() if ready else ""
        assert line.startswith("port "), f"the server did not start: {line!r}"
        yield int(line.split()[1]), server
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            output, _ = server.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()
            output, _ = server.communicate()
            raise AssertionError(f"the server did not stop on SIGTERM: {output[-3000:]}") from None
    assert server.returncode == 0 and output.endswith("stopped\n"), output[-3000:]
    assert "Traceback" not in output and "ERROR" not in output, output[-3000:]


def _client_frames() -> tuple[bytes, bytes, bytes]:
    """The request head, a masked text frame and a masked close frame, made once by the core."""
    handshake = ClientHandshake("127.0.0.1", "/echo")
    core = handshake.connection()
    return handshake.request_bytes(), core.send_text("hi"), core.send_close(1000)


async def _cycles(port: int, count: int) -> int:
    """``count`` connect / echo / close cycles by AT_ONCE workers; how many went as they should."""
    request, text, close = _client_frames()
    done = 0

    async def worker(cycles: int) -> None:
        nonlocal done
        for _ in range(cycles):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                assert head.startswith(b"HTTP/1.1 101 "), head
                writer.write(text)
                assert await reader.readexactly(4) == b"\x81\x02hi"
                writer.write(close)
                assert await reader.readexactly(4) == b"\x88\x02\x03\xe8"
                assert await reader.read() == b""  # the server closes TCP first
                done += 1
            finally:
                writer.close()

    await asyncio.gather(*(worker(count // AT_ONCE) for _ in range(AT_ONCE)))
    return done


async def _probe(port: int) -> dict[str, Any]:
    async with connect(f"ws://127.0.0.1:{port}/probe") as conn:
        probe: dict[str, Any] = json.loads(await conn.recv())
    return probe


def _settled(port: int, expected: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Probe until ``expected(probe)`` (the last connections may still be closing), at most TIMEOUT seconds."""
    deadline = time.monotonic() + TIMEOUT
    while not expected(probe := run(_probe(port))) and time.monotonic() < deadline:
        time.sleep(0.05)
    return probe


def test_ten_thousand_connections_leave_no_task_fd_or_connection_behind() -> None:
    """10,000 connect / echo / close cycles, 50 at a time, against uvicorn in a process of its own.

    Its probe (a connection of its own, so one connection and one task) reads the same
    descriptors and loop tasks before and after, and every echo connection's disconnect came
    with the client's 1000.
    """
    with server_apart() as (port, _server):
        assert run(_cycles(port, AT_ONCE)) == AT_ONCE  # warm: lazy imports, caches
        before = _settled(port, lambda probe: probe["disconnects"] == {"1000": AT_ONCE})
        assert (before["connections"], before["tasks"]) == (1, 1), before  # the probe's own
        assert run(_cycles(port, CYCLES), timeout=60) == CYCLES
        expected = {**before, "disconnects": {"1000": AT_ONCE + CYCLES}}
        assert _settled(port, lambda probe: probe == expected) == expected
