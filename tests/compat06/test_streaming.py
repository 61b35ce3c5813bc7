"""ws4py.streaming.Stream: 0.6's stream over the protocol core, on both codecs.

What a stream reports for any bytes, in any chunks, is what the core reports
for them (the core is the one implementation of the protocol); RFC 6455
section 5.7's examples give the messages they carry; the parser asks for the
bytes of each frame as 0.6's did.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

import pytest
from compat06_support import RFC_EXAMPLES, RFC_KEY, feed
from hypothesis import given, settings
from hypothesis import strategies as st

from ws4py.framing import OPCODE_BINARY, OPCODE_CLOSE, OPCODE_CONTINUATION, OPCODE_PING, OPCODE_PONG, OPCODE_TEXT, Frame
from ws4py.messaging import BinaryMessage, CloseControlMessage, TextMessage
from ws4py.protocol import (
    BinaryReceived,
    CloseReceived,
    Connection,
    ConnectionFailed,
    PingReceived,
    PongReceived,
    Role,
    TextReceived,
)
from ws4py.protocol import frames as core_frames
from ws4py.streaming import VALID_CLOSING_CODES, Stream

pytestmark = pytest.mark.usefixtures("codec")


def frame(opcode: int, payload: bytes, fin: bool = True, key: bytes | None = None, rsv: int = 0) -> bytes:
    return core_frames.build_frame((0x80 if fin else 0) | rsv | opcode, payload, key)


def masked(opcode: int, payload: bytes, fin: bool = True, rsv: int = 0) -> bytes:
    return frame(opcode, payload, fin, os.urandom(4), rsv)


def report(stream: Stream) -> dict[str, Any]:
    """What a stream shows, in the terms of the core's events."""
    return {
        "messages": [m.data for m in stream.messages],
        "pings": [p.data for p in stream.pings],
        "pongs": [p.data for p in stream.pongs],
        "closing": None if stream.closing is None else (stream.closing.code, str(stream.closing)),
        "errors": [(e.code, str(e)) for e in stream.errors],
    }


def core_report(events: list[Any]) -> dict[str, Any]:
    """What the core's events say, in the terms of :func:`report`."""
    out: dict[str, Any] = {"messages": [], "pings": [], "pongs": [], "closing": None, "errors": []}
    for event in events:
        if isinstance(event, TextReceived):
            out["messages"].append(event.data.encode())
        elif isinstance(event, BinaryReceived):
            out["messages"].append(event.data)
        elif isinstance(event, PingReceived):
            out["pings"].append(event.payload)
        elif isinstance(event, PongReceived):
            out["pongs"].append(event.payload)
        elif isinstance(event, CloseReceived):
            out["closing"] = (event.code, event.reason)
        elif isinstance(event, ConnectionFailed):
            out["errors"].append((event.code, event.reason))
    return out


def run(stream: Stream, chunks: list[bytes]) -> dict[str, Any]:
    """Feed ``chunks``; the stream's report over all of them (``messages`` lists only the last send's)."""
    messages: list[bytes] = []
    for chunk in chunks:
        stream.parser.send(chunk)
        messages += [m.data for m in stream.messages]
    return {**report(stream), "messages": messages}


def test_the_rfc_examples_read_by_a_client_stream() -> None:
    stream = Stream(expect_masking=False)
    stream.parser.send(RFC_EXAMPLES["unmasked text"][1])
    assert stream.has_message and str(stream.message) == "Hello" and stream.message.is_text
    stream.parser.send(RFC_EXAMPLES["first fragment"][1])
    assert not stream.has_message
    assert stream.message is not None and stream.message.opcode == OPCODE_TEXT and not stream.message.completed
    stream.parser.send(RFC_EXAMPLES["last fragment"][1])
    assert stream.has_message and str(stream.message) == "Hello"
    stream.parser.send(RFC_EXAMPLES["unmasked ping"][1])
    assert [p.data for p in stream.pings] == [b"Hello"]
    for name in ("256 bytes binary", "64 KiB binary"):
        (_, body, _, _), wire = RFC_EXAMPLES[name]
        stream.parser.send(wire)
        assert isinstance(stream.message, BinaryMessage) and stream.message.data == body
    assert stream.errors == []


def test_the_rfc_masked_examples_read_by_a_server_stream() -> None:
    stream = Stream()
    stream.parser.send(RFC_EXAMPLES["masked text"][1])
    assert isinstance(stream.message, TextMessage) and stream.message.data == b"Hello"
    stream.parser.send(RFC_EXAMPLES["masked pong"][1])
    assert [p.data for p in stream.pongs] == [b"Hello"]
    # And the unmasked ones are a client's fault: the core fails them with 1002.
    stream = Stream()
    stream.parser.send(RFC_EXAMPLES["unmasked text"][1])
    assert (stream.message, [e.code for e in stream.errors]) == (None, [1002])


