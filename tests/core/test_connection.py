"""The Connection state machine (RFC 6455 sections 5, 7 and 8), both roles."""

from __future__ import annotations

import pytest

from ws4py.exc import InvalidState, ProtocolException, StreamClosed
from ws4py.protocol import (
    BinaryReceived,
    CloseReceived,
    Connection,
    ConnectionFailed,
    PerMessageDeflate,
    PingReceived,
    PongReceived,
    Role,
    State,
    TextReceived,
    frames,
)

KEY = b"\x11\x22\x33\x44"
RESERVED_OPCODES = [*range(0x3, 0x8), *range(0xB, 0x10)]
VALID_CLOSE_CODES = {*range(1000, 1004), *range(1007, 1015), *range(3000, 5000)}


def from_client(b0: int, payload: bytes = b"") -> bytes:
    """A frame as a client sends it (masked)."""
    return frames.build_frame(b0, payload, KEY)


def from_server(b0: int, payload: bytes = b"") -> bytes:
    """A frame as a server sends it (unmasked)."""
    return frames.build_frame(b0, payload, None)


def close_payload(code: int, reason: bytes = b"") -> bytes:
    return code.to_bytes(2, "big") + reason


def server(**kwargs: object) -> Connection:
    return Connection(Role.SERVER, **kwargs)  # type: ignore[arg-type]


def client(**kwargs: object) -> Connection:
    return Connection(Role.CLIENT, **kwargs)  # type: ignore[arg-type]


def parse_sent(conn: Connection, data: bytes) -> list[tuple[int, bytes]]:
    """Parse bytes ``conn`` produced, as its peer would."""
    parsed, pos, error = frames.parse_frames(data, 0, conn.is_client, 0x70, 2**63 - 1)
    assert error is None
    assert pos == len(data)
    return parsed


def assert_failed(events: list, code: int) -> None:
    assert len(events) >= 1
    assert isinstance(events[-1], ConnectionFailed), events
    assert events[-1].code == code, events
    assert not any(isinstance(e, ConnectionFailed) for e in events[:-1])


def sent_close_code(conn: Connection) -> int:
    (_, payload), *_ = [f for f in parse_sent(conn, conn.data_to_send()) if f[0] & 0x0F == 0x8]
    return int.from_bytes(payload[:2], "big")


# -- message reassembly (section 5.4) --------------------------------------


def test_single_frame_text_and_binary_messages_are_delivered() -> None:
    conn = server()
    events = conn.receive_data(from_client(0x81, "héllo".encode()) + from_client(0x82, b"\x00\xff"))
    assert events == [TextReceived("héllo"), BinaryReceived(b"\x00\xff")]


def test_fragmented_text_message_is_reassembled() -> None:
    conn = server()
    assert conn.receive_data(from_client(0x01, b"Hel")) == []
    assert conn.receive_data(from_client(0x00, b"l")) == []
    assert conn.receive_data(from_client(0x80, b"o")) == [TextReceived("Hello")]


def test_fragmented_binary_message_is_reassembled_from_one_chunk() -> None:
    conn = client()
    wire = from_server(0x02, b"\x01") + from_server(0x00, b"") + from_server(0x80, b"\x02\x03")
    assert conn.receive_data(wire) == [BinaryReceived(b"\x01\x02\x03")]


def test_zero_length_fragments_are_allowed() -> None:
    conn = server()
    wire = from_client(0x01, b"") + from_client(0x00, b"") + from_client(0x80, b"")
    assert conn.receive_data(wire) == [TextReceived("")]


def test_control_frames_interleaved_in_a_fragmented_message_are_delivered_first() -> None:
    # Section 5.4: control frames MAY be injected in the middle of a fragmented message.
    conn = server()
    wire = (
        from_client(0x01, b"Hel")
        + from_client(0x89, b"p1")
        + from_client(0x00, b"l")
        + from_client(0x8A, b"p2")
        + from_client(0x80, b"o")
    )
    assert conn.receive_data(wire) == [
        PingReceived(b"p1"),
        PongReceived(b"p2", ()),
        TextReceived("Hello"),
    ]
    assert conn.data_to_send() == from_server(0x8A, b"p1")


def test_message_after_a_fragmented_message_is_delivered() -> None:
    conn = server()
    wire = from_client(0x02, b"ab") + from_client(0x80, b"cd") + from_client(0x81, b"next")
    assert conn.receive_data(wire) == [BinaryReceived(b"abcd"), TextReceived("next")]


def test_bytes_fed_one_at_a_time_give_the_same_events() -> None:
    conn = server()
    wire = from_client(0x01, b"Hel") + from_client(0x89, b"x" * 125) + from_client(0x80, b"lo" * 100)
    events = []
    for i in range(len(wire)):
        events += conn.receive_data(wire[i : i + 1])
    assert events == [PingReceived(b"x" * 125), TextReceived("Hel" + "lo" * 100)]


