"""Fixtures for tests/tornado: tests/threaded's servers, TLS fixtures and leak check, shared as they are.

tests/threaded/conftest.py is loaded as a module (the way tests/integrations
shares tests/interop's), so the trustme CA, the threaded servers and the check
that no thread or file descriptor outlives a test are the same objects here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
for _folder in ("threaded", "asyncio"):
    if str(TESTS / _folder) not in sys.path:
        sys.path.insert(0, str(TESTS / _folder))

_spec = importlib.util.spec_from_file_location("threaded_conftest", TESTS / "threaded" / "conftest.py")
assert _spec is not None and _spec.loader is not None
_threaded = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_threaded)

no_leaked_threads_or_sockets = _threaded.no_leaked_threads_or_sockets
serve = _threaded.serve
server = _threaded.server
tls_ca = _threaded.tls_ca
tls_server_context = _threaded.tls_server_context
