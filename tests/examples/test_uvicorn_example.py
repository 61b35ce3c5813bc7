"""examples/uvicorn_app.py (the uvicorn how-to's example), served as its reader serves it.

In this process through tests/uvicorn's :func:`serving` (to see that the connections are ws4py's),
then with the command lines of its docstring: ``uvicorn ... --ws ws4py...`` and gunicorn's worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "uvicorn"))

from uvicorn_support import TIMEOUT, run, serving, unmeasured_env  # noqa: E402

from ws4py.asyncio import connect  # noqa: E402
from ws4py.server.uvicorn import WebSocketProtocol  # noqa: E402


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("uvicorn_app", ROOT / "examples" / "uvicorn_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


async def _echo_twice(url: str) -> list[str | bytes]:
    async with connect(url) as conn:
        await conn.send("héllo")
        await conn.send("x" * 100_000)
        return [await conn.recv(), await conn.recv()]


@pytest.mark.parametrize("name", ["app", "starlette_app"])
def test_uvicorn_example_echoes_on_ws4pys_protocol(name: str) -> None:
    example = _example()
    with serving(getattr(example, name), ws=example.WS4PY) as running:

        async def client() -> tuple[list[str | bytes], list[object]]:
            async with connect(running.url("/echo")) as conn:
                await conn.send("héllo")
                echoed = [await conn.recv()]
                protocols = running.call(lambda: list(running.server.server_state.connections))
                await conn.send("x" * 100_000)
                echoed.append(await conn.recv())
            return echoed, protocols

        echoed, protocols = run(client())
    assert echoed == ["héllo", "x" * 100_000]
    # ws4py's protocol serves the connection, none of uvicorn's own implementations.
    assert any(isinstance(p, WebSocketProtocol) for p in protocols), protocols
    assert not [p for p in protocols if type(p).__module__.startswith("uvicorn.protocols.websockets")], protocols


def _serve(command: list[str], port: int) -> subprocess.Popen[str]:
    env = {**unmeasured_env(), "PYTHONPATH": str(ROOT)}  # gunicorn imports the worker class from there
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


async def _connect_when_up(url: str, proc: subprocess.Popen[str]) -> list[str | bytes]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            return await _echo_twice(url)
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not come up"
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "uvicorn", "examples.uvicorn_app:app", "--ws", "ws4py.server.uvicorn:WebSocketProtocol", "--port"],
        ["examples/uvicorn_app.py"],
        ["-m", "gunicorn", "-k", "examples.uvicorn_app.Worker", "examples.uvicorn_app:app", "--bind"],
    ],
    ids=["uvicorn-cli", "uvicorn-run", "gunicorn"],
)
def test_uvicorn_example_command_lines_serve_and_stop_on_sigterm(command: list[str]) -> None:
    port = _free_port()
    where = f"127.0.0.1:{port}" if "--bind" in command else str(port)
    proc = _serve([sys.executable, *command, where], port)
    try:
        echoed = run(_connect_when_up(f"ws://127.0.0.1:{port}/echo", proc))
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=5)
    assert echoed == ["héllo", "x" * 100_000]
    # gunicorn exits 0; uvicorn, once its graceful shutdown is over, raises the signal it got again.
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "Traceback" not in output, output