def test_continuation_without_start_fails_with_1002() -> None:
    for fin in (0x00, 0x80):
        conn = server()
        assert_failed(conn.receive_data(from_client(fin, b"x")), 1002)
        assert parse_sent(conn, conn.data_to_send())[0][0] == 0x88
        assert conn.state is State.CLOSED


@pytest.mark.parametrize("second", [0x01, 0x02, 0x81, 0x82])
def test_new_data_frame_inside_fragmented_message_fails_with_1002(second: int) -> None:
    conn = server()
    assert conn.receive_data(from_client(0x01, b"a")) == []
    assert_failed(conn.receive_data(from_client(second, b"b")), 1002)


# -- UTF-8 (section 8.1) ---------------------------------------------------

INVALID_UTF8 = [
    b"\xff",
    b"\xc0\xaf",
    b"\xe0\x80\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\x80",
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
]


@pytest.mark.parametrize("payload", INVALID_UTF8)
def test_invalid_utf8_in_single_text_frame_fails_with_1007(payload: bytes) -> None:
    conn = server()
    events = conn.receive_data(from_client(0x81, payload))
    assert len(events) == 1
    assert_failed(events, 1007)
    assert sent_close_code(conn) == 1007


@pytest.mark.parametrize(
    "bad",
    [
        b"\xff",
        b"\xed\xa0",  # the start of a surrogate: CPython's decoder holds it back
        b"\xed\xbf",
        b"\xf4\x90",  # above U+10FFFF
        b"\xe0\x80",  # overlong
        b"\xf0\x80",  # overlong
        b"\xc0",
        b"\xf5",
    ],
)
def test_invalid_utf8_fails_fast_in_the_fragment_that_carries_it(bad: bytes) -> None:
    # Section 8.1 and Autobahn 6.4: fail as soon as the bytes cannot start valid UTF-8.
    conn = server()
    assert conn.receive_data(from_client(0x01, b"abc")) == []
    events = conn.receive_data(from_client(0x00, b"ok" + bad))
    assert_failed(events, 1007)
    assert events == [events[-1]]
    assert conn.receive_data(from_client(0x80, b"rest")) == []
    conn.data_to_send()
    assert conn.state is State.CLOSED


@pytest.mark.parametrize("bad", [b"\xed\xa0", b"\xf4\x90", b"\xff"])
def test_invalid_utf8_fails_fast_in_the_first_fragment(bad: bytes) -> None:
    conn = server()
    assert_failed(conn.receive_data(from_client(0x01, bad)), 1007)


def test_invalid_utf8_split_across_fragments_fails_in_the_fragment_that_completes_it() -> None:
    conn = server()
    assert conn.receive_data(from_client(0x01, b"a\xed")) == []
    assert_failed(conn.receive_data(from_client(0x00, b"\xa0")), 1007)


def test_truncated_utf8_at_end_of_message_fails_with_1007() -> None:
    conn = server()
    assert conn.receive_data(from_client(0x01, b"a\xe2\x82")) == []
    assert_failed(conn.receive_data(from_client(0x80, b"")), 1007)
    conn = server()
    assert_failed(conn.receive_data(from_client(0x81, b"a\xe2\x82")), 1007)


def test_valid_text_split_at_every_byte_boundary_is_delivered() -> None:
    text = "aé€😀z\U0010ffff\ud7ff\ue000"
    encoded = text.encode()
    for cut in range(len(encoded) + 1):
        conn = server()
        wire = from_client(0x01, encoded[:cut]) + from_client(0x80, encoded[cut:])
        assert conn.receive_data(wire) == [TextReceived(text)], cut
    for cut1 in range(len(encoded) + 1):
        for cut2 in range(cut1, len(encoded) + 1):
            conn = server()
            events = conn.receive_data(from_client(0x01, encoded[:cut1]))
            events += conn.receive_data(from_client(0x00, encoded[cut1:cut2]))
            events += conn.receive_data(from_client(0x80, encoded[cut2:]))
            assert events == [TextReceived(text)], (cut1, cut2)


def test_valid_text_in_one_byte_fragments_is_delivered() -> None:
    text = "κόσμε 𝄞 \u0800\uffff"
    encoded = text.encode()
    wire = from_client(0x01, encoded[:1])
    wire += b"".join(from_client(0x00, encoded[i : i + 1]) for i in range(1, len(encoded)))
    wire += from_client(0x80, b"")
    assert server().receive_data(wire) == [TextReceived(text)]


# -- close frames (sections 5.5.1, 7.4) ------------------------------------


