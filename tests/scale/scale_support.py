"""What the scale tests share: ``python -m ws4py serve fanout_app:handler`` in a subprocess, and its clients.

The server runs in a session of its own (its workers too), so that :meth:`Served.stop`
ends every process it started, whatever state it is in: SIGTERM first (the CLI closes
every connection with 1001 and exits), SIGKILL to the whole group after a bound.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
APP = "fanout_app:handler"
#: Bound of a wait for a server to listen or stop: far above what it takes.
START_TIMEOUT = 20.0


class Served:
    """A ``python -m ws4py serve`` process (and its workers); its output in ``log``."""

    def __init__(self, argv: Sequence[str], log: Path, prefix: Sequence[str] = ()) -> None:
        self.log = log
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p))
        command = [*prefix, sys.executable, "-m", "ws4py", "serve", APP, *argv]
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                command, cwd=HERE, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def output(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-3000:]
        return ""

    def check_alive(self) -> None:
        code = self.process.poll()
        assert code is None, f"the server exited with status {code}:\n{self.output()}"

    def stop(self) -> None:
        """SIGTERM, then SIGKILL to the whole process group after a bound: nothing it started outlives it."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(START_TIMEOUT)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(START_TIMEOUT)


@contextlib.contextmanager
def serving(argv: Sequence[str], log: Path, prefix: Sequence[str] = ()) -> Iterator[Served]:
    served = Served(argv, log, prefix)
    try:
        yield served
    finally:
        served.stop()


def wait_workers_ready(served: Served, workers: int) -> list[int]:
    """Until the supervisor has said "worker PID ready" for ``workers`` workers: their pids."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        served.check_alive()
        pids = [int(line.split()[3]) for line in served.output().splitlines() if line.endswith(" ready")]
        if len(pids) >= workers:
            return pids
        assert time.monotonic() < deadline, f"{len(pids)} of {workers} workers ready:\n{served.output()}"
        time.sleep(0.05)


def wait_listening(served: Served, host: str, port: int) -> None:
    """Until ``host:port`` accepts a TCP connection (the server's first worker is up)."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        served.check_alive()
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            assert time.monotonic() < deadline, f"not listening on {host}:{port}:\n{served.output()}"
            time.sleep(0.05)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
