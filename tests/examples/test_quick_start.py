"""The README's main-job command, ``scripts/serve``, on a fresh copy of the project.

The copy holds only what git tracks and has no ``.venv``: the command must
make its own virtual environment, install ws4py with its C speed-ups into
it, and serve. (pip 26 started refusing the ``.[]`` the script once passed
when no extras were asked for; only running the script itself shows that.)
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
from pathlib import Path

from ws4py.protocol import ClientHandshake, TextReceived

ROOT = Path(__file__).resolve().parents[2]
#: Making a virtual environment, updating pip and compiling the extension.
SETUP_TIMEOUT = 300


def _copy_tracked_files(destination: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted in the working tree but not yet in git's index
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_scripts_serve_installs_itself_on_a_fresh_copy_and_echoes(tmp_path: Path) -> None:
    project = tmp_path / "ws4py"
    _copy_tracked_files(project)
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH")}
    proc = subprocess.Popen(
        ["bash", "scripts/serve", "--port", str(port)],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the script execs python; the group ends whatever it started
    )
    # A setup that hangs (a registry that never answers) fails the test instead of hanging it.
    deadline = threading.Timer(SETUP_TIMEOUT, os.killpg, (proc.pid, signal.SIGKILL))
    deadline.start()
    try:
        assert proc.stdout is not None
        output = []
        for line in proc.stdout:  # pip is quiet (-q): the server's banner is the line that matters
            output.append(line)
            if f"ws://127.0.0.1:{port}/" in line:
                break
        else:
            raise AssertionError("scripts/serve ended without serving:\n" + "".join(output))
        deadline.cancel()
        assert (project / ".venv" / "bin" / "python").exists()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            handshake = ClientHandshake("127.0.0.1", "/", port=port)
            sock.sendall(handshake.request_bytes())
            while handshake.receive_data(sock.recv(4096)) is None:
                pass
            conn = handshake.connection()
            sock.sendall(conn.send_text("from a fresh copy"))
            events: list[object] = []
            while not events:
                data = sock.recv(4096)
                assert data, "the server closed the connection"
                events += conn.receive_data(data)
            assert events == [TextReceived("from a fresh copy")]
    finally:
        deadline.cancel()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