def test_close_codes_0_to_5000_valid_set_is_accepted_others_fail_with_1002() -> None:
    for code in [*range(5001), 5999, 65535]:
        conn = server()
        events = conn.receive_data(from_client(0x88, close_payload(code)))
        if code in VALID_CLOSE_CODES:
            assert events == [CloseReceived(code, "")], code
            assert conn.data_to_send() == from_server(0x88, close_payload(code)), code
        else:
            assert len(events) == 1, code
            assert isinstance(events[0], ConnectionFailed), code
            assert events[0].code == 1002, code
            assert sent_close_code(conn) == 1002, code


def test_close_with_one_byte_payload_fails_with_1002() -> None:
    conn = server()
    assert_failed(conn.receive_data(from_client(0x88, b"\x03")), 1002)
    assert sent_close_code(conn) == 1002


def test_close_reason_with_invalid_utf8_fails_with_1007() -> None:
    conn = server()
    assert_failed(conn.receive_data(from_client(0x88, close_payload(1000, b"bad \xff"))), 1007)
    assert sent_close_code(conn) == 1007


def test_close_reason_is_decoded() -> None:
    conn = server()
    assert conn.receive_data(from_client(0x88, close_payload(1001, "adiós".encode()))) == [CloseReceived(1001, "adiós")]
    assert (conn.close_code, conn.close_reason) == (1001, "adiós")


def test_empty_close_reports_1005_and_is_echoed_with_empty_payload() -> None:
    conn = server()
    assert conn.receive_data(from_client(0x88)) == [CloseReceived(1005, "")]
    assert conn.data_to_send() == b"\x88\x00"
    assert conn.close_code == 1005
    assert conn.state is State.CLOSED


def test_close_echo_uses_the_peers_code() -> None:
    conn = server()
    assert conn.receive_data(from_client(0x88, close_payload(4321, b"bye"))) == [CloseReceived(4321, "bye")]
    assert conn.data_to_send() == b"\x88\x02" + close_payload(4321)


def test_client_close_echo_is_masked_and_uses_the_peers_code() -> None:
    conn = client()
    assert conn.receive_data(from_server(0x88, close_payload(1001))) == [CloseReceived(1001, "")]
    assert parse_sent(conn, conn.data_to_send()) == [(0x88, close_payload(1001))]


def test_bytes_after_a_close_are_ignored() -> None:
    conn = server()
    events = conn.receive_data(from_client(0x88, close_payload(1000)) + from_client(0x81, b"late") + b"\xff\xff")
    assert events == [CloseReceived(1000, "")]
    assert conn.receive_data(from_client(0x81, b"later")) == []
    assert conn.receive_data(b"\x83\x00 garbage") == []
    assert conn.data_to_send() == from_server(0x88, close_payload(1000))
    assert conn.data_to_send() == b""


def test_close_inside_fragmented_message_drops_partial_message_and_echoes_code() -> None:
    conn = server()
    wire = from_client(0x01, b"part") + from_client(0x88, close_payload(3000, b"x")) + from_client(0x80, b"end")
    assert conn.receive_data(wire) == [CloseReceived(3000, "x")]
    assert conn.data_to_send() == from_server(0x88, close_payload(3000))
    assert conn.state is State.CLOSED
    assert conn.failure is None


def test_send_close_twice_returns_empty_bytes_the_second_time() -> None:
    conn = server()
    assert conn.send_close(1000, "done") == from_server(0x88, close_payload(1000, b"done"))
    assert conn.send_close(1000, "done") == b""
    assert conn.send_close(1001) == b""


def test_send_close_after_close_received_returns_empty_bytes() -> None:
    conn = server()
    conn.receive_data(from_client(0x88, close_payload(1000)))
    assert conn.send_close() == b""


def test_send_close_without_code_sends_empty_payload() -> None:
    conn = server()
    assert conn.send_close(None) == b"\x88\x00"


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000])
def test_send_close_refuses_codes_not_valid_on_the_wire(code: int) -> None:
    with pytest.raises(ValueError):
        server().send_close(code)


def test_send_close_refuses_reason_over_123_bytes() -> None:
    assert server().send_close(1000, "x" * 123)
    with pytest.raises(ValueError):
        server().send_close(1000, "x" * 124)


@pytest.mark.parametrize(
    "send",
    [
        lambda c: c.send_text("x"),
        lambda c: c.send_binary(b"x"),
        lambda c: c.send_ping(b"x"),
        lambda c: c.send_pong(b"x"),
        lambda c: c.send_continuation(b"x", True),
    ],
)
def test_sending_after_close_raises_stream_closed(send) -> None:  # type: ignore[no-untyped-def]
    conn = server()
    conn.send_close()
    with pytest.raises(StreamClosed):
        send(conn)
    conn = server()
    conn.receive_data(from_client(0x88, close_payload(1000)))
    conn.data_to_send()
    with pytest.raises(StreamClosed):
        send(conn)
    conn = server()
    conn.receive_eof()
    with pytest.raises(StreamClosed):
        send(conn)


