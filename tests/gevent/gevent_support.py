"""Helpers of the gevent tests: the monkey-patched peers (``gevent_peers.py``) in subprocesses.

pytest's own process is never monkey-patched: every gevent server and
gevent client runs in a subprocess started here, and the tests talk to it
over real sockets on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PEERS = Path(__file__).resolve().parent / "gevent_peers.py"
ROOT = Path(__file__).resolve().parents[2]
#: Seconds any one wait of these tests may take.
TIMEOUT = 10.0

# The Autobahn harness, the fault and interop helpers of the other suites, and tests/ itself
# (last: its folders must not shadow the packages of the same names).
for folder in ("core", "autobahn_sockets", "faults", "interop", ""):
    if str(ROOT / "tests" / folder) not in sys.path:
        sys.path.append(str(ROOT / "tests" / folder))

from peer_process import PEER_ENV, PeerProcess  # noqa: E402


def peer_env() -> dict[str, str]:
    return {**os.environ, **PEER_ENV}


class GeventServer(PeerProcess):
    """``gevent_peers.py server`` in a subprocess; its stdout lines are kept in :attr:`lines`."""

    def __init__(self, *args: str) -> None:
        super().__init__([sys.executable, str(PEERS), "server", *args], "gevent server", TIMEOUT)

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


def run_peer(*args: str, timeout: float = 60.0) -> dict[str, Any]:
    """``gevent_peers.py ARGS`` to its end; its last stdout line, as JSON."""
    result = subprocess.run(
        [sys.executable, str(PEERS), *args], capture_output=True, text=True, timeout=timeout, env=peer_env()
    )
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and lines, f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return json.loads(lines[-1])  # type: ignore[no-any-return]
