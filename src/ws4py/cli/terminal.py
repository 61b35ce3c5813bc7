"""``python -m ws4py connect URL``: a WebSocket client for a terminal.

Each line typed is sent as a text message (``--binary``: as a binary one);
what arrives is printed with the time it arrived, binary messages in hex.
Lines that start with ``/`` are commands (``/help``). Ctrl-D or Ctrl-C
closes the connection with 1000 and exits 0.

The connection runs on an asyncio loop in a thread of its own, so that the
main thread can sit in :func:`input` (with :mod:`readline`'s line editing and
history where the platform has it) and get Ctrl-C there; what arrives is
printed above the line being typed, which is then shown again as it was.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TextIO

from ..asyncio import Connection, connect
from ..exc import ConnectionClosed, HandshakeError
from ..protocol.close_codes import is_valid_on_wire
from .errors import CliError
from .tls import client_context

try:
    import readline
except ImportError:  # Windows, or a Python built without it: plain input()
    readline = None  # type: ignore[assignment]

__all__ = ["HELP", "add_arguments", "run"]

PROMPT = "> "
#: What ``/help`` prints: the commands of ``python -m ws4py connect``.
HELP = """commands:
  /ping [TEXT]         send a ping, print the pong's round trip
  /hex HEX             send a binary message given in hex (such as /hex 01ff)
  /close [CODE [WHY]]  close the connection (default 1000) and exit
  /quit                the same as Ctrl-D
  //TEXT               send /TEXT
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``connect``."""
    parser.add_argument("url", metavar="URL", help="ws:// or wss:// URL")
    parser.add_argument("--binary", action="store_true", help="send each line as a binary message (UTF-8)")
    parser.add_argument(
        "--header", action="append", default=[], metavar="K:V", help="add a header to the request (repeatable)"
    )
    parser.add_argument(
        "--subprotocol", action="append", default=[], metavar="S", help="offer a subprotocol (repeatable)"
    )
    parser.add_argument("--origin", help="the Origin header")
    parser.add_argument(
        "--insecure", action="store_true", help="wss://: accept any certificate (a test one), no name check"
    )
    parser.add_argument("--cafile", help="wss://: trust the CA certificates in this file too")
    parser.add_argument(
        "--reconnect", action="store_true", help="connect again, with back-off, whenever the connection is lost"
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="S", help="seconds to connect, and to close (default: 10)"
    )


def run(args: argparse.Namespace) -> int:
    """Talk to ``args.url`` until Ctrl-D, Ctrl-C, /quit or the server closes; the exit status."""
    headers = [_header(text) for text in args.header]
    secure = args.url.startswith("wss://")
    if not (secure or args.url.startswith("ws://")):
        raise CliError(f"expected a ws:// or wss:// URL, got {args.url!r}")
    ssl = client_context(args.insecure, args.cafile) if secure else None
    try:
        client = connect(
            args.url,
            additional_headers=headers,
            subprotocols=args.subprotocol,
            origin=args.origin,
            ssl=ssl,
            open_timeout=args.timeout,
            close_timeout=args.timeout,
        )
    except ValueError as exc:
        raise CliError(f"{args.url}: {exc}") from None
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    screen = Screen(sys.stdout, interactive)
    session = Session(client, args, screen)
    session.start()
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: a clean close, as Ctrl-D
        _read_lines(session, screen, interactive)
    session.close(1000)
    return session.status


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise CliError(f"--header wants NAME:VALUE, got {text!r}")
    return name.strip(), value.strip()


def _read_lines(session: Session, screen: Screen, interactive: bool) -> None:
    session.connected.wait(session.args.timeout + 1.0)
    while not session.finished.is_set():
        screen.reading = True
        try:
            line = input(PROMPT if interactive else "")
        except EOFError:
            return
        finally:
            screen.reading = False
        if session.finished.is_set():
            return
        if line.startswith("/") and not line.startswith("//"):
            if not _command(session, screen, line):
                return
        elif line:
            session.send(line[1:] if line.startswith("//") else line)


def _command(session: Session, screen: Screen, line: str) -> bool:
    """Run a ``/`` command; False when it ends the session."""
    name, _, rest = line.partition(" ")
    if name == "/ping":
        session.ping(rest)
    elif name == "/hex":
        try:
            session.send(bytes.fromhex(rest))
        except ValueError:
            screen.show("not hex: /hex wants pairs of hex digits, such as /hex 01ff")
    elif name in ("/quit", "/exit"):
        return False
    elif name == "/close":
        code_text, _, reason = rest.strip().partition(" ")
        try:
            code = int(code_text) if code_text else 1000
        except ValueError:
            screen.show("/close wants a close code, such as /close 1000 bye")
            return True
        if not is_valid_on_wire(code) or len(reason.encode()) > 123:
            screen.show(
                f"not closed: {code} may not be sent, or the reason is over 123 bytes (1000-1003, 3000-4999...)"
            )
            return True
        session.close(code, reason)
        return False
    else:
        screen.show(HELP.rstrip())
    return True


def stamp() -> str:
    """The time now, to the millisecond, as printed before each received message."""
    now = time.time()
    return time.strftime("%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1000):03d}"


class Screen:
    """Prints lines above the one being typed (interactive) or plainly (a pipe); thread-safe."""

    def __init__(self, out: TextIO, interactive: bool) -> None:
        self._out = out
        self._interactive = interactive
        self._lock = threading.Lock()
        #: Whether the main thread waits in input(), its prompt shown.
        self.reading = False

    def show(self, text: str) -> None:
        """Print ``text``; in a terminal, put the prompt and the half-typed line back under it."""
        with self._lock:
            if self._interactive and self.reading:
                typed = readline.get_line_buffer() if readline is not None else ""
                self._out.write(f"\r\x1b[K{text}\n{PROMPT}{typed}")
            elif self._interactive:
                self._out.write(f"\r\x1b[K{text}\n")
            else:
                self._out.write(text + "\n")
            self._out.flush()


class Session:
    """The connection, on an asyncio loop in its own thread; the main thread calls :meth:`send` and the like."""

    def __init__(self, client: connect, args: argparse.Namespace, screen: Screen) -> None:
        self.client = client
        self.args = args
        self.screen = screen
        self.status = 0
        #: Set when the session is over (closed, failed, or given up).
        self.finished = threading.Event()
        #: Set once connected (or finished): lines are read from then on, none is sent into the void.
        self.connected = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._conn: Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self) -> None:
        threading.Thread(target=self._run, name="ws4py-connect", daemon=True).start()

    def _run(self) -> None:
        if hasattr(signal, "pthread_sigmask"):
            # Ctrl-C must reach the main thread, in input(): the kernel may pick any thread that takes it.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        loop = self._loop
        try:
            loop.run_until_complete(self._main())
            # A close the main thread asked for may still be finishing: let it, boundedly.
            pending = asyncio.all_tasks(loop)
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=self.args.timeout))
        finally:
            loop.close()
            self.connected.set()
            self.finished.set()
            if not self._closing and self.screen.reading:
                # The server ended it: wake the main thread out of input() (Ctrl-C's way in). Only
                # while it reads: a SIGINT arriving once it has left input() (a connection that
                # failed at once) would interrupt the rest of the command.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(os.getpid(), signal.SIGINT)

    async def _main(self) -> None:
        self._task = asyncio.current_task()
        try:
            if self.args.reconnect:
                async for conn in self.client:
                    await self._talk(conn)
                    if self._closing:
                        return
                    wait = random.uniform(0.5, 1.0)  # jitter: many clients cut off at once come back spread
                    self.screen.show(f"{stamp()} reconnecting in {wait:.1f} s")
                    await asyncio.sleep(wait)
            else:
                await self._talk(await self.client)
        except asyncio.CancelledError:
            pass
        except HandshakeError as exc:
            self.screen.show(f"error: the server refused the WebSocket: {exc}")
            self.status = 1
        except (OSError, asyncio.TimeoutError) as exc:
            self.screen.show(f"error: cannot connect to {self.args.url}: {exc or 'timed out'}")
            self.status = 1

    async def _talk(self, conn: Connection) -> None:
        self._conn = conn
        extra = f" (subprotocol {conn.subprotocol})" if conn.subprotocol else ""
        self.screen.show(f"{stamp()} connected to {self.args.url}{extra}; /help for commands, Ctrl-D to quit")
        self.connected.set()
        try:
            async for message in conn:
                if isinstance(message, str):
                    self.screen.show(f"{stamp()} < {message}")
                else:
                    self.screen.show(f"{stamp()} < [binary, {len(message)} bytes] {message.hex(' ')}")
        except ConnectionClosed:
            pass
        finally:
            self._conn = None
        await conn.wait_closed()  # the closing handshake's end (within the close timeout)
        code, reason = conn.close_code, conn.close_reason or ""
        self.screen.show(f"{stamp()} connection closed: {code} {reason}".rstrip())
        if not self._closing:
            self.status = 0 if code in (1000, 1001) else 1

    # -- called from the main thread ----------------------------------------

    def _call(self, coro: Coroutine[Any, Any, None], timeout: float) -> None:
        if self.finished.is_set():
            coro.close()
            return
        with contextlib.suppress(FutureTimeout):
            asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def send(self, message: str | bytes) -> None:
        """Send a line (``--binary``: its UTF-8 bytes) or bytes."""
        if isinstance(message, str) and self.args.binary:
            message = message.encode()
        self._call(self._send(message), self.args.timeout)

    async def _send(self, message: str | bytes) -> None:
        conn = self._conn
        if conn is None:
            self.screen.show("not connected: not sent")
            return
        with contextlib.suppress(ConnectionClosed):
            await conn.send(message)

    def ping(self, text: str) -> None:
        """Send a ping and print its round trip when the pong comes."""
        self._call(self._ping(text), self.args.timeout)

    async def _ping(self, text: str) -> None:
        conn = self._conn
        if conn is None:
            self.screen.show("not connected: no ping")
            return
        try:
            pong = await conn.ping(text.encode()[:125] or None)
        except ConnectionClosed:
            return
        pong.add_done_callback(self._pong)

    def _pong(self, pong: asyncio.Future[float]) -> None:
        if not pong.cancelled() and pong.exception() is None:
            self.screen.show(f"{stamp()} pong in {pong.result() * 1000:.1f} ms")

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` (waiting at most the timeout) and end the session."""
        self._closing = True
        self._call(self._close(code, reason), self.args.timeout + 1.0)
        self.finished.wait(self.args.timeout + 1.0)

    async def _close(self, code: int, reason: str) -> None:
        conn = self._conn
        if conn is not None:
            await conn.close(code, reason)  # then _talk prints the close and _main returns
        elif self._task is not None:
            self._task.cancel()  # still connecting, or waiting to reconnect