def test_state_open_closing_closed_when_we_close_first() -> None:
    conn = server()
    assert conn.state is State.OPEN
    conn.send_close(1000, "bye")
    assert conn.state is State.CLOSING
    assert conn.receive_data(from_client(0x81, b"still data")) == [TextReceived("still data")]
    assert conn.state is State.CLOSING
    assert conn.receive_data(from_client(0x88, close_payload(1000))) == [CloseReceived(1000, "")]
    assert conn.state is State.CLOSED
    assert conn.data_to_send() == b""  # our close was already sent: no echo
    assert conn.closed_cleanly
    assert conn.close_code == 1000


def test_state_open_to_closed_when_peer_closes_first() -> None:
    conn = client()
    assert conn.receive_data(from_server(0x88, close_payload(1001))) == [CloseReceived(1001, "")]
    assert conn.state is State.OPEN  # until the echo is taken
    assert parse_sent(conn, conn.data_to_send()) == [(0x88, close_payload(1001))]
    assert conn.state is State.CLOSED
    assert conn.closed_cleanly


@pytest.mark.parametrize("last", ["close", "violation"])
def test_message_arriving_with_the_close_can_still_be_answered_before_the_close(last: str) -> None:
    # Autobahn 3.2 / 7.1.1: a message and a close (or a bad frame) in one read.
    conn = server()
    tail = from_client(0x88, close_payload(1000)) if last == "close" else from_client(0xF1, b"")
    events = conn.receive_data(from_client(0x81, b"hi") + tail)
    assert events[0] == TextReceived("hi")
    reply = conn.send_text("hi")
    owed = conn.data_to_send()
    expected_code = 1000 if last == "close" else 1002
    assert parse_sent(conn, reply + owed)[0] == (0x81, b"hi")
    assert parse_sent(conn, owed)[0][0] == 0x88
    assert int.from_bytes(parse_sent(conn, owed)[0][1][:2], "big") == expected_code
    assert conn.state is State.CLOSED
    with pytest.raises(StreamClosed):
        conn.send_text("late")


def test_receive_eof_without_close_sets_close_code_1006() -> None:
    conn = server()
    conn.receive_eof()
    assert conn.state is State.CLOSED
    assert conn.close_code == 1006
    assert not conn.closed_cleanly
    conn = server()
    conn.send_close()
    conn.receive_eof()
    assert conn.close_code == 1006


def test_receive_eof_after_close_handshake_keeps_the_close_code() -> None:
    conn = server()
    conn.receive_data(from_client(0x88, close_payload(1000)))
    conn.data_to_send()
    conn.receive_eof()
    assert conn.close_code == 1000
    assert conn.closed_cleanly


# -- pings and pongs (sections 5.5.2, 5.5.3) -------------------------------


def test_ping_is_answered_with_pong_with_same_payload() -> None:
    conn = server()
    assert conn.receive_data(from_client(0x89, b"are you there")) == [PingReceived(b"are you there")]
    assert conn.data_to_send() == from_server(0x8A, b"are you there")
    assert conn.data_to_send() == b""


def test_client_pong_is_masked() -> None:
    conn = client()
    assert conn.receive_data(from_server(0x89, b"p")) == [PingReceived(b"p")]
    out = conn.data_to_send()
    assert out[1] & 0x80
    assert parse_sent(conn, out) == [(0x8A, b"p")]


def test_pongs_are_bounded_under_a_ping_flood() -> None:
    conn = server()
    payloads = [i.to_bytes(2, "big") for i in range(10_000)]
    events = conn.receive_data(b"".join(from_client(0x89, p) for p in payloads))
    assert events == [PingReceived(p) for p in payloads]
    pongs = parse_sent(conn, conn.data_to_send())
    assert 1 <= len(pongs) <= 16
    assert all(b0 == 0x8A for b0, _ in pongs)
    answered = [p for _, p in pongs]
    # RFC 6455 5.5.3: it may answer only the most recent pings, in order.
    assert answered == payloads[-len(answered) :]


def test_pongs_due_are_sent_before_the_close_echo() -> None:
    conn = server()
    conn.receive_data(from_client(0x89, b"1") + from_client(0x88, close_payload(1000)))
    assert conn.data_to_send() == from_server(0x8A, b"1") + from_server(0x88, close_payload(1000))


