"""What the core copies: a received frame's bytes wait in its buffer only while they must; a str sent is not encoded
to a copy first when it is ASCII (issue 23)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import TypeVar

import pytest

from ws4py.protocol import BinaryReceived, Connection, Role, TextReceived, frames
from ws4py.protocol.buffers import spare_buffers

T = TypeVar("T")


def allocated_by(action: Callable[[], T]) -> tuple[T, int]:
    """``action()``'s result and the most bytes allocated at once while it ran."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak - before


FRAME = 60_000  # each frame's payload: under the size that gets a buffer of its own


@pytest.mark.parametrize("codec", frames.available_implementations())
def test_the_frames_after_a_buffered_one_are_parsed_where_they_arrived_not_copied_into_the_buffer(codec: str) -> None:
    with frames.using(codec):
        conn = Connection(Role.CLIENT)  # unmasked frames: the codec makes no copy of its own
        payloads = [bytes([65 + i]) * FRAME for i in range(5)]
        wire = b"".join(frames.build_frame(0x82, p, None) for p in payloads)
        assert conn.receive_data(wire[:100]) == []  # the first frame's start waits in the buffer
        data = wire[100:]
        events, peak = allocated_by(lambda: conn.receive_data(data))
        assert events == [BinaryReceived(p) for p in payloads]
        # The payloads (5 x 60,000 bytes) and little more: not another copy of the read in the buffer.
        assert peak < 5 * FRAME + 100_000, peak


@pytest.mark.parametrize("codec", frames.available_implementations())
@pytest.mark.parametrize("text", [False, True])
def test_a_large_frames_start_goes_straight_into_its_own_buffer_not_through_the_shared_one(
    codec: str, text: bool
) -> None:
    if text and codec == "python":
        pytest.skip("the twin's UTF-8 check of what arrived decodes it: memory of its own")
    spare_buffers.clear()  # a fresh buffer of the frame's size, made for it
    with frames.using(codec):
        conn = Connection(Role.CLIENT)  # unmasked frames: the codec makes no copy of its own
        payload = b"x" * 400_000
        wire = frames.build_frame(0x81 if text else 0x82, payload, None)
        head = wire[:300_000]  # over a quarter: the frame gets its buffer
        events, peak = allocated_by(lambda: conn.receive_data(head))
        assert events == []
        assert peak < len(wire) + 50_000, peak  # its buffer only, not the start in the shared one too
        events = conn.receive_data(wire[300_000:])
        assert events == [TextReceived(payload.decode()) if text else BinaryReceived(payload)]
    spare_buffers.clear()


@pytest.mark.parametrize("codec", frames.available_implementations())
def test_frame_parts_writes_a_large_ascii_str_from_its_own_data(codec: str) -> None:
    with frames.using(codec):
        conn = Connection(Role.SERVER)
        text = "".join(["abcd"] * 100_000)  # 400,000 bytes of ASCII
        (header, payload), peak = allocated_by(lambda: conn.frame_parts(text, False))
        assert header + bytes(payload) == frames.build_frame(0x81, text.encode(), None)
        if codec == "c":
            assert isinstance(payload, memoryview) and payload.readonly
            assert peak < 10_000, peak  # a view of the str's data: no encoded copy
        assert conn.frame_parts("ü" * 50_000, False)[1] == ("ü" * 50_000).encode()  # not ASCII: encoded once


@pytest.mark.parametrize("codec", frames.available_implementations())
def test_send_text_frames_an_ascii_str_with_no_encoded_copy_in_between(codec: str) -> None:
    with frames.using(codec):
        conn = Connection(Role.SERVER)
        text = "".join(["abcd"] * 10_000)  # 40,000 bytes: framed whole
        frame, peak = allocated_by(lambda: conn.send_text(text))
        assert frame == frames.build_frame(0x81, text.encode(), None)
        if codec == "c":
            assert peak < len(frame) + 5_000, peak  # the frame only
