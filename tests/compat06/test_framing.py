"""ws4py.framing.Frame: 0.6's frame object over the core's codec, on both codecs.

Its bytes are the core's and RFC 6455's (section 5.7's examples), its parser
steps through a frame as 0.6's did (0.6's own ``Frame`` is the oracle), and the
frames it refuses are those the core refuses, with the core's close code and reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from compat06_support import DATA_64K, DATA_256, RFC_EXAMPLES, RFC_KEY, feed, fields
from hypothesis import given, settings
from hypothesis import strategies as st

from ws4py.exc import FrameTooLargeException, ProtocolException
from ws4py.framing import (
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_CONTINUATION,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
    Frame,
)
from ws4py.protocol import Connection, ConnectionFailed, Role, frame_fragments
from ws4py.protocol import frames as core_frames

pytestmark = pytest.mark.usefixtures("codec")


@pytest.mark.parametrize("name", RFC_EXAMPLES)
def test_build_gives_the_rfc_examples_bytes(name: str) -> None:
    (opcode, body, key, fin), wire = RFC_EXAMPLES[name]
    assert Frame(opcode=opcode, body=body, masking_key=key, fin=fin).build() == wire


def unmasked_core_frames() -> Iterator[tuple[str, bytes]]:
    """The RFC's unmasked examples as the core frames them (a server: no masking)."""
    server = Connection(Role.SERVER)
    yield "unmasked text", server.send_text("Hello")
    first, last = frame_fragments(server, ["Hel", "lo"])
    yield "first fragment", first
    yield "last fragment", last
    yield "unmasked ping", server.send_ping(b"Hello")
    yield "256 bytes binary", server.send_binary(DATA_256)
    yield "64 KiB binary", server.send_binary(DATA_64K)


def test_build_agrees_with_the_core_byte_for_byte() -> None:
    for name, core_frame in unmasked_core_frames():
        (opcode, body, key, fin), wire = RFC_EXAMPLES[name]
        assert Frame(opcode=opcode, body=body, masking_key=key, fin=fin).build() == core_frame == wire, name
    # A client's frames: the core picks the key; with that key Frame builds the same bytes.
    client = Connection(Role.CLIENT)
    for opcode, core_frame in ((OPCODE_TEXT, client.send_text("Hello")), (OPCODE_PONG, client.send_pong(b"Hello"))):
        key = core_frame[2:6]
        assert Frame(opcode=opcode, body=b"Hello", masking_key=key, fin=1).build() == core_frame


@pytest.mark.parametrize("name", RFC_EXAMPLES)
@pytest.mark.parametrize("mode", ["exact", "bytes", "whole"])
def test_parser_reads_the_rfc_examples_as_0_6_did(name: str, mode: str, reference_framing: ModuleType) -> None:
    (opcode, body, key, fin), wire = RFC_EXAMPLES[name]
    asked, frame = feed(Frame, wire, mode)
    assert (frame.opcode, frame.fin, frame.payload_length, frame.masking_key) == (opcode, fin, len(body), key)
    assert (frame.unmask(frame.body) if key else frame.body) == body
    their_asked, theirs = feed(reference_framing.Frame, wire, mode)
    assert (asked, fields(frame)) == (their_asked, fields(theirs))


def test_parser_asks_for_each_header_field_then_the_payload() -> None:
    # The masked text of RFC 6455 5.7: two header bytes, the key, the payload, then done.
    asked, _ = feed(Frame, RFC_EXAMPLES["masked text"][1], "exact")
    assert asked == [1, 1, 4, 5, None]
    asked, _ = feed(Frame, RFC_EXAMPLES["64 KiB binary"][1], "exact")
    assert asked == [1, 1, 8, 65536, None]


def test_parser_takes_no_bytes_of_the_next_frame() -> None:
    frame = Frame()
    assert frame.parser.send(RFC_EXAMPLES["unmasked text"][1] + RFC_EXAMPLES["unmasked ping"][1]) is None
    assert frame.body == b"Hello"
    with pytest.raises(StopIteration):
        next(frame.parser)


def test_parser_reads_a_str_by_its_ordinals_as_0_6_did() -> None:
    frame = Frame()
    assert frame.parser.send("\x81\x02hi") is None
    assert (frame.opcode, frame.body) == (OPCODE_TEXT, b"hi")


frame_specs = st.tuples(
    st.sampled_from([OPCODE_CONTINUATION, OPCODE_TEXT, OPCODE_BINARY, OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG]),
    st.integers(0, 1),
    st.one_of(st.none(), st.binary(min_size=4, max_size=4)),
    st.one_of(st.integers(0, 130), st.sampled_from([65535, 65536, 70000])),
)