def test_pongs_to_send_gives_the_pongs_but_leaves_the_owed_close_for_data_to_send() -> None:
    conn = server()
    conn.receive_data(from_client(0x89, b"1") + from_client(0x88, close_payload(1000)))
    assert conn.pongs_to_send() == from_server(0x8A, b"1")
    assert conn.pongs_to_send() == b""
    assert conn.data_to_send() == from_server(0x88, close_payload(1000))


def test_a_repeated_ping_payload_is_refused_unless_not_unique() -> None:
    conn = client()
    conn.send_ping(b"x")
    with pytest.raises(ValueError, match="already waiting"):
        conn.send_ping(b"x")
    assert parse_sent(conn, conn.send_ping(b"x", unique=False)) == [(0x89, b"x")]
    events = conn.receive_data(from_server(0x8A, b"x"))
    assert [e.acknowledged for e in events] == [(b"x",)]  # type: ignore[attr-defined]


def test_pong_acknowledges_matching_ping_and_all_earlier_ones() -> None:
    conn = client()
    for p in (b"1", b"2", b"3"):
        conn.send_ping(p)
    assert conn.receive_data(from_server(0x8A, b"2")) == [PongReceived(b"2", (b"1", b"2"))]
    assert conn.receive_data(from_server(0x8A, b"3")) == [PongReceived(b"3", (b"3",))]
    assert conn.receive_data(from_server(0x8A, b"3")) == [PongReceived(b"3", ())]


def test_unsolicited_pong_acknowledges_nothing() -> None:
    conn = client()
    conn.send_ping(b"a")
    assert conn.receive_data(from_server(0x8A, b"zzz")) == [PongReceived(b"zzz", ())]
    assert conn.receive_data(from_server(0x8A, b"a")) == [PongReceived(b"a", (b"a",))]


def test_send_ping_with_duplicate_outstanding_payload_raises_value_error() -> None:
    conn = client()
    conn.send_ping(b"x")
    with pytest.raises(ValueError):
        conn.send_ping(b"x")
    conn.receive_data(from_server(0x8A, b"x"))
    assert parse_sent(conn, conn.send_ping(b"x")) == [(0x89, b"x")]


def test_ping_and_pong_payloads_over_125_bytes_raise_value_error() -> None:
    conn = server()
    assert conn.send_ping(b"x" * 125) == from_server(0x89, b"x" * 125)
    with pytest.raises(ValueError):
        conn.send_ping(b"y" * 126)
    with pytest.raises(ValueError):
        conn.send_pong(b"y" * 126)


def test_no_pong_is_sent_after_our_close() -> None:
    conn = server()
    conn.send_close()
    assert conn.receive_data(from_client(0x89, b"late")) == [PingReceived(b"late")]
    assert conn.data_to_send() == b""


# -- limits ----------------------------------------------------------------


def test_frame_over_max_frame_size_fails_with_1009() -> None:
    conn = server(max_frame_size=100)
    assert conn.receive_data(from_client(0x82, b"x" * 100)) == [BinaryReceived(b"x" * 100)]
    assert_failed(conn.receive_data(from_client(0x82, b"x" * 101)), 1009)
    assert sent_close_code(conn) == 1009


def test_max_frame_size_is_checked_from_the_header_alone() -> None:
    conn = server(max_frame_size=1000)
    header = from_client(0x82, b"x" * 1001)[:8]  # 2 + 2 length bytes + 4 mask bytes
    assert_failed(conn.receive_data(header), 1009)


def test_header_claiming_2_63_minus_1_bytes_fails_with_1009_at_once() -> None:
    conn = client(max_message_size=2**20)
    assert_failed(conn.receive_data(b"\x82\x7f" + (2**63 - 1).to_bytes(8, "big")), 1009)


def test_max_message_size_across_fragments_fails_with_1009() -> None:
    conn = server(max_message_size=100)
    assert conn.receive_data(from_client(0x02, b"x" * 60)) == []
    # Fails on the fragment that goes over, before the final fragment.
    assert_failed(conn.receive_data(from_client(0x00, b"x" * 41)), 1009)
    assert sent_close_code(conn) == 1009


def test_message_of_exactly_max_message_size_is_delivered() -> None:
    conn = server(max_message_size=100)
    wire = from_client(0x01, b"x" * 60) + from_client(0x80, b"y" * 40)
    assert conn.receive_data(wire) == [TextReceived("x" * 60 + "y" * 40)]


def test_max_message_size_bounds_an_unfragmented_message_too() -> None:
    # max_message_size bounds a message "however many fragments it comes in",
    # even when max_frame_size is set larger.
    conn = server(max_message_size=100, max_frame_size=1000)
    assert_failed(conn.receive_data(from_client(0x82, b"x" * 200)), 1009)


