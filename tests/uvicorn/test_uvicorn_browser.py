"""Headless Chromium through uvicorn with ws4py's implementation, permessage-deflate negotiated.

A Starlette app serves ``tests/interop/browser/echo.html`` at ``/browser``; the page opens a
WebSocket to ``/echo``, sends text and binary messages (200 KB ones among them), checks every
echo and sends its report, which the app records. Chromium is run and stopped by
``tests/interop/chromium_page.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from chromium_page import PAGE, open_page
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from uvicorn_support import Record, serving


def browser_app(record: Record) -> Starlette:
    async def page(request: object) -> HTMLResponse:
        return HTMLResponse(PAGE.read_text())

    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is not None and text.startswith("report:"):
                    record.put(ws.headers.get("sec-websocket-extensions", ""), json.loads(text[len("report:") :]))
                elif text is not None:
                    await ws.send_text(text)
                else:
                    await ws.send_bytes(message["bytes"])
        except WebSocketDisconnect:
            return

    return Starlette(routes=[Route("/browser", page), WebSocketRoute("/echo", echo)])


def test_chromium_echo_through_uvicorn_with_permessage_deflate(tmp_path: Path) -> None:
    record = Record()
    with (
        serving(browser_app(record), ws_per_message_deflate=True) as running,
        open_page(f"http://127.0.0.1:{running.port}/browser", tmp_path) as browser,
    ):
        offered, report = browser.wait_for(lambda: None if record.empty() else record.get())
    assert "permessage-deflate" in offered, offered
    assert (report["extensions"] or "").split(";")[0] == "permessage-deflate", report["extensions"]
    assert report["failures"] == [], report["failures"]
    assert report["ok"] and report["checked"] == report["expected"], report
