"""tests/uvicorn reuses the peers of tests/interop (the browser harness, chromium_page.py, and Node's ``ws``),
the Autobahn-style cases of tests/core with their socket fuzzer (tests/autobahn_sockets), and the
socket probes of tests/faults (faultkit.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for _folder in ("interop", "autobahn_sockets", "core", "faults"):
    if str(TESTS / _folder) not in sys.path:
        sys.path.insert(0, str(TESTS / _folder))

from interop_peers import node_with_ws  # noqa: E402


@pytest.fixture(scope="session")
def node() -> str:
    """Node with its ``ws`` package, as tests/interop installs it."""
    return node_with_ws()
