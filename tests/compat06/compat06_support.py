"""What the tests of tests/compat06 share: RFC 6455 section 5.7's examples, feeding a frame parser."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from ws4py.framing import OPCODE_BINARY, OPCODE_CONTINUATION, OPCODE_PING, OPCODE_PONG, OPCODE_TEXT

__all__ = [
    "DATA_64K",
    "DATA_256",
    "EXPECTED_FAILURES",
    "FIELDS",
    "RFC_EXAMPLES",
    "RFC_KEY",
    "UPSTREAM",
    "expected_failures",
    "feed",
    "fields",
]

HERE = Path(__file__).parent
#: Where 0.6.0's suite is kept (git-ignored): the tests of its sdist's ``test/`` folder (conftest.py).
UPSTREAM = HERE / "ws4py060"
#: The tests of that suite that do not pass here, each with why.
EXPECTED_FAILURES = HERE / "expected_failures.txt"

RFC_KEY = bytes.fromhex("37fa213d")
DATA_256 = os.urandom(256)
DATA_64K = os.urandom(65536)

#: RFC 6455 section 5.7: (opcode, body, masking key, fin) and the frame's bytes.
RFC_EXAMPLES = {
    "unmasked text": ((OPCODE_TEXT, b"Hello", None, 1), bytes.fromhex("810548656c6c6f")),
    "masked text": ((OPCODE_TEXT, b"Hello", RFC_KEY, 1), bytes.fromhex("818537fa213d7f9f4d5158")),
    "first fragment": ((OPCODE_TEXT, b"Hel", None, 0), bytes.fromhex("010348656c")),
    "last fragment": ((OPCODE_CONTINUATION, b"lo", None, 1), bytes.fromhex("80026c6f")),
    "unmasked ping": ((OPCODE_PING, b"Hello", None, 1), bytes.fromhex("890548656c6c6f")),
    "masked pong": ((OPCODE_PONG, b"Hello", RFC_KEY, 1), bytes.fromhex("8a8537fa213d7f9f4d5158")),
    "256 bytes binary": ((OPCODE_BINARY, DATA_256, None, 1), bytes.fromhex("827e0100") + DATA_256),
    "64 KiB binary": ((OPCODE_BINARY, DATA_64K, None, 1), bytes.fromhex("827f0000000000010000") + DATA_64K),
}

FIELDS = ("fin", "rsv1", "rsv2", "rsv3", "opcode", "payload_length", "masking_key", "body")


def fields(frame: Any) -> dict[str, Any]:
    return {name: getattr(frame, name) for name in FIELDS}


def feed(frame_class: Any, data: bytes, mode: str) -> tuple[list[Any], Any]:
    """Parse ``data`` with a new ``frame_class()``; return what its parser asked for at each step, and the frame.

    ``mode``: ``"exact"`` sends what the parser asks for (what 0.6's stream did),
    ``"bytes"`` one byte at a time, ``"whole"`` everything at once.
    """
    frame = frame_class()
    asked = [next(frame.parser)]  # what the started parser asks first (the property starts it)
    pos = 0
    while asked[-1] is not None:
        assert pos < len(data), f"the parser asks for {asked[-1]} bytes more than the frame has"
        size = {"exact": asked[-1], "bytes": 1, "whole": len(data)}[mode]
        asked.append(frame.parser.send(data[pos : pos + size]))
        pos += size
    return asked, frame


def expected_failures(path: Path) -> dict[str, str]:
    """The tests listed in ``path`` (tests/compat06/expected_failures.txt): id -> reason.

    One a line: the test's id in the downloaded suite's folder, a space, why; ``#`` comments.
    """
    listed: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        test_id, _, reason = line.partition(" ")
        if not reason.strip():
            raise pytest.UsageError(f"{path}:{number}: {test_id} has no reason")
        if test_id in listed:
            raise pytest.UsageError(f"{path}:{number}: {test_id} is listed twice")
        listed[test_id] = reason.strip()
    return listed
