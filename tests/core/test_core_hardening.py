"""Issue 20 in the core: memory follows the bytes that arrived, and a response head cannot be forged.

- A frame header is not a promise: the buffer of an incomplete large frame
  grows with its bytes, not with the length its header claims.
- Fragments cost their bytes: a fragmented message is assembled into one
  buffer as its fragments arrive, so empty or tiny fragments hold no more
  than their payload.
- ``respond()``/``reject()`` refuse a status code out of 100-599 and a
  reason phrase that would break the start line, as header fields are refused.

Every test runs with both frame codecs (``conftest.py``). Memory is measured
with ``tracemalloc``, which sees every ``bytearray``, ``bytes`` and list the
core makes.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from ws4py.protocol import (
    BinaryReceived,
    Connection,
    ConnectionFailed,
    Headers,
    PerMessageDeflate,
    PongReceived,
    Response,
    Role,
    ServerHandshake,
    TextReceived,
    frames,
)
from ws4py.protocol.buffers import spare_buffers
from ws4py.protocol.http11 import serialize_response

MIB = 2**20
KEY = b"\x11\x22\x33\x44"
T = TypeVar("T")


def claim(length: int, first_byte: int = 0x82) -> bytes:
    """The 14-byte header of a masked frame (as a client sends it) claiming ``length`` payload bytes."""
    return bytes((first_byte, 0x80 | 127)) + length.to_bytes(8, "big") + KEY


def masked(payload: bytes, phase: int = 0) -> bytes:
    """``payload`` masked with ``KEY`` from byte ``phase`` of the frame's payload on."""
    key = KEY[phase % 4 :] + KEY[: phase % 4]
    return frames.apply_mask(payload, key) if payload else b""


def allocated_by(action: Callable[[], T], warm_up: Callable[[], object] | None = None) -> tuple[T, int, int]:
    """``action()``'s result and the bytes it left allocated and allocated at its peak.

    ``warm_up`` runs first, traced but not counted: the interpreter keeps some
    freed objects for reuse (2,000 tuples, for one), which would count as held.
    """
    tracemalloc.start()
    try:
        if warm_up is not None:
            warm_up()
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = action()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, after - before, peak - before


def chunks(data: bytes, size: int) -> Iterator[bytes]:
    for pos in range(0, len(data), size):
        yield data[pos : pos + size]


# -- 1. a frame header is not a promise -----------------------------------------


@pytest.mark.parametrize("length", [16 * MIB, 2**20 + 1, 65536])
def test_a_header_claiming_a_large_payload_allocates_nothing_like_it(length: int) -> None:
    spare_buffers.clear()  # a kept buffer would be taken at once: memory held already
    server = Connection(Role.SERVER)
    events, _, peak = allocated_by(lambda: server.receive_data(claim(length)))
    assert events == []
    assert peak < 4096, f"a 14-byte header claiming {length} bytes cost {peak} bytes"
    # Nor does asking where to read the rest: no buffer of the frame's size yet.
    view, _, peak = allocated_by(server.receive_buffer)
    assert view is None
    assert peak < 4096, f"receive_buffer() after a header claiming {length} bytes cost {peak} bytes"


