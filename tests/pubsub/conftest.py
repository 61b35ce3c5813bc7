"""Fixtures of the pub/sub tests: real Redis servers (tests/redis_support.py), stopped and removed after."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
# tests/ last: its folders (tests/asyncio...) must not shadow the packages of the same names.
for _folder in (TESTS / "asyncio", TESTS / "threaded", TESTS / "faults"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))
if str(TESTS) not in sys.path:
    sys.path.append(str(TESTS))

from redis_support import RedisCluster, RedisServer  # noqa: E402


@pytest.fixture(autouse=True)
def no_leaked_pubsub_threads() -> Iterator[None]:
    """No thread of a broker outlives its test (every test closes its brokers)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 3.0
    for thread in [t for t in threading.enumerate() if t.name.startswith("ws4py.pubsub") and t not in before]:
        thread.join(max(0.0, deadline - time.monotonic()))
        assert not thread.is_alive(), f"{thread.name} outlived the test"


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
