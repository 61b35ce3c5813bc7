"""What the fuzzers of fuzz/ found, each pinned by its minimal input, built plainly.

Run under both codecs by the codec fixture of tests/core.
"""

from __future__ import annotations

import tracemalloc

from ws4py.protocol import Connection, Role, State

MASK = b"\x00\x00\x00\x00"


def frame_header(length: int) -> bytes:
    """A masked binary frame's header (a client's) claiming ``length`` payload bytes, none sent."""
    return bytes((0x82, 0x80 | 127)) + length.to_bytes(8, "big") + MASK


def test_a_header_claiming_an_enormous_frame_without_limits_does_not_raise() -> None:
    # Found by the frames target (max_message_size=None): receive_data raised MemoryError,
    # allocating the claimed 2**62 bytes before any arrived. Its contract: it never raises.
    conn = Connection(Role.SERVER, max_message_size=None)
    assert conn.receive_data(frame_header(2**62)) == []
    assert conn.state is State.OPEN


def test_a_header_alone_does_not_commit_the_memory_it_claims() -> None:
    # Found by the frames target as an out-of-memory: a 14-byte header claiming 3.9 GB made
    # the core allocate and zero all of it (issue 20, item 1). 64 MiB here, enough to tell.
    conn = Connection(Role.SERVER, max_message_size=None)
    tracemalloc.start()
    try:
        conn.receive_data(frame_header(64 << 20))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    assert conn.state is State.OPEN
