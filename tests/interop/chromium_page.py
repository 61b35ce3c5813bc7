"""Headless Chromium playing ``browser/echo.html`` against a server, for the browser interop tests.

The page opens a WebSocket back to where it came from, sends text and binary
(``ArrayBuffer``) messages, two of 200 KB and more among them, checks every
echo and sends a last text message ``report:<JSON>``; each test serves the
page and gets the report its own way (asyncio, CherryPy, gevent), then uses
:func:`open_page` to run Chromium on it.

Chromium (``/usr/bin/chromium``, installed by ``scripts/ensure_debian.sh``, which ``scripts/test`` runs)
runs as ``chromium --headless=new --no-sandbox --disable-gpu`` in a process
group of its own, killed at the end, with its profile, cache and settings in
the test's directory. Without it the test fails, unless the environment sets
``WS4PY_SKIP_BROWSER=1``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

PAGE = Path(__file__).resolve().parent / "browser" / "echo.html"
#: Seconds for Chromium to start, load the page and play it all.
BROWSER_TIMEOUT = 60.0
#: Seconds Chromium has to exit once asked.
KILL_TIMEOUT = 5.0

T = TypeVar("T")


def chromium_executable() -> str:
    """The chromium executable, or a failed (or, with ``WS4PY_SKIP_BROWSER=1``, skipped) test."""
    found = shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
    if found is not None:
        return found
    message = (
        "headless Chromium is needed for the browser interop test and /usr/bin/chromium is missing: "
        "run scripts/ensure_debian.sh /usr/bin/chromium chromium (scripts/test does), "
        "or set WS4PY_SKIP_BROWSER=1 to skip this test"
    )
    if os.environ.get("WS4PY_SKIP_BROWSER") == "1":
        pytest.skip(message)
    pytest.fail(message)


class ChromiumPage:
    """A running headless Chromium showing one URL (see :func:`open_page`)."""

    def __init__(self, url: str, folder: Path) -> None:
        self.folder = folder
        self.log = folder / "chromium.log"
        self.stopped = False
        profile = folder / "profile"
        profile.mkdir()
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [
                    chromium_executable(),
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    f"--user-data-dir={profile}",
                    "--no-first-run",
                    "--no-default-browser-check",
                    "--disable-extensions",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    url,
                ],
                # Its settings and the crash handler's database in this test's directory, not in $HOME.
                env={**os.environ, "XDG_CONFIG_HOME": str(folder / "config"), "XDG_CACHE_HOME": str(folder / "cache")},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log_tail(self) -> str:
        """The end of Chromium's output, for a failure message."""
        return self.log.read_text(errors="replace")[-3000:]

    def wait_for(self, poll: Callable[[], T | None], what: str = "report from the page") -> T:
        """The first value of ``poll()`` that is not None, within :data:`BROWSER_TIMEOUT` seconds;
        else a failed test showing Chromium's output."""
        deadline = time.monotonic() + BROWSER_TIMEOUT
        while (found := poll()) is None:
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within {BROWSER_TIMEOUT}s; chromium's output:\n{self.log_tail()}")
            time.sleep(0.05)
        return found

    def stop(self) -> None:
        """End Chromium and every process of its group: SIGTERM, then SIGKILL, then wait for the group to go.

        Chromium's crash handler leaves the group (it daemonizes): it is found by the test's
        directory, which its command line holds, and ended too. Then Chromium's files
        (thousands of them) are removed. Calling it again does nothing more.
        """
        if self.stopped:
            return
        self.stopped = True
        process = self.process
        for sig in (signal.SIGTERM, signal.SIGKILL):
            # The browser's helpers (zygote, renderer, GPU and network processes) are in its group too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(KILL_TIMEOUT)
        marker = str(self.folder)
        deadline = time.monotonic() + KILL_TIMEOUT
        while time.monotonic() < deadline and (_live_members(process.pid) or _holding(marker)):
            for pid in _holding(marker):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        for name in ("profile", "cache", "config"):
            shutil.rmtree(self.folder / name, ignore_errors=True)


@contextlib.contextmanager
def open_page(url: str, folder: Path) -> Iterator[ChromiumPage]:
    """Headless Chromium on ``url``, its files in ``folder`` (a test's ``tmp_path``); stopped on exit."""
    page = ChromiumPage(url, folder)
    try:
        yield page
    finally:
        page.stop()


def _holding(marker: str) -> list[int]:
    """The live processes whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(int(entry.name))
    return found


def _live_members(pgid: int) -> list[int]:
    """The processes of group ``pgid`` that are not yet dead (zombies waiting for init do not count)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members
