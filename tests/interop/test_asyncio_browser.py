"""A real browser against ws4py's asyncio server: headless Chromium.

The server is ``ws4py.asyncio.serve``; its ``process_request`` hook answers
``GET /`` (a request that is no WebSocket upgrade) with the page
``browser/echo.html``. The page opens a WebSocket back to the server, sends
text and binary (``ArrayBuffer``) messages, two of 200 KB and more among
them, checks every echo and sends a last text message ``report:<JSON>``.
The test checks that Chromium offered permessage-deflate, that the server
agreed to it (and the browser saw the same ``Sec-WebSocket-Extensions``),
and that the report says every echo matched.

Chromium (``/usr/bin/chromium``, installed by ``scripts/ensure_chromium.sh``)
runs as ``chromium --headless=new --no-sandbox --disable-gpu`` in a process
group of its own, killed at the end. Without it the test fails, unless the
environment sets ``WS4PY_SKIP_BROWSER=1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_asyncio_interop import LOOP_PARAMS, check_loop, run_in_new_loop

import ws4py.asyncio
from ws4py.protocol import Request, Response
from ws4py.protocol.headers import Headers

PAGE = Path(__file__).resolve().parent / "browser" / "echo.html"
#: Seconds for Chromium to start, load the page and play it all.
BROWSER_TIMEOUT = 60.0
#: Seconds Chromium has to exit once asked.
KILL_TIMEOUT = 5.0


def _chromium() -> str:
    """The chromium executable, or a failed (or, with ``WS4PY_SKIP_BROWSER=1``, skipped) test."""
    found = shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
    if found is not None:
        return found
    message = (
        "headless Chromium is needed for the browser interop test and /usr/bin/chromium is missing: "
        "run scripts/ensure_chromium.sh (scripts/test does), or set WS4PY_SKIP_BROWSER=1 to skip this test"
    )
    if os.environ.get("WS4PY_SKIP_BROWSER") == "1":
        pytest.skip(message)
    pytest.fail(message)


@pytest.fixture(params=LOOP_PARAMS)
def loop_name(request: pytest.FixtureRequest) -> str:
    check_loop(request.param)
    return request.param


class BrowserRun:
    """What the server saw of the browser: requests, the WebSocket's handshake, the report."""

    def __init__(self) -> None:
        self.page_requests: list[str] = []
        self.request: Request | None = None
        self.response: Response | None = None
        self.report: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.echoed = 0
        self.close: tuple[int | None, str | None] | None = None
        self.handler_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def process_request(self, conn: ws4py.asyncio.Connection, request: Request) -> Response | None:
        if "websocket" in (request.headers.get("Upgrade") or "").lower():
            return None
        self.page_requests.append(request.target)
        if request.method == "GET" and request.target == "/":
            headers = Headers([("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")])
            return Response(200, "OK", headers, PAGE.read_bytes())
        return conn.respond(404, "not found")

    async def handler(self, conn: ws4py.asyncio.Connection) -> None:
        self.request, self.response = conn.request, conn.response
        try:
            async for message in conn:
                if isinstance(message, str) and message.startswith("report:"):
                    if not self.report.done():
                        self.report.set_result(json.loads(message[len("report:") :]))
                    await conn.close(1000, "thank you")
                    break
                await conn.send(message)
                self.echoed += 1
        finally:
            self.close = (conn.close_code, conn.close_reason)
            self.handler_done.set_result(None)


async def _stop(process: asyncio.subprocess.Process, marker: str) -> None:
    """End Chromium and every process of its group: SIGTERM, then SIGKILL, then wait for the group to go.

    Chromium's crash handler leaves the group (it daemonizes): it is found by ``marker``, a path of
    this test that its command line holds, and ended too.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(process.wait(), KILL_TIMEOUT)
    # The browser's helpers (zygote, renderer, GPU and network processes) are in its group too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(process.wait(), KILL_TIMEOUT)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + KILL_TIMEOUT
    while loop.time() < deadline and _live_members(process.pid):
        await asyncio.sleep(0.05)
    while loop.time() < deadline and (stragglers := _holding(marker)):
        for pid in stragglers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.05)


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


def test_chromium_echo_with_permessage_deflate(loop_name: str, tmp_path: Path) -> None:
    chromium = _chromium()
    profile = tmp_path / "profile"
    profile.mkdir()
    browser_log = tmp_path / "chromium.log"
    cache = tmp_path / "cache"

    async def main() -> tuple[BrowserRun, dict[str, Any]]:
        run = BrowserRun()
        async with ws4py.asyncio.serve(
            run.handler, "127.0.0.1", 0, process_request=run.process_request, ping_interval=None, close_timeout=5
        ) as server:
            port = server.sockets[0].getsockname()[1]
            with open(browser_log, "wb") as log:
                process = await asyncio.create_subprocess_exec(
                    chromium,
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
                    f"http://127.0.0.1:{port}/",
                    # Its settings and the crash handler's database in this test's directory, not in $HOME.
                    env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(cache)},
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                done, _ = await asyncio.wait([run.report], timeout=BROWSER_TIMEOUT)
                if not done:
                    tail = browser_log.read_text(errors="replace")[-3000:]
                    raise AssertionError(
                        f"no report from the page within {BROWSER_TIMEOUT}s (requests: {run.page_requests}, "
                        f"handshake: {run.request is not None}, echoed: {run.echoed}); chromium's output:\n{tail}"
                    )
                # The closing handshake that follows the report, before the browser goes.
                await asyncio.wait([run.handler_done], timeout=2 * KILL_TIMEOUT)
                return run, run.report.result()
            finally:
                await _stop(process, str(tmp_path))

    try:
        run, report = run_in_new_loop(loop_name, main(), timeout=BROWSER_TIMEOUT + 4 * KILL_TIMEOUT + 10)
    finally:
        for directory in (profile, cache, tmp_path / "config"):  # Chromium's files: thousands of them
            shutil.rmtree(directory, ignore_errors=True)
    assert run.page_requests[:1] == ["/"], run.page_requests
    assert run.request is not None and run.response is not None
    offered = run.request.headers.get_all("Sec-WebSocket-Extensions")
    agreed = run.response.headers.get("Sec-WebSocket-Extensions")
    assert any(value.split(";")[0].strip() == "permessage-deflate" for value in offered), offered
    assert agreed is not None and agreed.split(";")[0].strip() == "permessage-deflate", agreed
    assert report["extensions"] == agreed, (report["extensions"], agreed)
    assert report["failures"] == [], report["failures"]
    assert report["ok"] and report["checked"] == report["expected"] == run.echoed, report
    assert run.close is not None and run.close[0] == 1000, run.close  # the browser answered the close
    print(
        f"chromium: {report['userAgent']}\n  offered {offered}, agreed {agreed!r}\n"
        f"  {report['checked']} echoes checked, all matched"
    )
