"""Faults around the CherryPy integration: slow and silent handshakes, many short connections."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import cherrypy
import pytest
from cherrypy_support import SOCKET_TIMEOUT, TIMEOUT, Servers, upgrade_request, wait_for
from websockets.sync.client import connect

CYCLES = 10_000
CYCLE_CLIENT = Path(__file__).with_name("cycle_client.py")


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


@pytest.fixture
def quiet_access_log() -> Iterator[None]:
    """No access log line per cycle (10,000 of them would be most of the test's time)."""
    access = cherrypy.log.access_log
    level = access.level
    access.setLevel(logging.WARNING)
    try:
        yield
    finally:
        access.setLevel(level)


def test_ten_thousand_connect_disconnect_cycles_leak_no_fd_or_thread(servers: Servers, quiet_access_log: None) -> None:
    with connect(servers.url("/ws")) as ws:  # everything lazily created exists already
        ws.send("warm")
        assert ws.recv(TIMEOUT) == "warm"
    wait_for(lambda: len(servers.plugin.manager) == 0, "the warm-up websocket to end")
    fds, threads = open_fds(), threading.active_count()
    result = subprocess.run(
        [sys.executable, str(CYCLE_CLIENT), str(servers.port), "/silent", str(CYCLES), "4"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["done", str(CYCLES)]
    wait_for(lambda: len(servers.plugin.manager) == 0, "every websocket to end", timeout=10)
    wait_for(lambda: open_fds() <= fds, f"the sockets to be released ({open_fds()} fds, {fds} before)")
    assert threading.active_count() <= threads
