"""``serve --workers N``: N processes on one port, each replaced when it dies, all stopped by SIGTERM or Ctrl-C.

The supervisor binds the port first (SO_REUSEPORT, without listening: it
takes no connection, but it finds a port in use at once and keeps the port
while workers come and go), then starts each worker as ``python -m ws4py serve
... --workers 1`` on that port with SO_REUSEPORT, so the kernel spreads new
connections over the workers that listen. A worker says it listens through a
pipe; a second pipe, whose write end only the supervisor holds, tells a
worker the supervisor is gone (end of file) so no worker outlives it.

A worker that dies is started again; one that dies within
:data:`QUICK_DEATH` seconds of its start waits first, twice as long each time
(up to :data:`MAX_BACKOFF`), so a broken application does not fork in a loop.
SIGTERM or SIGINT: every worker gets SIGTERM (closing its connections with
1001 within the close timeout), those still running after twice that are
killed, and the supervisor exits 0.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType

from .worker import WorkerConfig, listen_error, url_of

__all__ = ["MAX_BACKOFF", "QUICK_DEATH", "Supervisor"]

#: A worker that dies sooner than this after its start counts as failing at once.
QUICK_DEATH = 2.0
#: The first and the longest wait before a worker that keeps dying at once is started again.
FIRST_BACKOFF = 0.25
#: The longest wait (seconds) before a worker that keeps dying at once is started again.
MAX_BACKOFF = 30.0


@dataclass
class _Slot:
    """One of the N workers: its process, when it started, and when to start it again."""

    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    failures: int = 0
    restart_at: float = 0.0
    pids: list[int] = field(default_factory=list)


class Supervisor:
    """Runs and replaces ``workers`` processes serving ``config`` on one port; :meth:`run` returns the exit status."""

    def __init__(self, config: WorkerConfig, workers: int, worker_args: Callable[[int, int, int], list[str]]) -> None:
        """``worker_args(port, ready_fd, parent_fd)``: the command line of one worker, after ``python -m ws4py``."""
        self.config = config
        self.slots = [_Slot() for _ in range(workers)]
        self._worker_args = worker_args
        self._stopping = False

    def run(self) -> int:
        placeholder = self._reserve_port()
        port = placeholder.getsockname()[1]
        ready_r, ready_w = os.pipe()
        parent_r, parent_w = os.pipe()  # parent_w stays here: its close is the workers' end of file
        os.set_blocking(ready_r, False)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
        print(
            f"ws4py serve: {self.config.spec} on {url_of(self.config, port)}"
            f" ({len(self.slots)} workers, supervisor pid {os.getpid()})",
            flush=True,
        )
        try:
            while not self._stopping:
                self._start_due(port, ready_w, parent_r)
                self._read_ready(ready_r)
                self._reap()
            return self._stop_all()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for fd in (ready_r, ready_w, parent_r, parent_w):
                os.close(fd)
            placeholder.close()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stopping = True

    def _reserve_port(self) -> socket.socket:
        host = self.config.host or None
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                host, self.config.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            raise listen_error(self.config, exc) from None
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
        except OSError as exc:
            sock.close()
            raise listen_error(self.config, exc) from None
        return sock

    def _start_due(self, port: int, ready_w: int, parent_r: int) -> None:
        now = time.monotonic()
        for slot in self.slots:
            if slot.process is None and now >= slot.restart_at:
                args = [sys.executable, "-m", "ws4py", *self._worker_args(port, ready_w, parent_r)]
                slot.process = subprocess.Popen(args, pass_fds=(ready_w, parent_r))
                slot.started = now
                slot.pids.append(slot.process.pid)

    def _read_ready(self, ready_r: int) -> None:
        with contextlib.suppress(InterruptedError):
            select.select([ready_r], [], [], 0.1)
        try:
            data = os.read(ready_r, 4096)
        except BlockingIOError:
            return
        for line in data.decode().splitlines():
            pid, _, _ = line.partition(" ")
            print(f"ws4py serve: worker {pid} ready", flush=True)

    def _reap(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            process = slot.process
            if process is None or process.poll() is None or self._stopping:
                continue
            status = process.returncode
            how = f"killed by signal {-status}" if status < 0 else f"exited with status {status}"
            slot.process = None
            if now - slot.started < QUICK_DEATH:
                slot.failures += 1
                delay = min(FIRST_BACKOFF * 2 ** (slot.failures - 1), MAX_BACKOFF)
            else:
                slot.failures, delay = 0, 0.0
            slot.restart_at = now + delay
            print(
                f"ws4py serve: worker {process.pid} {how}; starting another in {delay:.2f} s",
                file=sys.stderr,
                flush=True,
            )

    def _stop_all(self) -> int:
        running = [slot.process for slot in self.slots if slot.process is not None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        # Each worker closes its connections within close_timeout, their handlers get as long again.
        deadline = time.monotonic() + 2 * self.config.close_timeout + 5.0
        for process in running:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(
                    f"ws4py serve: worker {process.pid} did not stop in time; killing it", file=sys.stderr, flush=True
                )
                process.kill()
                process.wait()
        print("ws4py serve: stopped", flush=True)
        return 0