@pytest.mark.parametrize("name", ["masked text", "masked pong"])
def test_parser_asks_for_what_the_frame_needs_as_0_6_did(name: str) -> None:
    wire = RFC_EXAMPLES[name][1]
    stream = Stream()
    asked = [next(stream.parser)]
    pos = 0
    while pos < len(wire):
        asked.append(stream.parser.send(wire[pos : pos + asked[-1]]))
        pos += asked[-2]
    # The frame's own steps, then 1: the first byte of the next frame.
    assert asked == [*feed(Frame, wire, "exact")[0][:-1], 1]


def test_one_send_of_several_messages_loses_none() -> None:
    stream = Stream()
    assert stream.parser.send(b"") == 1 and stream.message is None  # nothing sent, nothing changes
    stream.parser.send(masked(OPCODE_TEXT, b"one") + masked(OPCODE_BINARY, b"two") + masked(OPCODE_TEXT, b"thr"))
    assert [m.data for m in stream.messages] == [b"one", b"two", b"thr"]
    assert stream.message is stream.messages[-1]
    stream.parser.send(masked(OPCODE_PING, b""))
    assert stream.messages == [] and stream.message is not None and stream.message.data == b"thr"
    # A whole message, then the first fragment of the next: the latest is the one arriving.
    stream.parser.send(masked(OPCODE_TEXT, b"four") + masked(OPCODE_BINARY, b"fi", fin=False))
    assert [m.data for m in stream.messages] == [b"four"]
    assert isinstance(stream.message, BinaryMessage) and not stream.has_message
    stream.parser.send(masked(OPCODE_CONTINUATION, b"ve") + masked(OPCODE_PING, b""))
    assert stream.has_message and stream.message.data == b"five"


def test_close_frames_and_what_follows_them() -> None:
    stream = Stream()
    stream.parser.send(masked(OPCODE_CLOSE, (1001).to_bytes(2, "big") + "bye é".encode()))
    assert (stream.closing.code, str(stream.closing)) == (1001, "bye é")  # type: ignore[union-attr]
    stream.parser.send(masked(OPCODE_TEXT, b"late"))  # after the close: nothing more is parsed
    assert stream.message is None and stream.errors == []
    stream = Stream()
    stream.parser.send(masked(OPCODE_CLOSE, b""))
    assert stream.closing is not None and stream.closing.code == 1005


@pytest.mark.parametrize(
    ("wire", "code"),
    [
        (masked(OPCODE_CLOSE, b"\x03"), 1002),  # 1-byte payload
        (masked(OPCODE_CLOSE, (1500).to_bytes(2, "big")), 1002),  # unregistered code
        (masked(OPCODE_CLOSE, (1005).to_bytes(2, "big")), 1002),  # never on the wire
        (masked(OPCODE_CLOSE, b"\x03\xe8\xc3"), 1007),  # reason not UTF-8
        (masked(OPCODE_TEXT, b"h\xc3llo"), 1007),
        (masked(OPCODE_TEXT, b"ok", rsv=0x40), 1002),
        (masked(OPCODE_CONTINUATION, b"x"), 1002),
        (masked(OPCODE_TEXT, b"a", fin=False) + masked(OPCODE_BINARY, b"b"), 1002),
    ],
)
def test_errors_are_the_cores_failures(wire: bytes, code: int) -> None:
    stream = Stream()
    stream.parser.send(wire)
    assert stream.closing is None
    assert [(e.code, str(e)) for e in stream.errors] == core_report(Connection(Role.SERVER).receive_data(wire))[
        "errors"
    ]
    assert [e.code for e in stream.errors] == [code]
    assert all(isinstance(e, CloseControlMessage) for e in stream.errors)


def test_max_message_size_fails_with_1009() -> None:
    stream = Stream(max_message_size=10)
    stream.parser.send(masked(OPCODE_BINARY, b"x" * 6, fin=False) + masked(OPCODE_CONTINUATION, b"x" * 6))
    assert [e.code for e in stream.errors] == [1009] and stream.messages == []


def test_valid_closing_codes_are_those_the_core_accepts() -> None:
    for code in range(0, 5100):
        accepted = Stream()
        accepted.parser.send(masked(OPCODE_CLOSE, code.to_bytes(2, "big")))
        assert (accepted.closing is not None) is (code in VALID_CLOSING_CODES or 3000 <= code <= 4999), code
    assert set(VALID_CLOSING_CODES) >= {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011}  # 0.6's


