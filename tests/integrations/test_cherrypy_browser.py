"""Headless Chromium through ws4py's CherryPy integration.

CherryPy serves ``tests/interop/browser/echo.html`` at ``/browser``; the page
opens a WebSocket to ``/echo`` (the tool, permessage-deflate accepted), sends
text and binary messages (200 KB ones among them), checks every echo and
reports. Chromium runs and is stopped as ``tests/interop/test_asyncio_browser.py``
does it (its helpers are imported from there).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path

from cherrypy_support import BrowserEchoWebSocket, Servers
from test_asyncio_browser import BROWSER_TIMEOUT, KILL_TIMEOUT, _chromium, _stop


def test_chromium_echo_through_cherrypy_with_permessage_deflate(servers: Servers, tmp_path: Path) -> None:
    chromium = _chromium()
    BrowserEchoWebSocket.reports.clear()
    profile, cache, config = tmp_path / "profile", tmp_path / "cache", tmp_path / "config"
    browser_log = tmp_path / "chromium.log"

    async def main() -> None:
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
                f"http://127.0.0.1:{servers.port}/browser",
                env={**os.environ, "XDG_CONFIG_HOME": str(config), "XDG_CACHE_HOME": str(cache)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            deadline = time.monotonic() + BROWSER_TIMEOUT
            while not BrowserEchoWebSocket.reports and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await _stop(process, str(tmp_path))

    try:
        asyncio.run(asyncio.wait_for(main(), BROWSER_TIMEOUT + 4 * KILL_TIMEOUT))
    finally:
        for directory in (profile, cache, config):  # Chromium's files: thousands of them
            shutil.rmtree(directory, ignore_errors=True)
    assert BrowserEchoWebSocket.reports, "no report from the page: " + browser_log.read_text(errors="replace")[-3000:]
    environ, report = BrowserEchoWebSocket.reports[0]
    offered = environ.get("HTTP_SEC_WEBSOCKET_EXTENSIONS", "")
    assert "permessage-deflate" in offered, offered
    assert (report["extensions"] or "").split(";")[0] == "permessage-deflate", report["extensions"]
    assert report["failures"] == [], report["failures"]
    assert report["ok"] and report["checked"] == report["expected"], report
