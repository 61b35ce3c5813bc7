"""Fixtures of the pub/sub tests: real Redis servers (tests/redis_support.py), stopped and removed after."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
# tests/ last: its folders (tests/asyncio...) must not shadow the packages of the same names.
for _folder in (TESTS / "asyncio", TESTS / "faults"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))
if str(TESTS) not in sys.path:
    sys.path.append(str(TESTS))

from redis_support import RedisCluster, RedisServer  # noqa: E402


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A Redis of the test's own."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def start_redis() -> Iterator[Callable[..., RedisServer]]:
    """Start Redis servers with extra arguments (stopped at the end of the test)."""
    servers: list[RedisServer] = []

    def start(*args: str) -> RedisServer:
        server = RedisServer(*args)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisCluster]:
    """A Redis Cluster of three masters, shared by a module's tests."""
    cluster = RedisCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()
