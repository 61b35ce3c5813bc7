"""The frame codec: ``parse_frames``, ``build_frame`` and ``apply_mask`` (RFC 6455 section 5).

Every function is looked up on ``ws4py.protocol.frames`` at call time, so the
autouse ``codec`` fixture runs each test against the C and the Python codec.
"""

from __future__ import annotations

import os
import random

import pytest

from ws4py.protocol import _frames_py, frames

MASK = bytes([0x37, 0xFA, 0x21, 0x3D])
UNLIMITED = 2**63 - 1
RESERVED_OPCODES = [*range(0x3, 0x8), *range(0xB, 0x10)]


def parse(buf, expect_mask=False, allowed_rsv=0, max_frame_size=UNLIMITED, pos=0):
    return frames.parse_frames(buf, pos, expect_mask, allowed_rsv, max_frame_size)


def naive_mask(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i % 4] for i, b in enumerate(data))


# -- RFC 6455 section 5.7 examples ----------------------------------------

HELLO_UNMASKED = bytes([0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
HELLO_MASKED = bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
HEL = bytes([0x01, 0x03, 0x48, 0x65, 0x6C])
LO = bytes([0x80, 0x02, 0x6C, 0x6F])
PING_HELLO = bytes([0x89, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])
PONG_HELLO_MASKED = bytes([0x8A, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])


def test_rfc_example_single_frame_unmasked_text() -> None:
    assert parse(HELLO_UNMASKED) == ([(0x81, b"Hello")], 7, None)
    assert frames.build_frame(0x81, b"Hello", None) == HELLO_UNMASKED


def test_rfc_example_single_frame_masked_text() -> None:
    assert parse(HELLO_MASKED, expect_mask=True) == ([(0x81, b"Hello")], 11, None)
    assert frames.build_frame(0x81, b"Hello", MASK) == HELLO_MASKED


def test_rfc_example_fragmented_unmasked_text() -> None:
    assert parse(HEL + LO) == ([(0x01, b"Hel"), (0x80, b"lo")], 9, None)
    assert frames.build_frame(0x01, b"Hel", None) == HEL
    assert frames.build_frame(0x80, b"lo", None) == LO


def test_rfc_example_unmasked_ping() -> None:
    assert parse(PING_HELLO) == ([(0x89, b"Hello")], 7, None)
    assert frames.build_frame(0x89, b"Hello", None) == PING_HELLO


def test_rfc_example_masked_pong() -> None:
    assert parse(PONG_HELLO_MASKED, expect_mask=True) == ([(0x8A, b"Hello")], 11, None)
    assert frames.build_frame(0x8A, b"Hello", MASK) == PONG_HELLO_MASKED


def test_rfc_example_256_byte_binary_uses_16_bit_length() -> None:
    payload = bytes(range(256))
    wire = bytes([0x82, 0x7E, 0x01, 0x00]) + payload
    assert frames.build_frame(0x82, payload, None) == wire
    assert parse(wire) == ([(0x82, payload)], 260, None)


def test_rfc_example_64_kib_binary_uses_64_bit_length() -> None:
    payload = os.urandom(65536)
    wire = bytes([0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]) + payload
    assert frames.build_frame(0x82, payload, None) == wire
    assert parse(wire) == ([(0x82, payload)], 65546, None)


# -- payload length encodings (section 5.2) ---------------------------------


@pytest.mark.parametrize(
    ("length", "header"),
    [
        (0, b"\x82\x00"),
        (125, b"\x82\x7d"),
        (126, b"\x82\x7e\x00\x7e"),
        (65535, b"\x82\x7e\xff\xff"),
        (65536, b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00"),
    ],
)
def test_length_encoding_boundaries(length: int, header: bytes) -> None:
    payload = bytes([length & 0xFF]) * length
    wire = frames.build_frame(0x82, payload, None)
    assert wire == header + payload
    assert parse(wire) == ([(0x82, payload)], len(wire), None)
    masked = frames.build_frame(0x82, payload, MASK)
    assert masked[0] == 0x82
    assert masked[1] == header[1] | 0x80
    assert masked[2 : len(header)] == header[2:]
    assert masked[len(header) : len(header) + 4] == MASK
    assert parse(masked, expect_mask=True) == ([(0x82, payload)], len(masked), None)


def test_non_minimal_16_bit_length_is_read_as_given() -> None:
    # A 16-bit length field is read as is, even for a small payload.
    wire = b"\x82\x7e\x00\x03abc"
    assert parse(wire) == ([(0x82, b"abc")], 7, None)


# -- framing errors -------------------------------------------------------


@pytest.mark.parametrize("opcode", RESERVED_OPCODES)
def test_every_reserved_opcode_fails_with_1002(opcode: int) -> None:
    for fin in (0x80, 0x00):
        result_frames, pos, error = parse(bytes([fin | opcode, 0x00]))
        assert (result_frames, pos) == ([], 0)
        assert error is not None
        assert error[0] == 1002


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10, 0x70])
def test_rsv_bits_without_allowed_rsv_fail_with_1002(rsv: int) -> None:
    result_frames, pos, error = parse(bytes([0x81 | rsv, 0x00]))
    assert (result_frames, pos) == ([], 0)
    assert error is not None
    assert error[0] == 1002


def test_rsv1_is_allowed_when_allowed_rsv_is_0x40() -> None:
    assert parse(b"\xc1\x02hi", allowed_rsv=0x40) == ([(0xC1, b"hi")], 4, None)


@pytest.mark.parametrize("rsv", [0x20, 0x10])
def test_rsv2_and_rsv3_still_fail_when_only_rsv1_is_allowed(rsv: int) -> None:
    _, _, error = parse(bytes([0x81 | rsv, 0x00]), allowed_rsv=0x40)
    assert error is not None
    assert error[0] == 1002


@pytest.mark.parametrize("opcode", [0x8, 0x9, 0xA])
def test_control_frame_over_125_bytes_fails_with_1002(opcode: int) -> None:
    for wire in (
        bytes([0x80 | opcode, 0x7E, 0x00, 0x7E]) + b"x" * 126,
        bytes([0x80 | opcode, 0x7F, 0, 0, 0, 0, 0, 0, 0x01, 0x00]) + b"x" * 256,
    ):
        result_frames, pos, error = parse(wire)
        assert (result_frames, pos) == ([], 0)
        assert error is not None
        assert error[0] == 1002


@pytest.mark.parametrize("opcode", [0x8, 0x9, 0xA])
def test_control_frame_of_125_bytes_is_accepted(opcode: int) -> None:
    wire = bytes([0x80 | opcode, 0x7D]) + b"x" * 125
    assert parse(wire) == ([(0x80 | opcode, b"x" * 125)], 127, None)


@pytest.mark.parametrize("opcode", [0x8, 0x9, 0xA])
def test_fragmented_control_frame_fails_with_1002(opcode: int) -> None:
    result_frames, pos, error = parse(bytes([opcode, 0x00]))
    assert (result_frames, pos) == ([], 0)
    assert error is not None
    assert error[0] == 1002


def test_server_side_parse_fails_unmasked_frame_with_1002() -> None:
    result_frames, pos, error = parse(HELLO_UNMASKED, expect_mask=True)
    assert (result_frames, pos) == ([], 0)
    assert error is not None
    assert error[0] == 1002


def test_client_side_parse_fails_masked_frame_with_1002() -> None:
    result_frames, pos, error = parse(HELLO_MASKED, expect_mask=False)
    assert (result_frames, pos) == ([], 0)
    assert error is not None
    assert error[0] == 1002


@pytest.mark.parametrize("max_frame_size", [2**20, UNLIMITED])
def test_64_bit_length_with_most_significant_bit_set_fails_with_1002(max_frame_size: int) -> None:
    wire = b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x05hello"
    result_frames, pos, error = parse(wire, max_frame_size=max_frame_size)
    assert (result_frames, pos) == ([], 0)
    assert error is not None
    assert error[0] == 1002


@pytest.mark.parametrize("expect_mask", [False, True])
def test_header_claiming_2_63_minus_1_bytes_fails_with_1009_from_10_bytes(expect_mask: bool) -> None:
    b1 = 0xFF if expect_mask else 0x7F
    header = bytes([0x82, b1]) + (2**63 - 1).to_bytes(8, "big")
    assert len(header) == 10
    result_frames, pos, error = parse(header, expect_mask=expect_mask, max_frame_size=2**20)
    assert (result_frames, pos) == ([], 0)
    assert error is not None
    assert error[0] == 1009


def test_16_bit_length_over_max_frame_size_fails_with_1009_from_4_bytes() -> None:
    result_frames, pos, error = parse(b"\x82\x7e\x01\x00", max_frame_size=255)
    assert (result_frames, pos) == ([], 0)
    assert error is not None
    assert error[0] == 1009


def test_frame_of_exactly_max_frame_size_is_accepted() -> None:
    wire = frames.build_frame(0x82, b"x" * 255, None)
    assert parse(wire, max_frame_size=255) == ([(0x82, b"x" * 255)], len(wire), None)
    _, _, error = parse(frames.build_frame(0x82, b"x" * 256, None), max_frame_size=255)
    assert error is not None
    assert error[0] == 1009


def test_frames_before_a_bad_frame_are_still_returned() -> None:
    good = HEL + PING_HELLO + LO
    result_frames, pos, error = parse(good + b"\x83\x00" + HELLO_UNMASKED)
    assert result_frames == [(0x01, b"Hel"), (0x89, b"Hello"), (0x80, b"lo")]
    assert pos == len(good)
    assert error is not None
    assert error[0] == 1002


@pytest.mark.parametrize("length", [0, 5, 125, 126, 300, 65535, 65536])
@pytest.mark.parametrize("masked", [False, True])
def test_incomplete_frame_returns_pos_at_its_start(length: int, masked: bool) -> None:
    first = frames.build_frame(0x81, b"first", MASK if masked else None)
    frame = frames.build_frame(0x82, b"\xab" * length, MASK if masked else None)
    cuts = set(range(min(len(frame), 20))) | {len(frame) - 1}
    for cut in sorted(cuts):
        assert parse(first + frame[:cut], expect_mask=masked) == ([(0x81, b"first")], len(first), None)
    assert parse(first + frame, expect_mask=masked) == (
        [(0x81, b"first"), (0x82, b"\xab" * length)],
        len(first) + len(frame),
        None,
    )


def test_parse_starts_at_pos() -> None:
    buf = b"junk" + HELLO_UNMASKED
    assert parse(buf, pos=4) == ([(0x81, b"Hello")], len(buf), None)


@pytest.mark.parametrize("pos", [-1, len(HELLO_UNMASKED) + 1])
def test_parse_refuses_a_pos_outside_the_buffer(pos: int) -> None:
    with pytest.raises(ValueError, match="pos out of range"):
        parse(HELLO_UNMASKED, pos=pos)


def test_parse_accepts_bytearray_and_memoryview() -> None:
    wire = HEL + LO
    expected = ([(0x01, b"Hel"), (0x80, b"lo")], 9, None)
    assert parse(bytearray(wire)) == expected
    assert parse(memoryview(wire)) == expected
    assert parse(memoryview(bytearray(b"x" + HELLO_MASKED))[1:], expect_mask=True) == (
        [(0x81, b"Hello")],
        11,
        None,
    )


def test_empty_and_one_byte_buffers_return_nothing() -> None:
    assert parse(b"") == ([], 0, None)
    assert parse(b"\x81") == ([], 0, None)


def test_masked_empty_payload() -> None:
    wire = frames.build_frame(0x89, b"", MASK)
    assert wire == b"\x89\x80" + MASK
    assert parse(wire, expect_mask=True) == ([(0x89, b"")], 6, None)


# -- masking (section 5.3) -------------------------------------------------


# -- ascii_text_as_str: a whole ASCII text frame comes as str ---------------------

ASCII_SIZES = [0, 1, 7, 8, 15, 16, 17, 63, 64, 65, 127, 1000, 70_000]


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("size", ASCII_SIZES)
def test_ascii_text_as_str_gives_a_whole_ascii_text_frame_as_str(masked: bool, size: int) -> None:
    text = bytes(0x20 + i % 95 for i in range(size))
    wire = frames.build_frame(0x81, text, MASK if masked else None)
    assert frames.parse_frames(wire, 0, masked, 0, UNLIMITED, True) == ([(0x81, text.decode())], len(wire), None)
    assert frames.parse_frames(wire, 0, masked, 0, UNLIMITED) == ([(0x81, text)], len(wire), None)


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("size", [n for n in ASCII_SIZES if n > 1])
def test_ascii_text_as_str_leaves_a_text_with_any_byte_over_127_as_bytes(masked: bool, size: int) -> None:
    # One non-ASCII character, wherever it falls (a 64-byte block, a 16-byte one, a word, the tail), is seen.
    for where in {0, size // 2, size - 2, max(0, size - 9)}:
        for char in ("é", "\u07ff"):  # two bytes each: C3 A9, DF BF
            payload = bytearray(b"a" * size)
            payload[where : where + 2] = char.encode()
            wire = frames.build_frame(0x81, bytes(payload), MASK if masked else None)
            for as_str in (False, True):
                parsed = frames.parse_frames(wire, 0, masked, 0, UNLIMITED, as_str)
                assert parsed == ([(0x81, bytes(payload))], len(wire), None), (where, char)


# -- a whole text frame's UTF-8 is checked as it is unmasked ---------------------


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("size", [n for n in ASCII_SIZES if n])
def test_parse_frames_fails_a_whole_text_frame_that_is_not_utf8_with_1007_wherever_the_bad_byte_falls(
    masked: bool, size: int
) -> None:
    before = frames.build_frame(0x82, b"kept", MASK if masked else None)
    for where in {0, size // 2, size - 1, max(0, size - 9)}:
        for high in (0x80, 0xC3, 0xFF):  # a lone continuation, a truncated sequence, never UTF-8
            payload = bytearray(b"a" * size)
            payload[where] = high
            wire = before + frames.build_frame(0x81, bytes(payload), MASK if masked else None)
            for as_str in (False, True):
                parsed = frames.parse_frames(wire, 0, masked, 0, UNLIMITED, as_str)
                invalid = (1007, "invalid UTF-8 in a text message")
                assert parsed == ([(0x82, b"kept")], len(before), invalid), (where, high)


@pytest.mark.parametrize("b0", [0x01, 0x80, 0x82, 0xC1])
def test_parse_frames_leaves_the_utf8_of_other_data_frames_to_its_caller(b0: int) -> None:
    # A first fragment, a continuation, binary, a compressed text: not a whole uncompressed text.
    wire = frames.build_frame(b0, b"\xff\xfe", MASK)
    assert frames.parse_frames(wire, 0, True, 0x40, UNLIMITED) == ([(b0, b"\xff\xfe")], len(wire), None)


def test_build_frame_frames_a_str_as_its_utf8() -> None:
    for text in ("", "ascii", "a" * 70_000, "κόσμε", "ü" * 40_000):
        for key in (None, MASK):
            assert frames.build_frame(0x81, text, key) == frames.build_frame(0x81, text.encode(), key)


def test_utf8_view_is_the_utf8_of_a_str() -> None:
    for text in ("", "ascii", "a" * 70_000, "κόσμε"):
        assert bytes(frames.utf8_view(text)) == text.encode()
    with pytest.raises(TypeError):
        frames.utf8_view(b"bytes")  # type: ignore[arg-type]


def test_the_c_utf8_view_of_an_ascii_str_is_a_read_only_view_of_its_data_that_keeps_it_alive() -> None:
    speedups = pytest.importorskip("ws4py._speedups")
    view = speedups.utf8_view("".join(["abc"] * 30_000))  # a str only the view holds
    assert isinstance(view, memoryview) and view.readonly
    assert bytes(view) == b"abc" * 30_000
    assert isinstance(speedups.utf8_view("κόσμε"), bytes)  # not ASCII: encoded


@pytest.mark.parametrize("b0", [0x01, 0x80, 0x82, 0xC1, 0x89])
def test_ascii_text_as_str_leaves_other_frames_as_bytes(b0: int) -> None:
    # A first fragment, a continuation, binary, a compressed text, a ping: not a whole text.
    wire = frames.build_frame(b0, b"abc", MASK)
    assert frames.parse_frames(wire, 0, True, 0x40, UNLIMITED, True) == ([(b0, b"abc")], len(wire), None)


def test_apply_mask_matches_naive_xor_for_lengths_0_to_70() -> None:
    rng = random.Random(6455)
    for n in range(71):
        data = bytes(rng.randrange(256) for _ in range(n))
        key = bytes(rng.randrange(256) for _ in range(4))
        assert frames.apply_mask(data, key) == naive_mask(data, key), n


@pytest.mark.parametrize("n", [2044, 2047, 2048, 2049, 2050, 2051, 65536, 70001])
def test_apply_mask_matches_naive_xor_on_large_payloads_of_any_length_mod_4(n: int) -> None:
    # The pure-Python codec switches strategy at 2 KiB; both sides of the switch must agree.
    rng = random.Random(n)
    data = rng.randbytes(n)
    key = rng.randbytes(4)
    assert frames.apply_mask(data, key) == naive_mask(data, key)
    assert frames.apply_mask(memoryview(bytearray(b"?" + data))[1:], key) == naive_mask(data, key)


def test_apply_mask_is_an_involution() -> None:
    rng = random.Random(7692)
    for n in (0, 1, 3, 4, 7, 8, 15, 16, 17, 63, 64, 65, 1000, 4099):
        data = bytes(rng.randrange(256) for _ in range(n))
        key = bytes(rng.randrange(256) for _ in range(4))
        assert frames.apply_mask(frames.apply_mask(data, key), key) == data


def test_apply_mask_on_misaligned_memoryview() -> None:
    rng = random.Random(1)
    key = bytes([0x01, 0x23, 0x45, 0x67])
    for offset in range(1, 8):
        for n in range(0, 71):
            raw = bytearray(rng.randrange(256) for _ in range(offset + n))
            view = memoryview(raw)[offset:]
            assert frames.apply_mask(view, key) == naive_mask(bytes(view), key), (offset, n)


def test_apply_mask_returns_bytes() -> None:
    assert type(frames.apply_mask(bytearray(b"abcdefgh"), MASK)) is bytes
    assert frames.apply_mask(b"", MASK) == b""


@pytest.mark.parametrize("key", [b"", b"abc", b"abcde"])
def test_apply_mask_rejects_keys_that_are_not_4_bytes(key: bytes) -> None:
    with pytest.raises(ValueError):
        frames.apply_mask(b"data", key)


@pytest.mark.parametrize("length", [0, 1, 5, 125, 126, 1000, 65535, 65536, 70001])
def test_build_frame_with_mask_key_produces_a_parseable_masked_frame(length: int) -> None:
    payload = os.urandom(length)
    key = os.urandom(4)
    wire = frames.build_frame(0x82, payload, key)
    assert wire[1] & 0x80
    header = 2 if length < 126 else 4 if length < 65536 else 10
    assert wire[header : header + 4] == key
    if length < 2000:
        assert wire[header + 4 :] == naive_mask(payload, key)
    assert parse(wire, expect_mask=True) == ([(0x82, payload)], len(wire), None)
    assert parse(wire, expect_mask=False)[2] is not None


def test_build_frame_accepts_memoryview_payload() -> None:
    payload = memoryview(b"xHello")[1:]
    assert frames.build_frame(0x81, payload, None) == HELLO_UNMASKED
    assert frames.build_frame(0x81, payload, MASK) == HELLO_MASKED


# -- the C codec and the Python codec are twins ---------------------------


def _agreement_cases() -> list[tuple[bytes, int, bool, int, int]]:
    rng = random.Random(20)
    cases: list[tuple[bytes, int, bool, int, int]] = []
    bufs = [
        b"",
        b"\x81",
        HELLO_UNMASKED,
        HELLO_MASKED,
        HEL + LO,
        HEL + PING_HELLO + LO,
        PONG_HELLO_MASKED,
        b"\x82\x7e\x01\x00" + bytes(256),
        b"\x82\x7e\x01",
        b"\x82\x7f\x00\x00\x00\x00\x00\x01\x00\x00" + bytes(65536),
        b"\x82\x7f\x80\x00\x00\x00\x00\x00\x00\x05hello",
        b"\x82\x7f" + (2**63 - 1).to_bytes(8, "big"),
        b"\x82\xff" + (2**63 - 1).to_bytes(8, "big"),
        b"\x89\x7e\x00\x7e" + b"x" * 126,
        b"\x09\x00",
        b"\xc1\x02hi",
        b"\xa1\x00",
        b"\x91\x00",
        b"\x81\x05Hel",
        HELLO_UNMASKED + b"\x83\x00",
    ]
    bufs += [bytes([0x80 | op, 0x00]) for op in range(16)]
    bufs += [bytes(rng.randrange(256) for _ in range(rng.randrange(40))) for _ in range(300)]
    for buf in bufs:
        for expect_mask in (False, True):
            for allowed_rsv in (0, 0x40, 0x70):
                for max_frame_size in (0, 3, 125, 255, 2**20, UNLIMITED):
                    cases.append((buf, 0, expect_mask, allowed_rsv, max_frame_size))
        if len(buf) > 1:
            cases.append((buf, 1, False, 0, UNLIMITED))
            cases.append((buf, len(buf), True, 0, UNLIMITED))
    return cases


def test_c_and_python_codecs_agree_on_parse_build_and_mask() -> None:
    speedups = pytest.importorskip("ws4py._speedups")
    for case in _agreement_cases():
        buf = case[0]
        for source in (buf, bytearray(buf), memoryview(buf)):
            for ascii_text_as_str in (False, True):
                args = (source, *case[1:], ascii_text_as_str)
                assert speedups.parse_frames(*args) == _frames_py.parse_frames(*args), case
    rng = random.Random(3)
    for n in [*range(70), 125, 126, 127, 65535, 65536, 65537]:
        payload = bytes(rng.randrange(256) for _ in range(n)) if n < 200 else os.urandom(n)
        key = bytes(rng.randrange(256) for _ in range(4))
        b0 = rng.randrange(256)
        assert speedups.apply_mask(payload, key) == _frames_py.apply_mask(payload, key)
        assert speedups.build_frame(b0, payload, key) == _frames_py.build_frame(b0, payload, key)
        assert speedups.build_frame(b0, payload, None) == _frames_py.build_frame(b0, payload, None)
