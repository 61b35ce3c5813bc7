"""A real browser against ws4py's asyncio server: headless Chromium.

The server is ``ws4py.asyncio.serve``; its ``process_request`` hook answers
``GET /`` (a request that is no WebSocket upgrade) with the page
``browser/echo.html``. The page opens a WebSocket back to the server, sends
text and binary (``ArrayBuffer``) messages, two of 200 KB and more among
them, checks every echo and sends a last text message ``report:<JSON>``.
The test checks that Chromium offered permessage-deflate, that the server
agreed to it (and the browser saw the same ``Sec-WebSocket-Extensions``),
and that the report says every echo matched.

Chromium runs and is stopped by ``chromium_page.py`` (shared with the CherryPy
and gevent browser tests); without it the test fails, unless the environment
sets ``WS4PY_SKIP_BROWSER=1``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from chromium_page import BROWSER_TIMEOUT, KILL_TIMEOUT, PAGE, ChromiumPage, chromium_executable
from test_asyncio_interop import LOOP_PARAMS, check_loop, run_in_new_loop

import ws4py.asyncio
from ws4py.protocol import Request, Response
from ws4py.protocol.headers import Headers


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


def test_chromium_echo_with_permessage_deflate(loop_name: str, tmp_path: Path) -> None:
    chromium_executable()  # before the loop: a missing browser fails (or skips) the test, not the loop

    async def main() -> tuple[BrowserRun, dict[str, Any]]:
        run = BrowserRun()
        async with ws4py.asyncio.serve(
            run.handler, "127.0.0.1", 0, process_request=run.process_request, ping_interval=None, close_timeout=5
        ) as server:
            port = server.sockets[0].getsockname()[1]
            browser = ChromiumPage(f"http://127.0.0.1:{port}/", tmp_path)
            try:
                done, _ = await asyncio.wait([run.report], timeout=BROWSER_TIMEOUT)
                if not done:
                    raise AssertionError(
                        f"no report from the page within {BROWSER_TIMEOUT}s (requests: {run.page_requests}, "
                        f"handshake: {run.request is not None}, echoed: {run.echoed}); "
                        f"chromium's output:\n{browser.log_tail()}"
                    )
                # The closing handshake that follows the report, before the browser goes.
                await asyncio.wait([run.handler_done], timeout=2 * KILL_TIMEOUT)
                return run, run.report.result()
            finally:
                await asyncio.to_thread(browser.stop)  # the loop serves on while Chromium goes

    run, report = run_in_new_loop(loop_name, main(), timeout=BROWSER_TIMEOUT + 4 * KILL_TIMEOUT + 10)
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
