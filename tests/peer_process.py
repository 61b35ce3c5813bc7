"""A test peer in a subprocess that says ``ready PORT`` first (the gevent and pub/sub suites' servers).

Its stdout and stderr lines are kept in :attr:`PeerProcess.lines` and
:attr:`PeerProcess.errors` by two reader threads; :meth:`PeerProcess.stop`
ends it with SIGTERM (SIGKILL after ``timeout``) and returns its exit status.
Import it from a suite that puts ``tests/`` on ``sys.path``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Sequence
from typing import Any

#: Environment of a peer: numeric addresses need no gevent resolver thread; lines come at once.
PEER_ENV = {"GEVENT_RESOLVER": "block", "PYTHONUNBUFFERED": "1"}


class PeerProcess:
    """``argv`` in a subprocess, started once it printed ``ready PORT`` (:attr:`port`)."""

    def __init__(self, argv: Sequence[str], what: str = "peer", timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.process = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **PEER_ENV}
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        first = self.process.stdout.readline()
        if not first.startswith("ready "):
            self.process.kill()
            raise AssertionError(f"the {what} did not start: {first!r} {self.process.stderr.read()}")
        self.port = int(first.split()[1])
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.errors), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    def tracebacks(self) -> list[str]:
        """The lines of stderr that start a traceback."""
        return [line for line in self.errors if "Traceback" in line]

    def stop(self) -> int:
        """SIGTERM (SIGKILL if it is still there after ``timeout``); the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(self.timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(self.timeout)
        for reader in self._readers:
            reader.join(self.timeout)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return self.process.returncode
