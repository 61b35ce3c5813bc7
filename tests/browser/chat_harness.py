"""The chat servers in subprocesses, and what a test does with the chat page in headless Chromium.

:class:`ChatServer` runs one of the two chat servers of ``examples/`` as its
readers run it (``scripts/serve``'s command, or ``python
examples/echo_cherrypy_server.py``) on a port of the test's choosing, and
stops it as they would: Ctrl-C (SIGINT), SIGTERM, or a kill. The page helpers
drive ``examples/chat/chat.html`` through Playwright with bounded waits.
"""

from __future__ import annotations

import resource
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import Page, expect

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
#: The command of each server, before ``--port N``.
COMMANDS = {
    # scripts/serve: `exec .venv/bin/python examples/chat/server.py "$@"`
    "asyncio": [sys.executable, str(EXAMPLES / "chat" / "server.py")],
    "cherrypy": [sys.executable, str(EXAMPLES / "echo_cherrypy_server.py")],
}
#: Seconds for a server to start listening, or to stop once asked.
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
#: The screenshots saved during this run, and where they go.
SCREENSHOTS: list[Path] = []
SCREENSHOT_FOLDER = Path(__file__).resolve().parents[2] / "test-output" / "browser"
#: Milliseconds for anything a page shows.
PAGE_TIMEOUT = 5_000
#: Milliseconds for a page to find its server again after a restart: the back-off
#: doubles from 250 ms to 5 s, so an attempt falls within any 5 s once up.
RECONNECT_TIMEOUT = 12_000


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def as_from_a_terminal() -> None:
    """For a subprocess: Ctrl-C (SIGINT) reaches it as from a terminal, and it may open many sockets.

    A process started in the background by a non-interactive shell ignores SIGINT,
    and its children inherit that. The descriptor limit goes up to the hard one for
    the 2,000 clients of the manager example.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class ChatServer:
    """One of the chat servers in a subprocess on ``127.0.0.1:port``; its output goes to ``log``."""

    def __init__(self, kind: str, port: int, log: Path) -> None:
        self.kind = kind
        self.port = port
        self.log = log
        self.url = f"http://127.0.0.1:{port}/"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it says it serves (its banner) and accepts connections."""
        banner = f" on http://127.0.0.1:{self.port}/".encode()
        start = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [*COMMANDS[self.kind], "--port", str(self.port)],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=as_from_a_terminal,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"the {self.kind} chat server ended at start:\n{self.output()}")
            try:
                with open(self.log, "rb") as out:
                    out.seek(start)
                    if banner not in out.read():
                        raise OSError("no banner yet")  # a server still starting may not stop on Ctrl-C
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"the {self.kind} chat server did not listen:\n{self.output()}") from None
                time.sleep(0.05)

    def stop(self, sig: int) -> int:
        """Send ``sig`` and return the exit status (a server still running after the timeout fails)."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)
            raise AssertionError(f"the {self.kind} chat server ignored signal {sig}:\n{self.output()}") from None

    def output(self) -> str:
        """What the server printed so far (the end of it)."""
        return self.log.read_text(errors="replace")[-4000:]

    def close(self) -> None:
        """Make sure the process is gone (no assertion: teardown)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)


def handshake_status(port: int, origin: str) -> bytes:
    """The status line the server answers a WebSocket handshake on ``/ws`` with, from a client of ``origin``."""
    request = (
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request.encode())
        reply = b""
        while b"\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply.split(b"\r\n", 1)[0]


def joined(page: Page) -> str:
    """Wait until ``page`` is connected and has joined; its name."""
    expect(page.locator("#status")).to_have_attribute("data-state", "online", timeout=RECONNECT_TIMEOUT)
    return page.input_value("#name")


def say(page: Page, text: str) -> None:
    """Type ``text`` in the page and press Enter, as a person does."""
    page.fill("#text", text)
    page.press("#text", "Enter")


def expect_message(page: Page, name: str, text: str) -> None:
    """``page`` shows the chat message ``text`` from ``name`` as its latest one."""
    last = page.locator("#log .message").last
    expect(last.locator(".text")).to_have_text(text, timeout=PAGE_TIMEOUT)
    expect(last.locator(".name")).to_have_text(name, timeout=PAGE_TIMEOUT)


def expect_notice(page: Page, text: str) -> None:
    """``page``'s latest notice reads ``text``."""
    expect(page.locator("#log .notice").last).to_have_text(text, timeout=PAGE_TIMEOUT)


def expect_online(page: Page, count: int) -> None:
    """``page`` shows ``count`` people online."""
    expect(page.locator("#online")).to_have_text(f"{count} online", timeout=PAGE_TIMEOUT)


def screenshot(page: Page, name: str) -> Path:
    """Save a screenshot of ``page`` as ``test-output/browser/name.png`` in the checkout
    (ignored by git; kept after the run, unlike pytest's temporary folders), print and
    return its path."""
    SCREENSHOT_FOLDER.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_FOLDER / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    SCREENSHOTS.append(path)  # listed at the end of the run by conftest's terminal summary
    return path
