"""Headless Chromium through ws4py's CherryPy integration.

CherryPy serves ``tests/interop/browser/echo.html`` at ``/browser``; the page
opens a WebSocket to ``/echo`` (the tool, permessage-deflate accepted), sends
text and binary messages (200 KB ones among them), checks every echo and
reports. Chromium runs and is stopped by ``tests/interop/chromium_page.py``.
"""

from __future__ import annotations

from pathlib import Path

from cherrypy_support import BrowserEchoWebSocket, Servers
from chromium_page import open_page


def test_chromium_echo_through_cherrypy_with_permessage_deflate(servers: Servers, tmp_path: Path) -> None:
    BrowserEchoWebSocket.reports.clear()
    with open_page(f"http://127.0.0.1:{servers.port}/browser", tmp_path) as browser:
        environ, report = browser.wait_for(lambda: next(iter(BrowserEchoWebSocket.reports), None))
    offered = environ.get("HTTP_SEC_WEBSOCKET_EXTENSIONS", "")
    assert "permessage-deflate" in offered, offered
    assert (report["extensions"] or "").split(";")[0] == "permessage-deflate", report["extensions"]
    assert report["failures"] == [], report["failures"]
    assert report["ok"] and report["checked"] == report["expected"], report