@pytest.mark.parametrize("opcode", [0x1, 0x2])
def test_4_mib_message_in_64_byte_fragments_is_delivered(opcode: int) -> None:
    size = 4 * 2**20
    chunk = b"0123456789abcdef" * 4
    count = size // len(chunk)
    parts = [from_client(opcode, chunk)]
    cont = from_client(0x00, chunk)
    parts += [cont] * (count - 2)
    parts.append(from_client(0x80, chunk))
    wire = b"".join(parts)
    conn = server(max_message_size=size)
    events = []
    for i in range(0, len(wire), 65536):
        events += conn.receive_data(wire[i : i + 65536])
    assert len(events) == 1
    expected = chunk * count
    if opcode == 0x1:
        assert events[0] == TextReceived(expected.decode())
    else:
        assert events[0] == BinaryReceived(expected)


# -- masking (section 5.1, 5.3) --------------------------------------------


def test_client_masks_every_frame_with_a_fresh_key() -> None:
    conn = client()
    sent = [
        conn.send_text("same"),
        conn.send_text("same"),
        conn.send_binary(b"same"),
        conn.send_ping(b"p"),
        conn.send_pong(b"p"),
        conn.send_close(1000),
    ]
    for data in sent:
        assert data[1] & 0x80
    keys = [data[2:6] for data in sent]
    assert len(set(keys)) == len(keys)
    assert sent[0] != sent[1]
    assert parse_sent(conn, sent[0]) == parse_sent(conn, sent[1]) == [(0x81, b"same")]


def test_server_frames_are_unmasked() -> None:
    conn = server()
    assert conn.send_text("Hello") == b"\x81\x05Hello"
    assert conn.send_binary(b"\x01\x02") == b"\x82\x02\x01\x02"
    assert conn.send_ping(b"p") == b"\x89\x01p"
    assert conn.send_pong(b"q") == b"\x8a\x01q"
    assert conn.send_close(1000) == b"\x88\x02\x03\xe8"


def test_server_fails_unmasked_client_frame_with_1002() -> None:
    conn = server()
    assert_failed(conn.receive_data(from_server(0x81, b"Hello")), 1002)
    assert sent_close_code(conn) == 1002


def test_client_fails_masked_server_frame_with_1002() -> None:
    conn = client()
    assert_failed(conn.receive_data(from_client(0x81, b"Hello")), 1002)
    assert sent_close_code(conn) == 1002


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10])
def test_rsv_bits_without_negotiated_extension_fail_with_1002(rsv: int) -> None:
    conn = server()
    assert_failed(conn.receive_data(from_client(0x81 | rsv, b"x")), 1002)


def test_rsv1_on_continuation_frame_with_deflate_negotiated_fails_with_1002() -> None:
    conn = server(extensions=[PerMessageDeflate()])
    assert conn.receive_data(from_client(0x01, b"a")) == []
    assert_failed(conn.receive_data(from_client(0xC0, b"b")), 1002)


@pytest.mark.parametrize("opcode", [0x8, 0x9, 0xA])
def test_rsv1_on_control_frame_with_deflate_negotiated_fails_with_1002(opcode: int) -> None:
    conn = server(extensions=[PerMessageDeflate()])
    payload = close_payload(1000) if opcode == 0x8 else b""
    assert_failed(conn.receive_data(from_client(0xC0 | opcode, payload)), 1002)


@pytest.mark.parametrize("rsv", [0x20, 0x10])
def test_rsv2_and_rsv3_with_deflate_negotiated_fail_with_1002(rsv: int) -> None:
    conn = server(extensions=[PerMessageDeflate()])
    assert_failed(conn.receive_data(from_client(0x81 | rsv, b"x")), 1002)


@pytest.mark.parametrize("opcode", RESERVED_OPCODES)
def test_reserved_opcode_fails_with_1002(opcode: int) -> None:
    conn = server()
    events = conn.receive_data(from_client(0x81, b"before") + from_client(0x80 | opcode, b""))
    assert events[0] == TextReceived("before")
    assert_failed(events, 1002)


def test_failure_queues_one_close_frame_and_then_ignores_input() -> None:
    conn = server()
    conn.receive_data(from_client(0x89, b"ping") + b"\x83\x00")
    out = parse_sent(conn, conn.data_to_send())
    assert [b0 for b0, _ in out] == [0x8A, 0x88]
    assert out[1][1][:2] == close_payload(1002)
    assert conn.state is State.CLOSED
    assert conn.close_code == 1002
    assert not conn.closed_cleanly
    assert conn.receive_data(from_client(0x81, b"ignored")) == []
    assert conn.data_to_send() == b""


