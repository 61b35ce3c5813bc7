"""ws4py.messaging: the message objects callbacks receive and send() takes."""

from __future__ import annotations

import pytest

from ws4py.messaging import (
    BinaryMessage,
    CloseControlMessage,
    Message,
    PingControlMessage,
    PongControlMessage,
    TextMessage,
)
from ws4py.protocol import (
    BinaryReceived,
    CloseReceived,
    Connection,
    PingReceived,
    PongReceived,
    Role,
    TextReceived,
)


def parse_as_client(data: bytes) -> list[object]:
    """What a client-side core makes of frames a server sent (unmasked)."""
    return Connection(Role.CLIENT).receive_data(data)


def parse_as_server(data: bytes) -> list[object]:
    """What a server-side core makes of frames a client sent (masked)."""
    return Connection(Role.SERVER).receive_data(data)


def test_text_message_holds_utf8_bytes_and_its_text() -> None:
    message = TextMessage("héllo €")
    assert message.data == "héllo €".encode()
    assert isinstance(message.data, bytes)
    assert message.is_text and not message.is_binary
    assert message.encoding == "utf-8"
    assert message.opcode == 0x1
    assert str(message) == "héllo €"
    assert bytes(message) == "héllo €".encode()


def test_len_of_a_text_message_counts_characters_not_bytes() -> None:
    message = TextMessage("héllo €")
    assert len(message) == 7
    assert len(message.data) == 10


def test_binary_message_holds_bytes_and_len_counts_bytes() -> None:
    message = BinaryMessage(b"\x00\xff\x10")
    assert message.data == b"\x00\xff\x10"
    assert message.is_binary and not message.is_text
    assert message.encoding is None
    assert message.opcode == 0x2
    assert len(message) == 3
    assert bytes(message) == b"\x00\xff\x10"


@pytest.mark.parametrize("data", [bytearray(b"ab\xff"), memoryview(b"ab\xff")], ids=["bytearray", "memoryview"])
def test_bytes_like_data_is_stored_as_bytes(data: bytes) -> None:
    message = BinaryMessage(data)
    assert type(message.data) is bytes
    assert message.data == b"ab\xff"


def test_empty_messages_have_empty_data() -> None:
    assert TextMessage().data == b""
    assert BinaryMessage().data == b""
    assert PingControlMessage().data == b""
    assert len(TextMessage()) == 0


def test_message_encodes_str_data_with_its_encoding() -> None:
    message = Message(0x1, "é", encoding="latin-1")
    assert message.data == b"\xe9"
    assert str(message) == "é"
    assert message.encoding == "latin-1"


@pytest.mark.parametrize(
    "make",
    [
        lambda: TextMessage(123),
        lambda: TextMessage(object()),
        lambda: BinaryMessage(1.5),
        lambda: BinaryMessage("text needs an encoding"),
        lambda: Message(0x2, "text", encoding=None),
        lambda: PingControlMessage(["a list"]),
    ],
    ids=["text-int", "text-object", "binary-float", "binary-str", "message-str-without-encoding", "ping-list"],
)
def test_bad_data_raises_type_error(make: object) -> None:
    with pytest.raises(TypeError):
        make()  # type: ignore[operator]


def test_completed_is_false_until_set() -> None:
    message = TextMessage("x")
    assert message.completed is False
    message.completed = True
    assert message.completed is True


def test_extend_appends_bytes_and_text() -> None:
    message = TextMessage("ab")
    message.extend(b"cd")
    message.extend("é")
    assert message.data == "abcdé".encode()
    assert str(message) == "abcdé"
    with pytest.raises(TypeError):
        message.extend(42)  # type: ignore[arg-type]


def test_setting_data_replaces_the_payload() -> None:
    message = TextMessage("old")
    message.data = "new"  # type: ignore[assignment]
    assert message.data == b"new"
    assert str(message) == "new"


def test_close_control_message_payload_code_and_reason() -> None:
    message = CloseControlMessage(1001, "bye")
    assert message.data == b"\x03\xe9bye"
    assert message.code == 1001
    assert str(message) == "bye"
    assert message.opcode == 0x8


def test_close_control_message_defaults_to_1000_and_no_reason() -> None:
    message = CloseControlMessage()
    assert message.code == 1000
    assert message.data == b"\x03\xe8"
    assert str(message) == ""


def test_close_control_message_accepts_a_bytes_reason() -> None:
    message = CloseControlMessage(1000, "adieu ☃".encode())
    assert str(message) == "adieu ☃"
    assert message.data == b"\x03\xe8" + "adieu ☃".encode()


def test_ping_and_pong_messages_carry_their_payload() -> None:
    ping, pong = PingControlMessage(b"p1"), PongControlMessage("p2")
    assert (ping.opcode, ping.data) == (0x9, b"p1")
    assert (pong.opcode, pong.data) == (0xA, b"p2")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (TextMessage("héllo"), TextReceived("héllo")),
        (BinaryMessage(b"\x00\x01" * 40000), BinaryReceived(b"\x00\x01" * 40000)),
        (TextMessage(""), TextReceived("")),
        (PingControlMessage(b"are you there"), PingReceived(b"are you there")),
        (PongControlMessage(b"yes"), PongReceived(b"yes")),
        (CloseControlMessage(1001, "going"), CloseReceived(1001, "going")),
    ],
    ids=["text", "binary-64k-length", "empty-text", "ping", "pong", "close"],
)
def test_single_frame_is_parsed_back_by_the_core(message: Message, expected: object) -> None:
    frame = message.single()
    assert frame[0] & 0x80, "single() sets FIN"
    assert parse_as_client(frame)[0] == expected


def test_single_with_mask_is_a_masked_frame_the_server_core_parses() -> None:
    frame = TextMessage("masked text").single(mask=True)
    assert frame[1] & 0x80, "the MASK bit is set"
    assert b"masked text" not in frame
    assert parse_as_server(frame) == [TextReceived("masked text")]


def test_masking_keys_differ_between_calls() -> None:
    message = BinaryMessage(b"\x00" * 16)
    assert message.single(mask=True) != message.single(mask=True)


def test_fragments_parse_back_as_one_message() -> None:
    first = TextMessage("frag").fragment(first=True)
    middle = TextMessage("men").fragment()
    last = TextMessage("ted ✓").fragment(last=True)
    assert first[0] == 0x01, "first fragment: text opcode, no FIN"
    assert middle[0] == 0x00, "middle fragment: continuation, no FIN"
    assert last[0] == 0x80, "last fragment: continuation with FIN"
    connection = Connection(Role.CLIENT)
    assert connection.receive_data(first) == []
    assert connection.receive_data(middle) == []
    assert connection.receive_data(last) == [TextReceived("fragmented ✓")]


def test_masked_binary_fragments_parse_back_as_one_message() -> None:
    frames = (
        BinaryMessage(b"\x01\x02").fragment(first=True, mask=True)
        + BinaryMessage(b"\x03").fragment(mask=True)
        + BinaryMessage(b"\x04").fragment(last=True, mask=True)
    )
    assert parse_as_server(frames) == [BinaryReceived(b"\x01\x02\x03\x04")]


def test_first_and_last_fragment_at_once_is_a_whole_message() -> None:
    assert parse_as_client(BinaryMessage(b"one").fragment(first=True, last=True)) == [BinaryReceived(b"one")]
