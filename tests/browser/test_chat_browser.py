"""The chat demo in headless Chromium, on both of its servers: the asyncio one (``scripts/serve``)
and ``examples/echo_cherrypy_server.py``, each in a subprocess, serving the same page.

Each test opens its pages in a fresh browser context; the server lives for the
module (one per kind) and the restart test stops and starts it again on the
same port. Screenshots go to ``test-output/browser/`` in the checkout; their paths are printed.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from chat_harness import (
    EXAMPLES,
    ROOT,
    ChatServer,
    as_from_a_terminal,
    expect_message,
    expect_notice,
    expect_online,
    free_port,
    handshake_status,
    joined,
    say,
    screenshot,
)
from playwright.sync_api import BrowserContext, Page, expect

SERVERS = ["asyncio", "cherrypy"]


@pytest.fixture(scope="module", params=SERVERS)
def chat(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatServer]:
    """A chat server of each kind; stopped at the end with Ctrl-C, which must end it cleanly."""
    server = ChatServer(request.param, free_port(), tmp_path_factory.mktemp(request.param) / "server.log")
    server.start()
    try:
        yield server
        status = server.stop(signal.SIGINT)
        assert status == 0, f"Ctrl-C ended the {server.kind} server with {status}:\n{server.output()}"
        assert "Traceback" not in server.output(), server.output()
    finally:
        server.close()


def _open(context: BrowserContext, chat: ChatServer) -> tuple[Page, str]:
    page = context.new_page()
    page.goto(chat.url)
    return page, joined(page)


def test_a_message_typed_in_one_page_shows_in_both(chat: ChatServer, context: BrowserContext) -> None:
    first, first_name = _open(context, chat)
    second, second_name = _open(context, chat)
    expect_notice(first, f"{second_name} joined")
    expect_online(first, 2)
    expect_online(second, 2)

    say(first, "hello from the first page ✓")
    for page in (first, second):
        expect_message(page, first_name, "hello from the first page ✓")
    expect(first.locator("#text")).to_have_value("")  # sent: the box is ready for the next one
    say(second, "and back")
    for page in (first, second):
        expect_message(page, second_name, "and back")
    screenshot(first, f"{chat.kind}-first-page")
    screenshot(second, f"{chat.kind}-second-page")


def test_a_page_that_closes_leaves_a_notice_and_the_count_drops(chat: ChatServer, context: BrowserContext) -> None:
    staying, _ = _open(context, chat)
    leaving, leaving_name = _open(context, chat)
    expect_online(staying, 2)
    leaving.close()
    expect_notice(staying, f"{leaving_name} left")
    expect_online(staying, 1)


def test_a_name_typed_in_the_page_is_announced_and_used(chat: ChatServer, context: BrowserContext) -> None:
    renamed, old_name = _open(context, chat)
    other, _ = _open(context, chat)
    renamed.fill("#name", "Ada")
    renamed.press("#name", "Enter")  # a change of the field
    expect_notice(other, f"{old_name} is now Ada")
    say(renamed, "it is me")
    expect_message(other, "Ada", "it is me")


def test_markup_in_a_message_is_shown_as_text_and_never_run(chat: ChatServer, context: BrowserContext) -> None:
    sender, name = _open(context, chat)
    reader, _ = _open(context, chat)
    # An inline script would not run from innerHTML, an image's onerror would: both must stay text.
    hostile = '<script>window.pwned = 1</script><img src="/nothing" onerror="window.pwned = 2"><b>bold?</b>'
    say(sender, hostile)
    for page in (sender, reader):
        expect_message(page, name, hostile)
        assert page.locator("#log img, #log script, #log b").count() == 0
        assert page.evaluate("window.pwned") is None


def test_a_long_message_is_refused_with_a_notice_and_the_connection_stays_open(
    chat: ChatServer, context: BrowserContext
) -> None:
    sender, name = _open(context, chat)
    reader, _ = _open(context, chat)
    say(sender, "x" * 2001)
    refused = "Not sent: your message has 2,001 characters, the limit is 2,000."
    expect(sender.locator("#log .error").last).to_have_text(refused)
    expect(sender.locator("#text")).to_have_value("x" * 2001)  # kept, to be shortened

    # The server checks too, for any client: a page-origin WebSocket that skips the page's check.
    answers = sender.evaluate(
        """() => new Promise((resolve) => {
            const ws = new WebSocket(location.origin.replace(/^http/, "ws") + "/ws");
            const got = [];
            ws.onopen = () => {
                ws.send(JSON.stringify({type: "hello", name: "direct"}));
                ws.send(JSON.stringify({type: "say", text: "€".repeat(2001)}));
                ws.send(JSON.stringify({type: "say", text: "still here"}));
            };
            ws.onmessage = (event) => {
                const m = JSON.parse(event.data);
                got.push(m.type === "error" ? "error: " + m.text : m.type + ": " + m.text);
                if (m.type === "message" && m.text === "still here") { ws.close(); resolve(got); }
            };
            ws.onclose = (event) => resolve([...got, "closed: " + event.code]);
            setTimeout(() => resolve([...got, "timed out"]), 4000);
        })"""
    )
    assert "error: message not sent: it has 2,001 characters, the limit is 2,000" in answers, answers
    assert answers[-1] == "message: still here", answers

    # The page's own connection is still open: a short message goes through.
    say(sender, "a short one")
    for page in (sender, reader):
        expect_message(page, name, "a short one")


def test_a_web_page_of_another_origin_is_refused_with_403(chat: ChatServer) -> None:
    assert handshake_status(chat.port, "http://evil.example") == b"HTTP/1.1 403 Forbidden"
    assert handshake_status(chat.port, "http://127.0.0.1:1") == b"HTTP/1.1 403 Forbidden"  # another port, another site
    assert handshake_status(chat.port, f"http://127.0.0.1:{chat.port}").startswith(b"HTTP/1.1 101 ")
    assert handshake_status(chat.port, f"http://localhost:{chat.port}").startswith(b"HTTP/1.1 101 ")


def test_pages_reconnect_by_themselves_when_the_server_comes_back(chat: ChatServer, context: BrowserContext) -> None:
    first, first_name = _open(context, chat)
    second, second_name = _open(context, chat)
    expect_online(first, 2)

    # A clean stop (SIGTERM): the pages are told the server is going away (1001), then it comes back.
    assert chat.stop(signal.SIGTERM) == 0, chat.output()
    for page in (first, second):
        expect_notice(page, "disconnected from the server (1001); reconnecting…")
    chat.start()
    assert joined(first) == first_name and joined(second) == second_name
    expect_online(first, 2)
    say(second, "back after a restart")
    for page in (first, second):
        expect_message(page, second_name, "back after a restart")

    # A crash (SIGKILL): no closing handshake at all; the pages find the new server all the same.
    assert chat.proc is not None
    chat.proc.kill()
    chat.proc.wait(5)
    for page in (first, second):
        expect(page.locator("#status")).not_to_have_attribute("data-state", "online")
    chat.start()
    joined(first)
    joined(second)
    say(first, "back after a crash")
    for page in (first, second):
        expect_message(page, first_name, "back after a crash")
    screenshot(first, f"{chat.kind}-first-page-after-restarts")
    screenshot(second, f"{chat.kind}-second-page-after-restarts")


#: What ``examples/manager_clients.py`` opens, as the manager page says.
MANAGER_CLIENTS = 2000


def _port_9000_accepts() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 9000), timeout=0.2).close()
    except OSError:
        return False
    return True


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def test_the_manager_example_logs_a_message_typed_in_the_browser_by_each_of_its_2000_clients(
    context: BrowserContext, tmp_path: Path
) -> None:
    """The manager page as written: its 2,000 clients against ``echo_cherrypy_server`` on port 9000,
    a message entered at http://localhost:9000/, logged 2,000 times; Ctrl-C stops the clients cleanly."""
    if _port_9000_accepts():
        pytest.skip("port 9000 is taken on this machine; the manager page's example needs it")
    server = ChatServer("cherrypy", 9000, tmp_path / "server.log")
    server.start()
    clients: subprocess.Popen[str] | None = None
    lines: list[str] = []
    reader: threading.Thread | None = None
    try:
        clients = subprocess.Popen(
            [sys.executable, str(EXAMPLES / "manager_clients.py")],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=as_from_a_terminal,
        )
        reader = threading.Thread(target=lambda: lines.extend(clients.stdout), daemon=True)  # type: ignore[arg-type, union-attr]
        reader.start()
        connected = f"{MANAGER_CLIENTS - 1} clients are connected"
        _wait(lambda: any(connected in line for line in lines), 120, f"{MANAGER_CLIENTS:,} connections")

        page = context.new_page()
        page.goto("http://localhost:9000/")
        name = joined(page)
        say(page, "to each of the 2,000")
        expect_message(page, name, "to each of the 2,000")
        logged = '"text": "to each of the 2,000"'
        _wait(lambda: sum(logged in line for line in lines) == MANAGER_CLIENTS, 60, "2,000 log lines")

        clients.send_signal(signal.SIGINT)  # the example's Ctrl-C: close_all(), stop(), join()
        assert clients.wait(30) == 0, "".join(lines[-20:])
        assert sum(logged in line for line in lines) == MANAGER_CLIENTS
        assert not [line for line in lines if "Traceback" in line or "ERROR" in line], "".join(lines[-20:])
        assert server.stop(signal.SIGINT) == 0, server.output()
        assert "Traceback" not in server.output(), server.output()
    finally:
        if clients is not None and clients.poll() is None:
            clients.kill()
            clients.wait(10)
        if reader is not None:
            reader.join(10)
        server.close()
