"""Run ``python -m ws4py`` in subprocesses and wait, boundedly, for what they print."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
#: Seconds for anything a process prints, or for it to end once asked.
TIMEOUT = float(os.environ.get("CLI_TIMEOUT", 15.0))


class Command:
    """``python -m ws4py ARGS`` in a subprocess (cwd: ``cwd``); its output (stdout and stderr) read by a thread."""

    def __init__(self, *args: str, cwd: Path = HERE) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ws4py", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, count: int = 1, timeout: float = TIMEOUT) -> list[re.Match[str]]:
        """The first ``count`` matches of ``pattern`` among the lines printed (waiting for them)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [m for m in map(regex.search, self.lines) if m]
                if len(found) >= count:
                    return found[:count]
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(f"no {count} line(s) matching {pattern!r}; output:\n{self.output}")
                self._changed.wait(min(left, 0.1))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = TIMEOUT) -> int:
        """Send ``sig``, wait for the end; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            self._reader.join(timeout)

    def close(self) -> None:
        """Kill it if it still runs (a failed test), and its workers with it."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(TIMEOUT)
        self._reader.join(TIMEOUT)


def serve(*args: str, cwd: Path = HERE) -> Command:
    """``python -m ws4py serve ARGS``, once it says it listens (or its workers are ready)."""
    command = Command("serve", *args, cwd=cwd)
    try:
        if "--workers" in args:
            command.wait_for(r"worker \d+ ready", count=int(args[list(args).index("--workers") + 1]))
        else:
            command.wait_for(r"ws4py serve: .* on ")
    except BaseException:
        command.close()
        raise
    return command


def kill_pid(pid: int) -> None:
    """``kill -9 pid``."""
    os.kill(pid, signal.SIGKILL)


def run(
    *args: str, cwd: Path = ROOT, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m ws4py ARGS`` to its end (bounded)."""
    return subprocess.run(
        [sys.executable, "-m", "ws4py", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=env,
    )


def free_port() -> int:
    """A TCP port of 127.0.0.1 nobody listens on now."""
    from redis_support import free_port as redis_free_port

    return redis_free_port()
