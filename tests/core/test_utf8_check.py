"""``utf8_check``: UTF-8 validation without decoding, chunk by chunk, masked or not; the C and Python twins agree."""

from __future__ import annotations

import codecs
import os
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ws4py.protocol import _frames_py, frames

IMPLEMENTATIONS: list[ModuleType] = [_frames_py]
try:
    from ws4py import _speedups

    IMPLEMENTATIONS.append(_speedups)  # type: ignore[arg-type]
except ImportError:  # pragma: no cover - the C module is required by scripts/test
    pass

impls = pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=lambda m: m.__name__.rsplit(".", 1)[-1])


def _viable(prefix: bytes) -> bool:
    """Whether some valid UTF-8 text starts with ``prefix`` (the reference)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(prefix, False)
    except UnicodeDecodeError:
        return False
    rest: bytes = decoder.getstate()[0]
    return not (len(rest) >= 2 and rest[0] == 0xED and rest[1] >= 0xA0)


def _mask(data: bytes, key: bytes) -> bytes:
    return bytes(b ^ key[i & 3] for i, b in enumerate(data))


@impls
@pytest.mark.parametrize("text", ["", "ascii only", "é", "€ and 𝄞", "x" * 100 + "ü" * 50 + "𝄞" * 30])
def test_valid_text_split_anywhere_ends_in_state_zero(impl: ModuleType, text: str) -> None:
    data = text.encode()
    for cut in range(len(data) + 1):
        state = impl.utf8_check(data[:cut], 0)
        assert state >= 0
        assert impl.utf8_check(data[cut:], state) == 0


@impls
def test_a_state_in_the_middle_of_a_character_is_not_zero(impl: ModuleType) -> None:
    assert impl.utf8_check("€".encode()[:2], 0) == (2 << 24) | (0xE2 << 16) | (0x82 << 8)
    assert impl.utf8_check(b"\xf0", 0) == (1 << 24) | (0xF0 << 16)


@impls
@pytest.mark.parametrize(
    "bad",
    [b"\xc0\x80", b"\xc1", b"\xf5", b"\xff", b"\xe0\x80", b"\xed\xa0", b"\xf0\x80", b"\xf4\x90", b"\x80", b"a\xc3a"],
)
def test_an_invalid_prefix_fails_at_once(impl: ModuleType, bad: bytes) -> None:
    assert impl.utf8_check(bad, 0) == -1


@impls
def test_masked_input_is_validated_as_its_unmasked_bytes_at_any_phase(impl: ModuleType) -> None:
    data = ("abc€𝄞" * 20).encode()
    key = os.urandom(4)
    masked = _mask(data, key)
    for cut in range(len(data)):
        state = impl.utf8_check(masked[:cut], 0, key, 0)
        assert impl.utf8_check(masked[cut:], state, key, cut & 3) == 0
    bad = _mask(b"abcd\xed\xa0\x80", key)
    assert impl.utf8_check(bad, 0, key, 0) == -1


@impls
def test_a_bad_state_or_key_is_refused(impl: ModuleType) -> None:
    with pytest.raises(ValueError):
        impl.utf8_check(b"", 4 << 24)
    with pytest.raises(ValueError):
        impl.utf8_check(b"", 0, b"abc")


@given(st.binary(max_size=64), st.integers(min_value=0, max_value=64), st.binary(min_size=4, max_size=4))
def test_the_twins_agree_with_each_other_and_with_the_reference(data: bytes, cut: int, key: bytes) -> None:
    cut = min(cut, len(data))
    expected_first = 0 if _viable(data[:cut]) else -1
    for impl in IMPLEMENTATIONS:
        first = impl.utf8_check(data[:cut], 0)
        assert (first >= 0) == (expected_first == 0)
        assert impl.utf8_check(_mask(data[:cut], key), 0, key, 0) == first
        if first >= 0:
            whole = impl.utf8_check(data[cut:], first)
            assert (whole >= 0) == _viable(data)
            assert impl.utf8_check(_mask(data, key)[cut:], first, key, cut & 3) == whole
    results = {impl.utf8_check(data, 0) for impl in IMPLEMENTATIONS}
    assert len(results) == 1


def test_the_frames_module_exports_the_selected_implementation() -> None:
    assert frames.utf8_check in {impl.utf8_check for impl in IMPLEMENTATIONS}


@pytest.mark.parametrize("codec", frames.available_implementations())
def test_a_large_text_message_is_validated_without_being_decoded_until_read(codec: str) -> None:
    from ws4py.protocol import Connection, Role, TextReceived

    previous = frames.implementation
    frames.use(codec)
    try:
        client, server = Connection(Role.CLIENT), Connection(Role.SERVER)
        text = "é€" * 40_000
        wire = client.send_text(text)
        events = []
        for start in range(0, len(wire), 65_536):  # as it arrives: the start is checked early
            events += server.receive_data(wire[start : start + 65_536])
        [event] = events
        assert isinstance(event, TextReceived)
        assert event.decoded is None and event.raw == text.encode()
        assert event.data == text
        bad = client.send_text(text.encode()[:-1] + b"\xff")  # bytes are sent as they are
        [failed] = server.receive_data(bad)
        assert failed.code == 1007  # type: ignore[attr-defined]
    finally:
        frames.use(previous)
