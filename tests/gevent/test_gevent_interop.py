"""Other WebSocket implementations through ws4py's gevent server (monkey-patched, in a subprocess).

``websockets`` (sync client) and Node's ``ws`` client, with the adapters of
``tests/interop/interop_peers.py``, and headless Chromium playing the page
``tests/interop/browser/echo.html`` as ``tests/interop/test_asyncio_browser.py``
runs it (the gevent server serves the page at ``/`` and echoes on ``/echo``;
the page's ``report:`` message is printed by the server and read here).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from gevent_support import GeventServer
from interop_peers import FRAGMENTS, NodeClient, WebsocketsClient
from test_asyncio_browser import BROWSER_TIMEOUT, KILL_TIMEOUT, PAGE, _chromium, _holding, _live_members


def _exchange(client: Any) -> None:
    """Echoes of text, large binary and a fragmented message, a ping, the closing handshake."""
    try:
        assert (client.extensions_header or "").split(";")[0].strip() == "permessage-deflate"
        client.send("héllo")
        assert client.recv() == "héllo"
        client.send(bytes(range(256)) * 800)
        assert client.recv() == bytes(range(256)) * 800
        client.send_fragments(list(FRAGMENTS))
        assert client.recv() == "".join(FRAGMENTS)
        assert client.ping(b"are you there") == b"are you there"
        client.close(1000, "bye")
    finally:
        client.shutdown()


def test_websockets_client_through_the_gevent_server(gevent_server: GeventServer) -> None:
    _exchange(WebsocketsClient(gevent_server.url()))


def test_node_ws_client_through_the_gevent_server(gevent_server: GeventServer, node: str) -> None:
    _exchange(NodeClient(gevent_server.url(), node))


def test_chromium_echo_through_the_gevent_server(start_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chromium = _chromium()
    server = start_server("--page", str(PAGE))
    profile, cache = tmp_path / "profile", tmp_path / "cache"
    profile.mkdir()
    with open(tmp_path / "chromium.log", "wb") as log:
        browser = subprocess.Popen(
            [
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
                f"http://127.0.0.1:{server.port}/",
            ],
            env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_CACHE_HOME": str(cache)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + BROWSER_TIMEOUT
        while not (reports := [line for line in server.lines if line.startswith("REPORT ")]):
            if time.monotonic() > deadline:
                tail = (tmp_path / "chromium.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"no report from the page within {BROWSER_TIMEOUT}s; chromium's output:\n{tail}")
            time.sleep(0.05)
        report = json.loads(reports[0][len("REPORT ") :])
    finally:
        _stop(browser, str(tmp_path))
        for directory in (profile, cache, tmp_path / "config"):  # Chromium's files: thousands of them
            shutil.rmtree(directory, ignore_errors=True)
    assert (report["extensions"] or "").split(";")[0].strip() == "permessage-deflate", report
    assert report["failures"] == [], report["failures"]
    assert report["ok"] and report["checked"] == report["expected"], report
    assert not server.tracebacks(), server.errors


def _stop(process: subprocess.Popen[bytes], marker: str) -> None:
    """End Chromium's whole process group (and its daemonized crash handler, found by ``marker``)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(KILL_TIMEOUT)
    deadline = time.monotonic() + KILL_TIMEOUT
    while time.monotonic() < deadline and (_live_members(process.pid) or _holding(marker)):
        for pid in _holding(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
