"""Faults around the CherryPy integration: slow and silent handshakes, many short connections."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from cherrypy_support import SOCKET_TIMEOUT, TIMEOUT, Servers, free_port, upgrade_request, wait_for
from websockets.sync.client import connect

CYCLES = 10_000
CYCLE_CLIENT = Path(__file__).with_name("cycle_client.py")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cherrypy_echo_server.py"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def drained(sock: socket.socket, timeout: float) -> bytes:
    """What ``sock`` receives until the server closes it (AssertionError if it does not in time)."""
    sock.settimeout(timeout)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        raise AssertionError(f"the server kept the connection past {timeout}s: {received!r}") from None
    except ConnectionResetError:
        pass
    return received


def test_slow_and_silent_handshakes_delay_no_one_and_are_dropped(servers: Servers) -> None:
    silent = [socket.create_connection(("127.0.0.1", servers.port)) for _ in range(3)]
    slow = [socket.create_connection(("127.0.0.1", servers.port)) for _ in range(2)]
    try:
        for sock in slow:  # half a request head, and then nothing
            sock.sendall(upgrade_request("/ws", servers.port)[:40])
        with connect(servers.url("/ws"), open_timeout=TIMEOUT) as ws:  # meanwhile, others get through
            ws.send("not delayed")
            assert ws.recv(TIMEOUT) == "not delayed"
        for sock in silent + slow:  # dropped after CherryPy's socket_timeout
            answer = drained(sock, SOCKET_TIMEOUT + TIMEOUT)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer
    finally:
        for sock in silent + slow:
            sock.close()


def unmeasured_env() -> dict[str, str]:
    """This environment without coverage's variables: under ``coverage run`` the child is not
    traced (the 10,000 cycles would take three times as long; the same code is measured in
    every other test of this package)."""
    return {k: v for k, v in os.environ.items() if k not in ("COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START")}


def process_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def process_threads(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def run_cycles(port: int, cycles: int) -> None:
    result = subprocess.run(
        [sys.executable, str(CYCLE_CLIENT), str(port), "/ws", str(cycles), "4" if cycles >= 4 else "1"],
        capture_output=True,
        text=True,
        timeout=120,
        env=unmeasured_env(),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["done", str(cycles)]


def test_ten_thousand_connect_disconnect_cycles_leak_no_fd_or_thread(tmp_path: Path) -> None:
    """The page's CherryPy example in a process of its own, 10,000 cycles from another."""
    port = free_port()
    log_path = tmp_path / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, str(EXAMPLE), str(port)], stdout=log, stderr=subprocess.STDOUT, env=unmeasured_env()
        )
    try:
        wait_for(lambda: server.poll() is not None or "Bus STARTED" in log_path.read_text(), "the server", 15)
        assert server.poll() is None, log_path.read_text()[-3000:]
        run_cycles(port, 1)  # everything created lazily exists now
        fds, threads = process_fds(server.pid), process_threads(server.pid)
        run_cycles(port, CYCLES)
        wait_for(
            lambda: process_fds(server.pid) <= fds and process_threads(server.pid) <= threads,
            f"the server's sockets and threads to be released ({fds} fds and {threads} threads before)",
        )
    finally:
        server.terminate()
        returncode = server.wait(10)
    output = log_path.read_text()
    assert returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
