"""Fixtures of the scale tests: a real Redis (tests/redis_support.py), servers run by ``python -m ws4py serve``."""

from __future__ import annotations

import resource
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
# tests/ last: its folders (tests/asyncio...) must not shadow the packages of the same names.
if str(TESTS) not in sys.path:
    sys.path.append(str(TESTS))

from redis_support import RedisServer  # noqa: E402

# A thousand clients in this process, and a server process (which inherits the limit) holding them.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if _hard == resource.RLIM_INFINITY or _soft < _hard:
    resource.setrlimit(resource.RLIMIT_NOFILE, (_hard, _hard))
NOFILE_LIMIT = resource.getrlimit(resource.RLIMIT_NOFILE)[0]


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A Redis of the test's own (redis_support.RedisServer), stopped and its files removed after."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()
