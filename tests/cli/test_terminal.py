"""``python -m ws4py connect`` in a real terminal (a pty): typed lines out, timestamped messages in, clean ends."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import sys
import time
from pathlib import Path

import pytest
import trustme
from cli_support import ROOT, TIMEOUT, free_port, serve

#: A received message as the client prints it: the time to the millisecond, then "<".
STAMPED = r"\d\d:\d\d:\d\d\.\d{3} < "


class Terminal:
    """``python -m ws4py ARGS`` with a pty as its controlling terminal, as a user runs it."""

    def __init__(self, *args: str) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: become the command at once
            os.chdir(ROOT)
            os.environ["TERM"] = "xterm"
            os.execv(sys.executable, [sys.executable, "-m", "ws4py", *args])
        self.pid, self.fd = pid, fd
        self.screen = ""
        self.status: int | None = None

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def expect(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """Wait (boundedly) until what the terminal shows matches ``pattern``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while not (found := regex.search(self.screen)):
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"the terminal never showed {pattern!r}:\n{self.screen}")
        return found

    def press(self, key: str, pattern: str, tries: int = 5) -> None:
        """Type ``key`` until the terminal shows ``pattern``, as a user presses a key again when nothing happens.

        A Ctrl-D typed while the client is between two input() calls reaches the
        terminal in its canonical mode, which turns it into a NUL for the next
        read: lost, on any program with readline. Ctrl-C is never lost (a signal).
        """
        for _ in range(tries):
            self.type(key)
            with contextlib.suppress(AssertionError):
                self.expect(pattern, timeout=1.0)
                return
        self.expect(pattern)

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], min(timeout, 0.5))
        if ready:
            try:
                data = os.read(self.fd, 65536)
            except OSError:  # EIO: the command has ended and the pty is closed
                return False
            if not data:
                return False
            self.screen += data.decode(errors="replace")
        return True

    def wait(self) -> int:
        """The command's exit status, once it ended (bounded)."""
        deadline = time.monotonic() + TIMEOUT
        while self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
            elif time.monotonic() > deadline:
                raise AssertionError(f"the client did not end:\n{self.screen}")
            else:
                self._read(0.05)
        return self.status

    def close(self) -> None:
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.mark.parametrize(("key", "end"), [("\x04", "Ctrl-D"), ("\x03", "Ctrl-C")])
def test_connect_talks_to_the_chat_from_a_terminal_and_closes_with_1000(key: str, end: str) -> None:
    port = free_port()
    chat = serve("examples.chat.app:ChatApp", "--port", str(port), cwd=ROOT)
    terminal = Terminal("connect", f"ws://127.0.0.1:{port}/ws")
    try:
        terminal.expect(rf"connected to ws://127\.0\.0\.1:{port}/ws")
        terminal.type('{"type": "hello", "name": "tty"}\r')
        terminal.expect(STAMPED + re.escape('{"type": "welcome", "name": "tty", "online": 1'))
        terminal.type('{"type": "say", "text": "hi from a terminal"}\r')
        terminal.expect(STAMPED + re.escape('{"type": "message", "name": "tty", "text": "hi from a terminal"}'))
        terminal.type("/ping\r")
        terminal.expect(r"pong in [\d.]+ ms")
        terminal.press(key, r"connection closed: 1000")
        assert terminal.wait() == 0, f"{end}:\n{terminal.screen}"
        assert chat.stop() == 0
    finally:
        terminal.close()
        chat.close()


def test_connect_insecure_accepts_a_test_certificate_and_the_default_refuses_it(tmp_path: Path) -> None:
    certfile = tmp_path / "server.pem"
    trustme.CA().issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(certfile))
    port = free_port()
    server = serve("cli_apps:pid_echo", "--port", str(port), "--certfile", str(certfile))
    refused = Terminal("connect", f"wss://127.0.0.1:{port}/")
    trusting = Terminal("connect", "--insecure", f"wss://127.0.0.1:{port}/")
    try:
        refused.expect(r"error: cannot connect to wss://.*CERTIFICATE_VERIFY_FAILED")
        assert refused.wait() == 1
        trusting.expect(r"connected to wss://")
        trusting.type("hello over tls\r")
        trusting.expect(STAMPED + rf"{server.process.pid} hello over tls")
        trusting.press("\x04", r"connection closed: 1000")
        assert trusting.wait() == 0
        assert server.stop() == 0
    finally:
        refused.close()
        trusting.close()
        server.close()


def test_connect_reconnect_comes_back_after_the_server_restarts() -> None:
    port = free_port()
    first = serve("cli_apps:pid_echo", "--port", str(port))
    terminal = Terminal("connect", "--reconnect", f"ws://127.0.0.1:{port}/")
    second = None
    try:
        terminal.expect(r"connected to ws://")
        assert first.stop() == 0
        terminal.expect(r"connection closed: 1001 server shutting down")
        terminal.expect(r"reconnecting in")
        second = serve("cli_apps:pid_echo", "--port", str(port))
        terminal.expect(r"connected to ws://(.|\n)*connected to ws://")
        terminal.type("again\r")
        terminal.expect(STAMPED + rf"{second.process.pid} again")
        terminal.type("\x03")
        terminal.expect(r"connection closed: 1000")
        assert terminal.wait() == 0
        assert second.stop() == 0
    finally:
        terminal.close()
        first.close()
        if second is not None:
            second.close()


def test_connect_binary_lines_hex_display_and_commands() -> None:
    port = free_port()
    server = serve("cli_apps:echo", "--port", str(port))
    terminal = Terminal("connect", "--binary", "--header", "X-Test: 1", f"ws://127.0.0.1:{port}/")
    try:
        terminal.expect(r"connected to ws://")
        terminal.type("abc\r")  # --binary: a line goes out as its UTF-8 bytes
        terminal.expect(STAMPED + re.escape("[binary, 3 bytes] 61 62 63"))
        terminal.type("/hex 01ff\r")
        terminal.expect(STAMPED + re.escape("[binary, 2 bytes] 01 ff"))
        terminal.type("/hex zz\r")
        terminal.expect(r"not hex: /hex wants pairs of hex digits")
        terminal.type("/help\r")
        terminal.expect(r"/close \[CODE \[WHY\]\]")
        terminal.type("/close 999\r")
        terminal.expect(r"not closed: 999 may not be sent")
        terminal.type("/close 4000 done here\r")
        terminal.expect(r"connection closed: 4000")
        assert terminal.wait() == 0
        assert server.stop() == 0
    finally:
        terminal.close()
        server.close()
