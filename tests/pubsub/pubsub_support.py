"""Helpers of the pub/sub tests: a bounded asyncio run, waits, and gap recording."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from ws4py.pubsub import Gap

T = TypeVar("T")
#: Bound of a whole asyncio test, and of each wait in one: far above what they take.
TEST_TIMEOUT = 30.0
TIMEOUT = 10.0


def run(coroutine: Coroutine[Any, Any, T], timeout: float = TEST_TIMEOUT) -> T:
    """Run an asyncio test body on a fresh loop, failing instead of hanging."""
    return asyncio.run(asyncio.wait_for(coroutine, timeout))


async def within(awaitable: Awaitable[T], timeout: float = TIMEOUT) -> T:
    return await asyncio.wait_for(awaitable, timeout)


async def eventually(predicate: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """Poll ``predicate`` until it holds (fail after ``timeout``), letting the loop run."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        await asyncio.sleep(0.01)


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """:func:`eventually` for threads."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s"
        time.sleep(0.01)


class Gaps:
    """An ``on_gap`` that records the gaps (from the broker's thread)."""

    def __init__(self) -> None:
        self.gaps: list[Gap] = []
        self._lock = threading.Lock()

    def __call__(self, gap: Gap) -> None:
        with self._lock:
            self.gaps.append(gap)

    def missed(self, publisher: str | None = None) -> int:
        with self._lock:
            return sum(g.missed for g in self.gaps if publisher is None or g.publisher == publisher)


def call_bounded(function: Callable[[], T], timeout: float = TIMEOUT) -> T:
    """``function()`` on a thread, failing the test if it has not returned (or raised) within ``timeout``."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append((True, function()))
        except BaseException as exc:
            outcome.append((False, exc))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert outcome, f"{function} hung for {timeout}s"
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


PEERS = __import__("pathlib").Path(__file__).resolve().parent / "pubsub_peers.py"


class RoomServer:
    """``pubsub_peers.py KIND BROKER`` in a subprocess; its stdout lines are kept in :attr:`lines`."""

    def __init__(self, kind: str, broker: str) -> None:
        import os
        import subprocess
        import sys

        env = {**os.environ, "GEVENT_RESOLVER": "block", "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, str(PEERS), kind, broker],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        if not first.startswith("ready "):
            self.process.kill()
            raise AssertionError(f"the {kind} server did not start: {first!r} {self.process.stderr.read()}")  # type: ignore[union-attr]
        self.port = int(first.split()[1])
        self.url = f"ws://127.0.0.1:{self.port}/"
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.errors), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line)

    def stop(self) -> int:
        """SIGTERM; the exit status."""
        import signal
        import subprocess

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(TIMEOUT)
        for reader in self._readers:
            reader.join(TIMEOUT)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return self.process.returncode
