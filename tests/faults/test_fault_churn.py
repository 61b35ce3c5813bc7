"""Fault 6: connection churn against the wsgiref server.

Each cycle connects, does the opening handshake (a thread of the server's
per request), has one message echoed and does the closing handshake. After
thousands of cycles the process holds as many file descriptors and threads
as before, the manager holds no websocket, and nothing ever hangs.
"""

from __future__ import annotations

import dis
import threading
import time
from collections.abc import Callable
from typing import Any

from faultkit import RawClient, Server, fd_count, wait_until

from ws4py.loop import EventLoop
from ws4py.protocol import CloseReceived, Connection, Role, TextReceived
from ws4py.websocket import EchoWebSocket


class _Counts:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.opened = 0
        self.closed: dict[int, int] = {}  # close code -> count


def _counting_echo(counts: _Counts) -> type[EchoWebSocket]:
    class CountingEcho(EchoWebSocket):
        def opened(self) -> None:
            with counts.cond:
                counts.opened += 1

        def closed(self, code: int, reason: str | None = None) -> None:
            with counts.cond:
                counts.closed[code] = counts.closed.get(code, 0) + 1
                counts.cond.notify_all()

    return CountingEcho


_FRAMER = Connection(Role.CLIENT)  # frames are masked and stateless: one connection frames for all


def _cycle(port: int, seq: int) -> None:
    """Connect, handshake, one echo, closing handshake, wait for the server to close TCP."""
    text = f"cycle {seq}"
    if seq % 2:
        # The message rides on the handshake's write: the server finds it after the request head.
        client = RawClient(port, timeout=5, first=_FRAMER.send_text(text))
    else:
        client = RawClient(port, timeout=5)
        client.send_text(text)
    try:
        assert client.events(1, 5) == [TextReceived(text)]
        client.sock.sendall(client.conn.send_close(1000))  # type: ignore[union-attr]
        assert client.events(1, 5) == [CloseReceived(1000, "")]
        assert client.wait_eof(5) == b""
    finally:
        client.close()


def _check_nothing_left(server: Server, counts: _Counts, cycles: int, fds_before: int, threads_before: int) -> None:
    assert wait_until(lambda: len(server.manager) == 0, 10), f"{len(server.manager)} websockets still managed"
    with counts.cond:
        assert counts.cond.wait_for(lambda: sum(counts.closed.values()) >= cycles, 10)
        assert counts.opened == cycles
        assert counts.closed == {1000: cycles}
    # Small slack: a request thread may still be on its way out.
    assert wait_until(lambda: fd_count() <= fds_before, 10), f"{fd_count()} fds open, {fds_before} before"
    assert wait_until(lambda: threading.active_count() <= threads_before, 10), (
        f"{threading.active_count()} threads, {threads_before} before: {threading.enumerate()}"
    )


def test_10000_sequential_connect_echo_close_cycles_leave_no_fd_thread_or_websocket_behind(
    serve: Callable[..., Server],
) -> None:
    cycles = 10_000
    counts = _Counts()
    server = serve(_counting_echo(counts))
    _cycle(server.port, 0)  # warm-up: the manager, the codec, the first request thread
    assert wait_until(lambda: len(server.manager) == 0, 5)
    fds_before, threads_before = fd_count(), threading.active_count()
    started = time.monotonic()
    for seq in range(1, cycles):
        _cycle(server.port, seq)
    elapsed = time.monotonic() - started
    _check_nothing_left(server, counts, cycles, fds_before, threads_before)
    print(f"{cycles} sequential cycles in {elapsed:.1f}s")


def test_4_clients_in_parallel_doing_6000_cycles_never_hang_and_leave_nothing_behind(
    serve: Callable[..., Server],
) -> None:
    workers, per_worker = 4, 1500
    counts = _Counts()
    server = serve(_counting_echo(counts))
    _cycle(server.port, 0)
    assert wait_until(lambda: len(server.manager) == 0, 5)
    fds_before, threads_before = fd_count(), threading.active_count()
    failures: list[str] = []
    done = [0] * workers

    def work(index: int) -> None:
        for n in range(per_worker):
            if failures:
                return
            try:
                _cycle(server.port, 1 + index * per_worker + n)
            except BaseException as exc:
                failures.append(f"worker {index}, cycle {n}: {type(exc).__name__}: {exc}")
                return
            done[index] += 1

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "cycles still running after 120s"
    assert not failures, f"after {sum(done)} cycles: {failures[0]}"
    _check_nothing_left(server, counts, 1 + workers * per_worker, fds_before, threads_before)


def _drain_recv_line() -> int:
    """The line of ``EventLoop._drain_wakeups`` that reads the wake-up socket (from its bytecode)."""
    code = EventLoop._drain_wakeups.__code__
    offsets = [ins.offset for ins in dis.get_instructions(code) if ins.argval == "recv"]
    if not offsets:
        raise RuntimeError("EventLoop._drain_wakeups no longer reads its wake-up socket with recv()")
    for start, end, line in code.co_lines():
        if start <= offsets[0] < end and line is not None:
            return line
    raise RuntimeError("no line number for the recv() of EventLoop._drain_wakeups")


def test_wakeup_written_while_the_manager_drains_its_wakeup_socket_is_not_lost(
    serve: Callable[..., Server],
) -> None:
    """A wake-up must not be lost when it is written while the manager drains its wake-up socket.

    The race, made deterministic: the manager's thread is held (by a trace function) just
    before it reads its wake-up socket while another thread wakes it up; then a new
    connection must still be taken over by the manager. (Regression: ``_drain_wakeups``
    used to clear ``_wake_pending`` before draining, so that wake-up was swallowed with
    the flag left set, and no other thread could wake the loop again: under CPU contention
    it struck within tens of parallel connections.)
    """
    code, recv_line = EventLoop._drain_wakeups.__code__, _drain_recv_line()
    armed, paused, resume = threading.Event(), threading.Event(), threading.Event()

    def in_drain(frame: Any, event: str, arg: Any) -> Any:
        if event == "line" and frame.f_lineno == recv_line and armed.is_set():
            armed.clear()
            paused.set()
            resume.wait(5)
        return in_drain

    def tracer(frame: Any, event: str, arg: Any) -> Any:
        return in_drain if frame.f_code is code else None

    counts = _Counts()
    # Put back whatever tracer was there (coverage's measures the threads later tests start).
    previous = threading.gettrace()
    threading.settrace(tracer)  # only the threads started now: the manager's and serve_forever's
    try:
        server = serve(_counting_echo(counts))
    finally:
        threading.settrace(previous)  # type: ignore[arg-type]
    first = RawClient(server.port, timeout=5)
    try:
        first.send_text("registered")
        assert first.events(1, 5) == [TextReceived("registered")]

        armed.set()
        server.manager.loop.call_soon(lambda: None)  # another thread wakes the manager up...
        if not paused.wait(5):
            raise RuntimeError("the manager never reached the read of its wake-up socket")
        server.manager.loop.call_soon(lambda: None)  # ...and wakes it up again while it drains
        resume.set()
        server.manager.broadcast("tick")
        assert first.events(1, 5) == [TextReceived("tick")]

        # A new connection: its request thread hands it to the manager, which must wake up for it.
        second = RawClient(server.port, timeout=5)
        try:
            second.send_text("hello")
            assert second.events(1, 3) == [TextReceived("hello")], "the manager never took the new connection"
        finally:
            second.close()
    finally:
        resume.set()
        first.close()
