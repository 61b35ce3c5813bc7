"""Fixtures of the command line's tests: a real Redis (tests/redis_support.py), stopped and removed after."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
if str(TESTS) not in sys.path:
    sys.path.append(str(TESTS))  # last: tests/asyncio... must not shadow the packages of the same names

from redis_support import redis_server  # noqa: E402, F401 (the shared fixture)


@pytest.fixture(autouse=True)
def _sys_path_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """``serve`` run in this process puts the current folder on ``sys.path``, as ``python -m`` has it: not for long."""
    monkeypatch.setattr(sys, "path", [*sys.path])
