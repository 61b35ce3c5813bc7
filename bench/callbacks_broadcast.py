"""A broadcast written the way the callbacks API's users write it, before and after a change, in one run.

``python bench/callbacks_broadcast.py [--base COMMIT] [--rounds N] [--conns C] [--uvloop]``

The server (this file with ``--serve PORT``) is ``loop.create_server(lambda:
WebSocketProtocol(LoopBroadcast, compression=None), ...)``: on the text
``"go"`` its ``received_message`` callback does what the documented API
leaves a user to write, ``for ws in clients: ws.send(message)``, 100 times
over 64 B of ASCII. The C load generator (``bench/loadgen``, built here if
missing) opens C connections (default 1,000), sends ``"go"`` on the first
one and times until every connection has its 100 messages.

Two servers take turns, round after round (each round alternates which goes
first): "before" imports ws4py from ``COMMIT`` (default 0dab120, the base of
issue 20; its files extracted into a temporary directory, with this tree's
compiled ``_speedups`` copied beside them, so only the Python differs: the C
source must be the same at both commits) and "after" from this tree's
``src``. It prints, per side, the median time until every client had
everything and the median server CPU time over it, then the ratio. Run it on
an idle machine: the rounds are interleaved so that drift hits both sides
alike, but another busy process still moves the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE / "servers"))
from _common import BROADCAST_COUNT, BROADCAST_PAYLOAD, BROADCAST_TRIGGER, prepare  # noqa: E402

LOADGEN = HERE / "loadgen" / "build" / "loadgen"


# -- the server ------------------------------------------------------------------------


async def serve(port: int) -> None:
    from ws4py.async_websocket import WebSocket, WebSocketProtocol
    from ws4py.messaging import Message

    clients: list[WebSocket] = []

    class LoopBroadcast(WebSocket):
        def opened(self) -> None:
            clients.append(self)

        def closed(self, code: int, reason: str | None = None) -> None:
            clients.remove(self)

        def received_message(self, message: Message) -> None:
            if message.is_text and str(message) == BROADCAST_TRIGGER:
                for _ in range(BROADCAST_COUNT):
                    for ws in clients:
                        ws.send(BROADCAST_PAYLOAD)

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: WebSocketProtocol(LoopBroadcast, compression=None), "127.0.0.1", port, backlog=1024
    )
    async with server:
        await server.serve_forever()


# -- the comparison ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the server did not listen in time")


def extract(commit: str, into: Path) -> Path:
    """ws4py's package at ``commit`` under ``into``, with this tree's compiled extension; the ``src`` to import from."""
    c_then = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{commit}:src/ws4py/_speedups.c"], capture_output=True, check=True
    ).stdout
    if c_then != (REPO / "src/ws4py/_speedups.c").read_bytes():
        sys.exit(f"src/ws4py/_speedups.c differs at {commit}: install that commit instead")
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit, "src/ws4py"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    built = list((REPO / "src/ws4py").glob("_speedups*.so"))
    if not built:
        sys.exit("no compiled _speedups in src/ws4py: build this tree first (scripts/test does)")
    for path in built:
        shutil.copy2(path, into / "src/ws4py" / path.name)
    return into / "src"


def run_once(src: Path, conns: int, uvloop: bool) -> dict[str, float]:
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(src), WS4PY_REQUIRE_SPEEDUPS="1")
    argv = [sys.executable, str(Path(__file__).resolve()), "--serve", str(port), *(["--uvloop"] if uvloop else [])]
    server = subprocess.Popen(argv, env=env)
    try:
        wait_listening(port, server)
        loadgen = [str(LOADGEN), "--mode", "broadcast", "--port", str(port), "--conns", str(conns)]
        loadgen += ["--messages", str(BROADCAST_COUNT), "--size", str(len(BROADCAST_PAYLOAD))]
        loadgen += ["--concurrency", "100", "--settle", "0.5", "--pid", str(server.pid), "--timeout", "120"]
        out = subprocess.run(loadgen, capture_output=True, text=True, check=True).stdout
        data = json.loads(out.strip().splitlines()[-1])
        return {"all_s": data["all_s"], "server_cpu_s": data.get("server_cpu_s", float("nan"))}
    finally:
        server.terminate()
        server.wait(10)


def compare(args: argparse.Namespace) -> None:
    if not LOADGEN.exists():
        LOADGEN.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["gcc", "-O2", "-o", str(LOADGEN), str(HERE / "loadgen" / "loadgen.c")], check=True)
    with tempfile.TemporaryDirectory(prefix="ws4py-before-") as tmp:
        sides = {"before": extract(args.base, Path(tmp)), "after": REPO / "src"}
        results: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
        for i in range(args.rounds):
            order = list(sides) if i % 2 == 0 else list(reversed(sides))
            for name in order:
                result = run_once(sides[name], args.conns, args.uvloop)
                results[name].append(result)
                wall, cpu = result["all_s"], result["server_cpu_s"]
                print(f"round {i + 1} {name:6}: {wall * 1e3:8.1f} ms, server CPU {cpu:.3f} s")
    sends = args.conns * BROADCAST_COUNT
    print(
        f"\n{BROADCAST_COUNT} x {len(BROADCAST_PAYLOAD)} B to {args.conns:,} clients with `for ws in clients: "
        f"ws.send(m)` in a callback, median of {args.rounds} ({'uvloop' if args.uvloop else 'asyncio'}):"
    )
    medians = {}
    for name, rows in results.items():
        wall = statistics.median(r["all_s"] for r in rows)
        cpu = statistics.median(r["server_cpu_s"] for r in rows)
        medians[name] = wall
        print(
            f"  {name:6}: {wall * 1e3:8.1f} ms until all had all ({wall / sends * 1e6:.2f} us per send), "
            f"server CPU {cpu:.3f} s"
        )
    print(f"  before / after: {medians['before'] / medians['after']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", type=int, metavar="PORT", help="run the server (what the comparison starts)")
    parser.add_argument("--base", default="0dab120", help="the commit 'before' imports ws4py from")
    parser.add_argument("--rounds", type=int, default=5, help="servers started per side")
    parser.add_argument("--conns", type=int, default=1000, help="clients")
    parser.add_argument("--uvloop", action="store_true", help="the servers run on uvloop")
    args = parser.parse_args()
    if args.serve is None:
        compare(args)
        return
    prepare()
    if args.uvloop:
        import uvloop  # in the environments that run servers on it

        uvloop.run(serve(args.serve))
    else:
        asyncio.run(serve(args.serve))


if __name__ == "__main__":
    main()