def test_failure_after_our_close_queues_no_second_close() -> None:
    conn = server()
    conn.send_close(1000)
    assert_failed(conn.receive_data(b"\x83\x00"), 1002)
    assert conn.data_to_send() == b""


# -- outgoing fragmentation ------------------------------------------------


def test_outgoing_fragments_use_continuation_opcode_and_fin_on_the_last() -> None:
    conn = server()
    assert conn.send_text("Hel", fin=False) == b"\x01\x03Hel"
    assert conn.send_continuation("l", fin=False) == b"\x00\x01l"
    assert conn.send_ping(b"p") == b"\x89\x01p"
    assert conn.send_continuation(b"o", fin=True) == b"\x80\x01o"
    assert conn.send_binary(b"\x00", fin=False) == b"\x02\x01\x00"
    assert conn.send_continuation(b"", fin=True) == b"\x80\x00"


def test_send_continuation_without_start_is_caller_misuse_not_a_protocol_error() -> None:
    conn = server()
    with pytest.raises(InvalidState):
        conn.send_continuation(b"x", fin=True)
    conn.send_text("a")
    with pytest.raises(InvalidState) as raised:
        conn.send_continuation(b"x", fin=False)
    assert not isinstance(raised.value, ProtocolException)


@pytest.mark.parametrize("send", [lambda c: c.send_text("x"), lambda c: c.send_binary(b"x", fin=False)])
def test_new_message_while_fragmented_message_is_open_raises(send) -> None:  # type: ignore[no-untyped-def]
    conn = server()
    conn.send_text("a", fin=False)
    with pytest.raises(InvalidState):
        send(conn)
    assert conn.send_continuation("b", fin=True) == b"\x80\x01b"
    assert conn.send_text("c") == b"\x81\x01c"


def test_client_to_server_round_trip_of_every_kind_of_frame() -> None:
    c, s = client(), server()
    wire = (
        c.send_text("Hel", fin=False)
        + c.send_ping(b"1")
        + c.send_continuation("lo", fin=True)
        + c.send_binary(b"\x00\x01")
        + c.send_pong(b"2")
    )
    assert s.receive_data(wire) == [
        PingReceived(b"1"),
        TextReceived("Hello"),
        BinaryReceived(b"\x00\x01"),
        PongReceived(b"2", ()),
    ]
    assert c.receive_data(s.data_to_send()) == [PongReceived(b"1", (b"1",))]
    assert s.receive_data(c.send_close(1000, "bye")) == [CloseReceived(1000, "bye")]
    assert c.receive_data(s.data_to_send()) == [CloseReceived(1000, "")]
    assert c.closed_cleanly and s.closed_cleanly


@pytest.mark.parametrize("role", ["server", "client"])
@pytest.mark.parametrize("continuation", [False, True])
def test_invalid_utf8_fails_fast_inside_one_incomplete_frame(role: str, continuation: bool) -> None:
    # Autobahn 6.4.3: the bad bytes arrive while the frame is still incomplete;
    # the connection fails then, not when the frame's last byte comes.
    conn = server() if role == "server" else client()
    encode = from_client if role == "server" else from_server
    if continuation:
        assert conn.receive_data(encode(0x01, "κόσμε".encode())) == []
    frame = encode(0x80 if continuation else 0x81, "κόσμε".encode() + b"\xf4\x90\x80\x80" + b"edited" * 100)
    cut = len(frame) - 500
    events = conn.receive_data(frame[:cut])
    assert_failed(events, 1007)
    assert conn.receive_data(frame[cut:]) == []


def test_valid_text_trickled_byte_by_byte_inside_one_frame_is_delivered() -> None:
    conn = server()
    text = "ascii, κόσμε, 𝄞 and \U0010ffff" * 20
    frame = from_client(0x81, text.encode())
    events = [event for i in range(len(frame)) for event in conn.receive_data(frame[i : i + 1])]
    assert events == [TextReceived(text)]


LARGE_TEXT = "ü" * 40_000  # 80,000 bytes: over the size a text is validated without decoding


