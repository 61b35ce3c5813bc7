"""ws4py.utf8validator.Utf8Validator: 0.6's validator over the core's UTF-8 check, on both codecs.

0.6's own DFA (kept from its sdist by the conftest) is the oracle: the same
verdicts, chunk by chunk and byte by byte, on any bytes.
"""

from __future__ import annotations

import itertools
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ws4py.utf8validator import Utf8Validator

pytestmark = pytest.mark.usefixtures("codec")

# Mostly UTF-8, cut anywhere, with stray bytes: valid texts, characters split between
# chunks, and every kind of invalid sequence (surrogates, overlongs, beyond U+10FFFF).
texts = st.lists(
    st.one_of(
        st.text(max_size=12).map(str.encode),
        st.binary(max_size=4),
        st.sampled_from([b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xef\xbf\xbf", b"\xf0\x9f\x98"]),
    ),
    max_size=6,
).map(b"".join)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(max_examples=120, deadline=None)
@given(data=texts, cuts=st.lists(st.integers(0, 100), max_size=4))
def test_validate_agrees_with_0_6_s_dfa(data: bytes, cuts: list[int], reference_utf8validator: ModuleType) -> None:
    ours, theirs = Utf8Validator(), reference_utf8validator.Utf8Validator()
    for chunk in chunked(data, cuts):
        valid, ends, index, _ = ours.validate(chunk)
        their_valid, their_ends, their_index, _ = theirs.validate(bytearray(chunk))
        assert (valid, ends) == (their_valid, their_ends)
        if not valid:
            assert index == their_index  # the octet that failed (0.6 counted valid chunks one short)
        assert (ours.state == ours.UTF8_ACCEPT, ours.state == ours.UTF8_REJECT) == (
            theirs.state == theirs.UTF8_ACCEPT,
            theirs.state == theirs.UTF8_REJECT,
        )


@settings(max_examples=80, deadline=None)
@given(data=texts)
def test_decode_agrees_with_0_6_s_dfa(data: bytes, reference_utf8validator: ModuleType) -> None:
    ours, theirs = Utf8Validator(), reference_utf8validator.Utf8Validator()
    for octet in data:
        if theirs.state == theirs.UTF8_REJECT:
            break  # 0.6's DFA has no transitions out of its reject state
        state, their_state = ours.decode(octet), theirs.decode(octet)
        assert (state == 0, state == 1) == (their_state == 0, their_state == 1)
        if state == ours.UTF8_ACCEPT:
            assert ours.codepoint == theirs.codepoint


def test_validate_indexes_follow_its_documentation() -> None:
    validator = Utf8Validator()
    assert validator.validate(b"h\xc3") == (True, False, 2, 2)
    assert validator.validate(b"\xa9t") == (True, True, 2, 4)
    assert validator.validate(bytearray(b"ab\xffc")) == (False, False, 2, 6)
    assert validator.state == Utf8Validator.UTF8_REJECT
    assert validator.validate(b"ok") == (False, False, 0, 6)  # rejected until reset
    validator.reset()
    assert validator.validate(memoryview(b"ok")) == (True, True, 2, 2)


def test_decode_gives_the_code_point() -> None:
    validator = Utf8Validator()
    states = [validator.decode(octet) for octet in "€".encode()]
    assert states[-1] == Utf8Validator.UTF8_ACCEPT and all(s > 1 for s in states[:-1])
    assert validator.codepoint == ord("€")
    assert validator.decode(0xFF) == Utf8Validator.UTF8_REJECT
