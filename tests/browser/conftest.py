"""Headless Chromium for the chat tests: one browser for the module, a fresh context per test.

Debian's ``/usr/bin/chromium`` (``scripts/ensure_debian.sh`` installs it on
CI) driven by Python Playwright, never a downloaded browser. Without it the
tests fail, unless the environment sets ``WS4PY_SKIP_BROWSER=1``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from chat_harness import PAGE_TIMEOUT, SCREENSHOTS
from playwright.sync_api import Browser, BrowserContext, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Where the chat's screenshots are, after every run that made some."""
    if SCREENSHOTS:
        terminalreporter.section("chat screenshots")
        for path in SCREENSHOTS:
            terminalreporter.write_line(str(path))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium, for every test of the module."""
    if not os.access(CHROMIUM, os.X_OK):
        message = (
            f"headless Chromium is needed for the chat tests and {CHROMIUM} is missing: "
            "run scripts/ensure_debian.sh /usr/bin/chromium chromium (scripts/test does), "
            "or set WS4PY_SKIP_BROWSER=1 to skip them"
        )
        if os.environ.get("WS4PY_SKIP_BROWSER") == "1":
            pytest.skip(message)
        pytest.fail(message)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True, timeout=30_000
        )
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A browser context of its own (tabs, storage) for one test, closed after it."""
    ctx = browser.new_context(viewport={"width": 720, "height": 480})
    ctx.set_default_timeout(PAGE_TIMEOUT)
    try:
        yield ctx
    finally:
        ctx.close()