@pytest.mark.parametrize("decode_text", [False, True])
@pytest.mark.parametrize("reads", [1, 7])
def test_a_large_text_is_held_as_its_bytes_and_decoded_only_when_read_even_with_decode_text(
    decode_text: bool, reads: int
) -> None:
    conn = server()
    conn.decode_text = decode_text
    wire = from_client(0x81, LARGE_TEXT.encode()) + from_client(0x81, b"next")
    step = -(-len(wire) // reads)
    events = [event for i in range(0, len(wire), step) for event in conn.receive_data(wire[i : i + step])]
    first = events[0]
    assert isinstance(first, TextReceived)
    assert first.decoded is None  # held once: not as its bytes and its str (issue 20 item 5)
    assert first.raw == LARGE_TEXT.encode()
    assert events == [TextReceived(LARGE_TEXT), TextReceived("next")]  # comparing decodes


@pytest.mark.parametrize("size", [5, 100_000])
@pytest.mark.parametrize("reads", [1, 7])
def test_with_decode_text_an_ascii_text_is_a_str_without_raw_bytes(size: int, reads: int) -> None:
    conn = server()
    conn.decode_text = True
    text = "x" * size
    wire = from_client(0x81, text.encode()) + from_client(0x81, "ü".encode())
    step = -(-len(wire) // reads)
    events = [event for i in range(0, len(wire), step) for event in conn.receive_data(wire[i : i + step])]
    assert events == [TextReceived(text), TextReceived("ü")]
    assert (events[0].decoded, events[0].raw) == (text, None)  # type: ignore[attr-defined]
    assert events[1].raw == "ü".encode()  # type: ignore[attr-defined]


@pytest.mark.parametrize("decode_text", [False, True])
@pytest.mark.parametrize("reads", [1, 7])
def test_a_large_text_with_invalid_utf8_at_its_end_fails_with_1007_with_or_without_decode_text(
    decode_text: bool, reads: int
) -> None:
    conn = server()
    conn.decode_text = decode_text
    wire = from_client(0x81, LARGE_TEXT.encode() + b"\xed\xa0\x80")
    step = -(-len(wire) // reads)
    events = [event for i in range(0, len(wire), step) for event in conn.receive_data(wire[i : i + step])]
    assert_failed(events, 1007)
    assert events == [events[-1]]


# -- receive_messages: plain messages as pairs ------------------------------


def test_receive_messages_gives_the_leading_plain_messages_as_pairs_and_the_rest_as_events_in_order() -> None:
    conn = server()
    wire = (
        from_client(0x81, "κόσμε".encode())
        + from_client(0x82, b"\x00\x01")
        + from_client(0x89, b"ping")
        + from_client(0x81, b"after the ping")
    )
    messages, events = conn.receive_messages(wire)
    assert messages == [(0x81, "κόσμε".encode()), (0x82, b"\x00\x01")]
    assert events == [PingReceived(b"ping"), TextReceived("after the ping")]
    assert parse_sent(conn, conn.data_to_send()) == [(0x8A, b"ping")]


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (from_client(0x81, b"ok \xed\xa0\x80"), 1007),  # a surrogate: not UTF-8
        (from_client(0x82, b"x" * 11), 1009),  # over max_message_size, within max_frame_size
        (from_client(0x02, b"a fragment") + from_client(0x82, b"not a continuation"), 1002),
    ],
)
def test_receive_messages_leaves_a_message_it_cannot_vouch_for_to_the_events(frame: bytes, code: int) -> None:
    conn = server(max_message_size=10, max_frame_size=100)
    messages, events = conn.receive_messages(from_client(0x82, b"first") + frame)
    assert messages == [(0x82, b"first")]
    assert_failed(events, code)
    assert sent_close_code(conn) == code


def test_receive_messages_fails_a_whole_message_that_interrupts_a_fragmented_one_with_1002() -> None:
    conn = server()
    assert conn.receive_messages(from_client(0x02, b"a fragment")) == ([], [])
    messages, events = conn.receive_messages(from_client(0x82, b"not a continuation"))
    assert messages == []
    assert_failed(events, 1002)


def test_receive_messages_during_a_fragmented_message_or_a_large_frame_makes_only_events() -> None:
    conn = server()
    assert conn.receive_messages(from_client(0x01, b"frag")) == ([], [])
    assert conn.receive_messages(from_client(0x80, b"ment") + from_client(0x82, b"b")) == (
        [],
        [TextReceived("fragment"), BinaryReceived(b"b")],
    )
    large = from_client(0x82, b"L" * 100_000)
    assert conn.receive_messages(large[:70_000]) == ([], [])
    assert conn.receive_messages(large[70_000:] + from_client(0x82, b"small")) == (
        [],
        [BinaryReceived(b"L" * 100_000), BinaryReceived(b"small")],
    )
    assert conn.receive_messages(from_client(0x82, b"plain again")) == ([(0x82, b"plain again")], [])


def test_receive_messages_gives_an_ascii_text_as_a_str_only_with_decode_text() -> None:
    conn = server()
    assert conn.receive_messages(from_client(0x81, b"ascii")) == ([(0x81, b"ascii")], [])
    conn.decode_text = True
    assert conn.receive_messages(from_client(0x81, b"ascii")) == ([(0x81, "ascii")], [])
    assert conn.receive_messages(from_client(0x81, "ü".encode())) == ([(0x81, "ü".encode())], [])
