"""Shared fixtures: every test under tests/core runs once per frame codec."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ws4py.protocol import frames

CODECS = frames.available_implementations()


def pytest_report_header() -> str:
    return f"ws4py frame codecs: {', '.join(CODECS)} (default {frames.implementation})"


@pytest.fixture(params=CODECS, autouse=True)
def codec(request: pytest.FixtureRequest) -> Iterator[str]:
    """The frame codec (``"c"`` or ``"python"``) the test runs against."""
    previous = frames.implementation
    frames.use(request.param)
    try:
        yield request.param
    finally:
        frames.use(previous)
