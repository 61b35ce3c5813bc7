"""ws4py's protocol under gunicorn's uvicorn worker, as the module docstring of ws4py.server.uvicorn shows.

gunicorn runs in a process of its own with one worker of class ``served_apart.Worker``
(uvicorn-worker's ``UvicornWorker`` whose ``CONFIG_KWARGS`` set
``ws="ws4py.server.uvicorn:WebSocketProtocol"``) serving ``served_apart:app``, a plain ASGI
echo app, on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from uvicorn_support import TIMEOUT, run, unmeasured_env

from ws4py.asyncio import ConnectionClosed, connect

HERE = Path(__file__).resolve().parent
#: gunicorn with the worker class as a user names it (gunicorn takes a dotted path, not module:Class).
GUNICORN = [sys.executable, "-m", "gunicorn", "--worker-class", "served_apart.Worker"]


def _read_until(server: subprocess.Popen[str], pattern: str) -> tuple[re.Match[str], str]:
    """Read gunicorn's log until a line matches ``pattern``, at most TIMEOUT seconds; the match and the log so far."""
    assert server.stdout is not None
    log = ""
    deadline = time.monotonic() + TIMEOUT
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0 and server.poll() is None, f"gunicorn never logged {pattern!r}:\n{log[-3000:]}"
        if select.select([server.stdout], [], [], remaining)[0]:
            line = server.stdout.readline()
            log += line
            if match := re.search(pattern, line):
                return match, log


def test_gunicorns_uvicorn_worker_serves_websockets_with_ws4py_and_stops_on_sigterm() -> None:
    server = subprocess.Popen(
        [*GUNICORN, "--bind", "127.0.0.1:0", "--workers", "1", "--graceful-timeout", "5", "served_apart:app"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # Where gunicorn finds served_apart (its --chdir comes too late for the worker class).
        # Unmeasured: its forked worker would save no coverage data anyway.
        env={**unmeasured_env(), "PYTHONPATH": str(HERE)},
    )
    try:
        match, log = _read_until(server, r"Listening at: http://127\.0\.0\.1:(\d+)")
        url = f"ws://127.0.0.1:{match.group(1)}"

        async def client() -> tuple[str | bytes, list[str | bytes], int | None]:
            async with connect(url + "/implementation") as conn:
                implementation = await conn.recv()
            async with connect(url + "/echo") as conn:
                await conn.send("through gunicorn")
                await conn.send(b"\x00\x01" * 40_000)
                echoes = [await conn.recv(), await conn.recv()]
                # Still open when gunicorn is told to stop: the worker's graceful shutdown closes it.
                server.send_signal(signal.SIGTERM)
                with contextlib.suppress(ConnectionClosed):
                    await conn.recv()
                return implementation, echoes, conn.close_code

        implementation, echoes, code = run(client())
        assert implementation == "ws4py.server.uvicorn.WebSocketProtocol"
        assert echoes == ["through gunicorn", b"\x00\x01" * 40_000]
        assert code == 1012  # service restart: ws4py's protocol closed it in uvicorn's shutdown
        output, _ = server.communicate(timeout=TIMEOUT)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    log += output
    assert server.returncode == 0, log[-3000:]
    assert "Shutting down: Master" in log, log[-3000:]
    assert "Traceback" not in log and "[ERROR]" not in log, log[-3000:]