# Frames a client may send, and some it may not: the stream must say what the core says.
client_frames = st.one_of(
    st.tuples(st.sampled_from([OPCODE_TEXT]), st.text(max_size=40).map(str.encode), st.booleans()),
    st.tuples(st.sampled_from([OPCODE_TEXT, OPCODE_CONTINUATION]), st.binary(max_size=40), st.booleans()),
    st.tuples(st.sampled_from([OPCODE_BINARY, OPCODE_CONTINUATION]), st.binary(max_size=300), st.booleans()),
    st.tuples(st.sampled_from([OPCODE_PING, OPCODE_PONG]), st.binary(max_size=125), st.just(True)),
    st.tuples(
        st.just(OPCODE_CLOSE),
        st.one_of(st.binary(max_size=4), st.sampled_from([1000, 1001, 3000]).map(lambda c: c.to_bytes(2, "big"))),
        st.just(True),
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    specs=st.lists(client_frames, max_size=8),
    unmasked=st.booleans(),
    cuts=st.lists(st.integers(0, 2000), max_size=6),
)
def test_a_stream_reports_what_the_core_reports(
    specs: list[tuple[int, bytes, bool]], unmasked: bool, cuts: list[int]
) -> None:
    wire = b"".join(frame(op, data, fin, None if unmasked else os.urandom(4)) for op, data, fin in specs)
    bounds = [0, *sorted(c for c in cuts if c < len(wire)), len(wire)]
    chunks = [wire[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    assert run(Stream(), chunks) == core_report(Connection(Role.SERVER).receive_data(wire))


def test_builders() -> None:
    stream = Stream()
    assert stream.ping("sos") == b"\x89\x03sos" and stream.pong(b"sos") == b"\x8a\x03sos"
    client = Stream(always_mask=True, expect_masking=False)
    for build, opcode in ((client.ping, OPCODE_PING), (client.pong, OPCODE_PONG)):
        wire = build("sos")
        assert wire[:2] == bytes((0x80 | opcode, 0x83))
        assert core_frames.apply_mask(wire[6:], wire[2:6]) == b"sos"
    assert isinstance(stream.text_message("é"), TextMessage) and stream.text_message("é").data == "é".encode()
    assert isinstance(stream.binary_message(b"\0"), BinaryMessage)
    close = stream.close(1001, "bye")
    assert isinstance(close, CloseControlMessage) and close.code == 1001 and str(close) == "bye"
    assert close.single() == frame(OPCODE_CLOSE, b"\x03\xe9bye")
    assert frame(OPCODE_TEXT, b"Hello", key=RFC_KEY) == RFC_EXAMPLES["masked text"][1]


def test_closing_the_parser_releases_what_the_stream_held() -> None:
    stream = Stream()
    stream.parser.send(masked(OPCODE_TEXT, b"x") + masked(OPCODE_PING, b"p") + masked(OPCODE_CLOSE, b""))
    stream.parser.close()
    assert (stream.message, stream.messages, stream.pings, stream.closing) == (None, [], [], None)
    stream = Stream()
    stream.parser.send(masked(OPCODE_TEXT, b"x"))
    stream._cleanup()
    assert stream.message is None
    stream.parser.send(masked(OPCODE_TEXT, b"y"))  # a new parser, from scratch
    assert stream.message is not None and stream.message.data == b"y"


def test_builders_agree_with_the_core_on_the_rfc_examples() -> None:
    server, client = Connection(Role.SERVER), Connection(Role.CLIENT)
    stream = Stream()
    assert stream.ping("Hello") == server.send_ping(b"Hello") == RFC_EXAMPLES["unmasked ping"][1]
    assert stream.text_message("Hello").single() == server.send_text("Hello") == RFC_EXAMPLES["unmasked text"][1]
    # Masked: each picks its own key; with the same key, the same bytes.
    ours, core = Stream(always_mask=True).pong("Hello"), client.send_pong(b"Hello")
    assert ours[:2] == core[:2] == RFC_EXAMPLES["masked pong"][1][:2]
    assert frame(OPCODE_PONG, b"Hello", key=ours[2:6]) == ours
    assert frame(OPCODE_PONG, b"Hello", key=RFC_KEY) == RFC_EXAMPLES["masked pong"][1]
    assert core_frames.apply_mask(core[6:], core[2:6]) == core_frames.apply_mask(ours[6:], ours[2:6]) == b"Hello"