def test_a_large_frame_holds_at_most_four_times_what_arrived_and_arrives_whole() -> None:
    spare_buffers.clear()
    server = Connection(Role.SERVER)
    length = 16 * MIB
    payload = bytes(range(256)) * (length // 256)
    wire = memoryview(claim(length) + masked(payload))
    events: list[object] = []
    tracemalloc.start()
    try:
        baseline, _ = tracemalloc.get_traced_memory()
        for pos in range(0, len(wire), MIB):
            tracemalloc.reset_peak()
            events += server.receive_data(wire[pos : pos + MIB])
            arrived = min(pos + MIB, len(wire))
            if arrived < len(wire):
                # The frame's buffer only once a quarter of it arrived (and the quarter
                # itself while it is copied there): never the claimed 16 MiB for less.
                held, peak = tracemalloc.get_traced_memory()
                assert held - baseline <= 4 * arrived + 64 * 1024, (arrived, held - baseline)
                assert peak - baseline <= 5.5 * arrived + 64 * 1024, (arrived, peak - baseline)
    finally:
        tracemalloc.stop()
    assert events == [BinaryReceived(payload)]


def test_a_large_frame_read_into_the_receive_buffer_arrives_whole_with_views_no_longer_than_it_lacks() -> None:
    server = Connection(Role.SERVER)
    payload = b"abcdefghijklmnopqrstuvwxyz" * 200_000  # ASCII: valid text too
    wire = claim(len(payload), 0x81) + masked(payload)
    spare_buffers.clear()
    events = server.receive_data(wire[:70_000])
    pos = 70_000
    assert server.receive_buffer() is None  # not a quarter of the frame yet
    while pos < len(wire):
        view = server.receive_buffer()
        if view is None:
            events += server.receive_data(wire[pos : pos + 300_000])
            pos += 300_000
            continue
        assert pos * 4 >= len(wire)
        assert 0 < len(view) <= len(wire) - pos
        n = min(len(view), 300_000)
        view[:n] = wire[pos : pos + n]
        view.release()
        events += server.received_into(n)
        pos += n
    assert server.receive_buffer() is None
    assert events == [TextReceived(payload.decode())]


def test_receive_data_and_the_receive_buffer_can_take_turns_on_one_large_frame() -> None:
    server = Connection(Role.SERVER)
    payload = bytes(range(251)) * 9000
    wire = claim(len(payload)) + masked(payload)
    events = server.receive_data(wire[:20])
    pos, turn = 20, 0
    while pos < len(wire):
        view = server.receive_buffer()
        if turn % 2 and view is not None:
            n = min(len(view), 50_000)
            view[:n] = wire[pos : pos + n]
            events += server.received_into(n)
        else:
            # A view taken and not used: the data comes by receive_data instead.
            n = min(len(wire) - pos, 70_000)
            events += server.receive_data(wire[pos : pos + n])
        pos += n
        turn += 1
    assert events == [BinaryReceived(payload)]


def test_the_bytes_after_a_large_frame_are_read_as_the_next_frames() -> None:
    server = Connection(Role.SERVER)
    payload = b"\x07" * 100_000
    after = frames.build_frame(0x81, b"next", KEY) + frames.build_frame(0x89, b"p", KEY)
    wire = claim(len(payload)) + masked(payload) + after
    events: list[object] = []
    for piece in chunks(wire, 30_001):
        events += server.receive_data(piece)
    assert events[:2] == [BinaryReceived(payload), TextReceived("next")]
    assert len(events) == 3


@pytest.mark.parametrize("length", [2**40, 2**62, 2**63 - 32])
def test_without_a_size_limit_a_huge_claimed_length_waits_for_its_bytes(length: int) -> None:
    server = Connection(Role.SERVER, max_message_size=None)
    events, _, peak = allocated_by(lambda: server.receive_data(claim(length) + masked(b"some bytes")))
    assert events == []
    assert peak < 4096
    assert server.receive_data(masked(b"more", 10)) == []


def test_without_a_size_limit_a_frame_longer_than_any_buffer_fails_with_1009() -> None:
    # 2**63 - 1 payload bytes after a 14-byte header: more than a buffer can ever hold.
    server = Connection(Role.SERVER, max_message_size=None)
    events = server.receive_data(claim(2**63 - 1))
    assert len(events) == 1 and isinstance(events[0], ConnectionFailed)
    assert events[0].code == 1009


def test_a_frame_claiming_more_than_max_queued_bytes_fails_with_1009_at_its_header() -> None:
    server = Connection(Role.SERVER, max_queued_bytes=100_000)
    events = server.receive_data(claim(200_000))
    assert len(events) == 1 and isinstance(events[0], ConnectionFailed)
    assert events[0].code == 1009


def test_a_large_text_frame_with_bad_utf8_fails_as_its_bytes_arrive() -> None:
    server = Connection(Role.SERVER)
    payload = b"a" * 100_000 + b"\xff" + b"a" * 100_000
    wire = claim(len(payload), 0x81) + masked(payload)
    assert server.receive_data(wire[:90_000]) == []
    events = server.receive_data(wire[90_000:110_000])
    assert len(events) == 1 and isinstance(events[0], ConnectionFailed) and events[0].code == 1007


# -- 2. fragments cost their bytes ------------------------------------------------


def continuation(payload: bytes, fin: bool = False) -> bytes:
    return frames.build_frame(0x80 if fin else 0x00, payload, KEY)


@pytest.mark.parametrize("first_byte", [0x01, 0x02])
def test_a_flood_of_empty_continuation_frames_holds_no_memory(first_byte: int) -> None:
    server = Connection(Role.SERVER)
    assert server.receive_data(frames.build_frame(first_byte, b"ab", KEY)) == []
    flood = continuation(b"") * 10_000
    _, held, _ = allocated_by(
        lambda: [server.receive_data(flood) for _ in range(4)], lambda: server.receive_data(flood)
    )
    assert held < 4096, f"40,000 empty continuation frames left {held} bytes allocated"
    events = server.receive_data(continuation(b"cd", fin=True))
    assert events == [TextReceived("abcd") if first_byte == 0x01 else BinaryReceived(b"abcd")]


@pytest.mark.parametrize("first_byte", [0x01, 0x02])
def test_two_byte_fragments_hold_about_their_bytes(first_byte: int) -> None:
    server = Connection(Role.SERVER)
    count = 10_000
    wire = frames.build_frame(first_byte, b"xy", KEY) + continuation(b"xy") * (count - 1)
    other = Connection(Role.SERVER)
    _, held, _ = allocated_by(lambda: server.receive_data(wire), lambda: other.receive_data(wire))
    assert held < 2 * (2 * count), f"{2 * count} bytes in 2-byte fragments hold {held} bytes"
    events = server.receive_data(continuation(b"", fin=True))
    expected = b"xy" * count
    assert events == [TextReceived(expected.decode()) if first_byte == 0x01 else BinaryReceived(expected)]


def test_a_character_split_over_many_fragments_is_delivered_and_a_bad_one_fails_in_its_fragment() -> None:
    server = Connection(Role.SERVER)
    text = "héllo €𝄞 end"
    raw = text.encode()
    wire = frames.build_frame(0x01, raw[:1], KEY)
    wire += b"".join(continuation(raw[i : i + 1]) for i in range(1, len(raw)))
    assert server.receive_data(wire) == []
    assert server.receive_data(continuation(b"", fin=True)) == [TextReceived(text)]

    server = Connection(Role.SERVER)
    assert server.receive_data(frames.build_frame(0x01, b"ok \xe2", KEY)) == []
    assert server.receive_data(continuation(b"\x82")) == []
    events = server.receive_data(continuation(b"\x28"))  # not a continuation byte
    assert len(events) == 1 and isinstance(events[0], ConnectionFailed) and events[0].code == 1007


@pytest.mark.parametrize("bad", [b"\xed\xa0", b"\xf4\x90", b"\xc0"])
def test_a_fragment_ending_in_a_prefix_no_text_can_have_fails_in_that_fragment(bad: bytes) -> None:
    server = Connection(Role.SERVER)
    assert server.receive_data(frames.build_frame(0x01, b"ok", KEY)) == []
    events = server.receive_data(continuation(bad))
    assert len(events) == 1 and isinstance(events[0], ConnectionFailed) and events[0].code == 1007


def test_a_fragmented_text_ending_inside_a_character_fails_with_1007() -> None:
    server = Connection(Role.SERVER)
    assert server.receive_data(frames.build_frame(0x01, b"ok \xe2\x82", KEY)) == []
    events = server.receive_data(continuation(b"", fin=True))
    assert len(events) == 1 and isinstance(events[0], ConnectionFailed) and events[0].code == 1007


def test_a_control_frame_between_fragments_does_not_disturb_their_assembly() -> None:
    server = Connection(Role.SERVER)
    wire = frames.build_frame(0x02, b"a", KEY) + frames.build_frame(0x8A, b"p", KEY) + continuation(b"b", fin=True)
    events = server.receive_data(wire)
    assert events == [PongReceived(b"p", ()), BinaryReceived(b"ab")]


def _deflated_fragments(payload: bytes, pieces: int) -> bytes:
    client = Connection(Role.CLIENT, extensions=[PerMessageDeflate()])
    size = len(payload) // pieces
    parts = [payload[i * size : (i + 1) * size] for i in range(pieces - 1)] + [payload[(pieces - 1) * size :]]
    wire = client.send_binary(parts[0], fin=False)
    for i, part in enumerate(parts[1:], 2):
        wire += client.send_continuation(part, fin=i == pieces)
    return wire


def test_a_compressed_fragmented_message_counts_its_decompressed_bytes_against_the_limit() -> None:
    payload = b"\x00" * 300_000  # compresses to a few hundred bytes
    wire = _deflated_fragments(payload, 10)
    server = Connection(Role.SERVER, extensions=[PerMessageDeflate()], max_message_size=len(payload))
    assert server.receive_data(wire) == [BinaryReceived(payload)]
    server = Connection(Role.SERVER, extensions=[PerMessageDeflate()], max_message_size=len(payload) - 1)
    events = server.receive_data(wire)
    assert len(events) == 1 and isinstance(events[0], ConnectionFailed) and events[0].code == 1009


# -- 11. the start line of a response ------------------------------------------------


@pytest.mark.parametrize("reason", ["OK\r\nSet-Cookie: session=evil", "OK\nX: y", "OK\r", "\r\n"])
def test_respond_refuses_a_reason_phrase_that_would_inject_header_lines(reason: str) -> None:
    with pytest.raises(ValueError):
        ServerHandshake.respond(Response(200, reason, Headers(), b""))


@pytest.mark.parametrize("status", [0, 99, 600, 1000, -200])
def test_respond_and_reject_refuse_a_status_code_out_of_100_to_599(status: int) -> None:
    with pytest.raises(ValueError):
        ServerHandshake.respond(Response(status, "", Headers(), b""))
    if status:  # reject(0) is a 400: 0 is HandshakeError's "no status"
        with pytest.raises(ValueError):
            ServerHandshake.reject(status)


def test_a_bad_start_line_raises_the_error_a_bad_header_value_raises() -> None:
    with pytest.raises(ValueError) as header_error:
        serialize_response(200, [("X", "a\r\nb")])
    with pytest.raises(type(header_error.value)):
        serialize_response(200, [], reason="a\r\nb")


@pytest.mark.parametrize("status", [100, 101, 200, 404, 599])
def test_respond_accepts_every_status_code_from_100_to_599(status: int) -> None:
    raw = ServerHandshake.respond(Response(status, "Some Reason", Headers(), b""))
    assert raw.startswith(f"HTTP/1.1 {status} Some Reason\r\n".encode())


def test_a_large_frame_takes_a_kept_buffer_at_once_as_it_costs_no_new_memory() -> None:
    spare_buffers.clear()
    wire = claim(MIB) + masked(bytes(MIB))
    first = Connection(Role.SERVER)
    half = len(wire) // 2  # over a quarter: a buffer of its own, kept once the frame is in
    assert first.receive_data(wire[:half]) == []
    assert first.receive_data(wire[half:]) == [BinaryReceived(bytes(MIB))]
    second = Connection(Role.SERVER)
    assert second.receive_data(wire[:100]) == []
    view, _, peak = allocated_by(second.receive_buffer)
    assert view is not None and len(view) == len(wire) - 100
    assert peak < 4096
