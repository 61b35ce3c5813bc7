"""Helpers of the gevent tests: the monkey-patched peers (``gevent_peers.py``) in subprocesses.

pytest's own process is never monkey-patched: every gevent server and
gevent client runs in a subprocess started here, and the tests talk to it
over real sockets on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

PEERS = Path(__file__).resolve().parent / "gevent_peers.py"
ROOT = Path(__file__).resolve().parents[2]
#: Seconds any one wait of these tests may take.
TIMEOUT = 10.0

# The Autobahn harness, the fault and interop helpers of the other suites.
for folder in ("core", "autobahn_sockets", "faults", "interop"):
    if str(ROOT / "tests" / folder) not in sys.path:
        sys.path.append(str(ROOT / "tests" / folder))


def peer_env() -> dict[str, str]:
    # Numeric addresses need no resolver thread.
    return {**os.environ, "GEVENT_RESOLVER": "block", "PYTHONUNBUFFERED": "1"}


class GeventServer:
    """``gevent_peers.py server`` in a subprocess; its stdout lines are kept in :attr:`lines`."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(PEERS), "server", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=peer_env(),
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        if not first.startswith("ready "):
            self.process.kill()
            raise AssertionError(f"the gevent server did not start: {first!r} {self.process.stderr.read()}")  # type: ignore[union-attr]
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

    def url(self, path: str = "/echo", scheme: str = "ws") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def status(self) -> dict[str, int]:
        """Websockets tracked by the pool, open descriptors, live greenlets, RSS (KiB)."""
        code, body = self.get("/status")
        assert code == 200, (code, body)
        return json.loads(body)  # type: ignore[no-any-return]

    def stop(self) -> int:
        """SIGTERM (``server.stop()``); the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(TIMEOUT)
        for reader in self._readers:
            reader.join(TIMEOUT)
        return self.process.returncode

    def tracebacks(self) -> list[str]:
        return [line for line in self.errors if "Traceback" in line]


def run_peer(*args: str, timeout: float = 60.0) -> dict[str, Any]:
    """``gevent_peers.py ARGS`` to its end; its last stdout line, as JSON."""
    result = subprocess.run(
        [sys.executable, str(PEERS), *args], capture_output=True, text=True, timeout=timeout, env=peer_env()
    )
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and lines, f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return json.loads(lines[-1])  # type: ignore[no-any-return]