@settings(max_examples=150, deadline=None)
@given(spec=frame_specs, mode=st.sampled_from(["exact", "bytes", "whole"]))
def test_parser_steps_and_fields_are_0_6_s(
    spec: tuple[int, int, bytes | None, int], mode: str, reference_framing: ModuleType
) -> None:
    opcode, fin, key, length = spec
    if opcode >= OPCODE_CLOSE:
        fin, length = 1, min(length, 125)  # a valid control frame (the invalid ones: the test below)
    if mode == "bytes":
        length = min(length, 300)
    wire = Frame(opcode=opcode, body=os.urandom(length), masking_key=key, fin=fin).build()
    ours_asked, ours = feed(Frame, wire, mode)
    their_asked, theirs = feed(reference_framing.Frame, wire, mode)
    assert ours_asked == their_asked
    assert fields(ours) == fields(theirs)


def parse_error(frame_class: Any, data: bytes) -> tuple[int, type[BaseException]] | None:
    """At which step (bytes sent so far) parsing ``data`` exactly as asked raises, and what; None if it does not."""
    frame = frame_class()
    need, pos = next(frame.parser), 0
    while need is not None and pos < len(data):
        try:
            need = frame.parser.send(data[pos : pos + need])
        except ProtocolException as exc:
            return pos, type(exc)
        pos += need if need else 0
    return None


@settings(max_examples=300, deadline=None)
@given(header=st.binary(min_size=10, max_size=10))
def test_parser_refuses_what_0_6_refused(header: bytes, reference_framing: ModuleType) -> None:
    # The header alone (8 bytes of length or key after two): no payload is needed to refuse one.
    ours = parse_error(Frame, header)
    theirs = parse_error(reference_framing.Frame, header)
    assert ours == theirs


@pytest.mark.parametrize(
    ("wire", "exception"),
    [
        (b"\xc1\x00", ProtocolException),  # RSV1
        (b"\xa1\x00", ProtocolException),  # RSV2
        (b"\x91\x00", ProtocolException),  # RSV3
        (b"\x83\x00", ProtocolException),  # reserved opcode
        (b"\x8b\x00", ProtocolException),  # reserved control opcode
        (b"\x09\x00", ProtocolException),  # fragmented ping
        (b"\x89\x7e\x00\x80", FrameTooLargeException),  # ping over 125 bytes
        (b"\x82\x7f\x80" + b"\x00" * 7, FrameTooLargeException),  # 64-bit length with its top bit set
    ],
)
def test_parser_refuses_with_the_cores_code_and_reason(wire: bytes, exception: type[ProtocolException]) -> None:
    frame = Frame()
    with pytest.raises(exception) as raised:
        frame.parser.send(wire)
    assert type(raised.value) is exception
    (failed,) = Connection(Role.CLIENT).receive_data(wire)
    assert isinstance(failed, ConnectionFailed)
    assert (raised.value.code, raised.value.reason) == (failed.code, failed.reason)


def test_build_refuses_what_0_6_refused() -> None:
    with pytest.raises(ValueError):
        Frame(opcode=OPCODE_TEXT, fin=2).build()
    with pytest.raises(ValueError):
        Frame(opcode=0x3, fin=1).build()
    with pytest.raises(ValueError):
        Frame(opcode=OPCODE_TEXT, fin=1, rsv1=2).build()
    frame = Frame(opcode=OPCODE_TEXT, fin=1)
    frame.payload_length = 1 << 63
    with pytest.raises(FrameTooLargeException):
        frame.build()
    with pytest.raises(TypeError):
        Frame(opcode=OPCODE_TEXT, body="text", fin=1)  # type: ignore[arg-type]


def test_build_sets_the_rsv_bits_it_is_given() -> None:
    assert Frame(opcode=OPCODE_TEXT, body=b"x", fin=1, rsv1=1).build() == b"\xc1\x01x"


def test_mask_is_the_codecs_and_its_own_inverse() -> None:
    frame = Frame(masking_key=RFC_KEY)
    masked = frame.mask(b"Hello")
    assert isinstance(masked, bytearray)
    assert masked == core_frames.apply_mask(b"Hello", RFC_KEY) == bytes.fromhex("7f9f4d5158")
    assert frame.unmask(masked) == b"Hello"


def test_parser_reads_chunks_that_cross_a_fields_end() -> None:
    # Two header bytes and half the key, then the rest of the key: 0.6 took two bytes
    # of the key into the payload here (docs/differences-from-0.6.md).
    wire = RFC_EXAMPLES["masked text"][1]
    frame = Frame()
    for chunk in (wire[0:4], wire[4:6], wire[6:]):
        frame.parser.send(chunk)
    assert (frame.masking_key, frame.unmask(frame.body)) == (RFC_KEY, b"Hello")


def test_opcodes_are_0_6_s_plain_ints() -> None:
    opcodes = (OPCODE_CONTINUATION, OPCODE_TEXT, OPCODE_BINARY, OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG)
    assert opcodes == (0x0, 0x1, 0x2, 0x8, 0x9, 0xA)
    assert all(type(opcode) is int for opcode in opcodes)


def test_cleanup_closes_the_parser_and_mask_needs_a_key() -> None:
    frame = Frame()
    assert frame.parser.send(b"") == 1  # nothing sent: still the first byte
    frame._cleanup()
    assert frame.parser.send(b"\x81") == 1  # a new parser: the second byte
    with pytest.raises(ValueError):
        Frame().mask(b"data")
