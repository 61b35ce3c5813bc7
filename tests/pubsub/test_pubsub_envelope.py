"""The envelope on Redis (publisher id, sequence number, text or binary) and gap counting."""

from __future__ import annotations

import pytest

from ws4py.pubsub import Gap
from ws4py.pubsub.envelope import HEADER_SIZE, EnvelopeError, decode, encode
from ws4py.pubsub.gaps import GapTracker

PUBLISHER = bytes(range(16))


def test_envelope_round_trips_text_and_binary_with_publisher_and_sequence() -> None:
    text = decode(encode(PUBLISHER, 7, "héllo"))
    assert (text.publisher, text.seq, text.message) == (PUBLISHER, 7, "héllo")
    binary = decode(encode(PUBLISHER, 2**40, b"\x00\xff"))
    assert (binary.publisher, binary.seq, binary.message) == (PUBLISHER, 2**40, b"\x00\xff")
    assert len(encode(PUBLISHER, 1, b"")) == HEADER_SIZE


@pytest.mark.parametrize(
    "data",
    [b"", b"hello", b"xx" + encode(PUBLISHER, 1, "a")[2:], encode(PUBLISHER, 1, "a")[:2] + b"\x09" + b"\x00" * 30],
)
def test_envelope_rejects_bytes_that_are_not_one(data: bytes) -> None:
    with pytest.raises(EnvelopeError):
        decode(data)


def test_envelope_rejects_text_that_is_not_utf8() -> None:
    data = bytearray(encode(PUBLISHER, 1, "a"))
    data[HEADER_SIZE:] = b"\xff\xfe"
    with pytest.raises(EnvelopeError):
        decode(bytes(data))


def test_gap_tracker_counts_missed_numbers_per_channel_and_publisher() -> None:
    tracker = GapTracker()
    other = bytes(16)
    assert tracker.observe("a", PUBLISHER, 5) is None  # the first one seen: a baseline
    assert tracker.observe("a", PUBLISHER, 6) is None
    assert tracker.observe("a", PUBLISHER, 10) == Gap("a", PUBLISHER.hex(), 3)
    assert tracker.observe("b", PUBLISHER, 1) is None  # another channel: its own numbers
    assert tracker.observe("a", other, 1) is None  # another publisher too
    assert tracker.observe("a", PUBLISHER, 1) is None  # started over: a new baseline
    assert tracker.observe("a", PUBLISHER, 3) == Gap("a", PUBLISHER.hex(), 1)
    tracker.forget("a")
    assert tracker.observe("a", PUBLISHER, 9) is None


def test_gap_tracker_memory_is_bounded() -> None:
    tracker = GapTracker(max_tracked=3)
    for n in range(10):
        tracker.observe(f"c{n}", PUBLISHER, 1)
    assert tracker.observe("c0", PUBLISHER, 5) is None  # forgotten: a baseline again
    assert tracker.observe("c9", PUBLISHER, 3) == Gap("c9", PUBLISHER.hex(), 1)
