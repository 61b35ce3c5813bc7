"""Property tests: round trips through any chunking, and robustness against garbage.

The autouse ``codec`` fixture runs each property once per codec; the round
trip also re-parses the same wire bytes under every codec inside one example,
so the two codecs are compared on identical input.
"""

from __future__ import annotations

import itertools
import zlib
from contextlib import suppress

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ws4py.exc import HandshakeError
from ws4py.protocol import (
    BinaryReceived,
    ClientHandshake,
    CloseReceived,
    Connection,
    ConnectionFailed,
    DeflateOptions,
    Event,
    PerMessageDeflate,
    PingReceived,
    PongReceived,
    Role,
    ServerHandshake,
    State,
    TextReceived,
    accept_key,
    frames,
)
from ws4py.protocol import _frames_py as pyframes
from ws4py.protocol.http11 import HeadReader

try:
    from ws4py import _speedups as cframes
except ImportError:  # pragma: no cover - the C extension is optional
    cframes = None

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,  # failing examples are printed; keep no example database in the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
VALID_CLOSE_CODES = [*range(1000, 1004), *range(1007, 1015), 3000, 3999, 4000, 4999]


def chunked(data: bytes, cuts: list[int], kinds: list[int]) -> list[bytes | bytearray | memoryview]:
    points = sorted({c for c in cuts if 0 < c < len(data)})
    bounds = [0, *points, len(data)]
    chunks: list[bytes | bytearray | memoryview] = []
    for i, (a, b) in enumerate(itertools.pairwise(bounds)):
        piece = data[a:b]
        kind = kinds[i % len(kinds)] if kinds else 0
        chunks.append(piece if kind == 0 else bytearray(piece) if kind == 1 else memoryview(piece))
    return chunks


def check_event_stream(events: list[Event], conn: Connection) -> None:
    """Events are well formed; nothing follows a close or a failure."""
    for i, ev in enumerate(events):
        assert isinstance(ev, Event)
        if isinstance(ev, (ConnectionFailed, CloseReceived)):
            assert i == len(events) - 1, events
            assert conn.state is State.CLOSED
        if isinstance(ev, ConnectionFailed):
            assert ev.code in (1002, 1007, 1009), ev


# -- (a) round trips ------------------------------------------------------------

control = st.one_of(
    st.tuples(st.just("ping"), st.binary(max_size=123)),
    st.tuples(st.just("pong"), st.binary(max_size=125)),
)
payload_text = st.text(max_size=150)
payload_binary = st.one_of(
    st.binary(max_size=300),
    st.integers(min_value=65530, max_value=65540).map(lambda n: bytes(range(256)) * (n // 256) + bytes(n % 256)),
)


@st.composite
def message(draw: st.DrawFn) -> tuple[str, str | bytes, list[int], list[list[tuple[str, bytes]]]]:
    kind = draw(st.sampled_from(["text", "binary"]))
    data: str | bytes = draw(payload_text if kind == "text" else payload_binary)
    size = len(data.encode() if isinstance(data, str) else data)
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=size), max_size=4)))
    controls = [draw(st.lists(control, max_size=2)) for _ in cuts]
    return kind, data, cuts, controls


plan_items = st.lists(st.one_of(message(), control), max_size=6)
closing = st.none() | st.tuples(st.sampled_from(VALID_CLOSE_CODES), st.text(max_size=30))


def serialise(sender: Connection, items: list, close: tuple[int, str] | None) -> tuple[bytes, list[Event]]:
    """Frame ``items`` with ``sender``; return the wire bytes and the events the peer must see."""
    wire: list[bytes] = []
    expected: list[Event] = []
    counter = 0

    def send_control(ctl: tuple[str, bytes]) -> None:
        nonlocal counter
        kind, payload = ctl
        if kind == "ping":
            counter += 1
            payload = counter.to_bytes(2, "big") + payload  # outstanding pings must differ
            wire.append(sender.send_ping(payload))
            expected.append(PingReceived(payload))
        else:
            wire.append(sender.send_pong(payload))
            expected.append(PongReceived(payload, ()))

    for item in items:
        if item[0] in ("ping", "pong"):
            send_control(item)
            continue
        kind, data, cuts, controls = item
        raw = data.encode() if isinstance(data, str) else data
        send = sender.send_text if kind == "text" else sender.send_binary
        if not cuts:
            wire.append(send(data))
        else:
            bounds = [0, *cuts, len(raw)]
            pieces = [raw[a:b] for a, b in itertools.pairwise(bounds)]
            wire.append(send(pieces[0], fin=False))
            for ctls, piece in zip(controls[:-1], pieces[1:-1], strict=True):
                for ctl in ctls:
                    send_control(ctl)
                wire.append(sender.send_continuation(piece, fin=False))
            for ctl in controls[-1]:
                send_control(ctl)
            wire.append(sender.send_continuation(pieces[-1], fin=True))
        expected.append(TextReceived(data) if kind == "text" else BinaryReceived(raw))
    if close is not None:
        code, reason = close
        wire.append(sender.send_close(code, reason))
        expected.append(CloseReceived(code, reason))
    return b"".join(wire), expected


deflate_params = st.none() | st.tuples(st.booleans(), st.sampled_from([8, 9, 11, 15]))


@SETTINGS
@given(
    items=plan_items,
    close=closing,
    client_sends=st.booleans(),
    deflate=deflate_params,
    data=st.data(),
)
def test_any_frames_in_any_chunking_parse_back_to_the_same_events_with_both_codecs(
    items: list,
    close: tuple[int, str] | None,
    client_sends: bool,
    deflate: tuple[bool, int] | None,
    data: st.DataObject,
) -> None:
    def make(role: Role, sending: bool) -> Connection:
        if deflate is None:
            return Connection(role)
        nct, bits = deflate
        if sending:
            ext = PerMessageDeflate(local_no_context_takeover=nct, local_max_window_bits=bits)
        else:
            ext = PerMessageDeflate(remote_no_context_takeover=nct, remote_max_window_bits=bits)
        return Connection(role, extensions=[ext])

    sender_role, receiver_role = (Role.CLIENT, Role.SERVER) if client_sends else (Role.SERVER, Role.CLIENT)
    wire, expected = serialise(make(sender_role, True), items, close)
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(wire)), max_size=12), label="cuts")
    if len(wire) < 3000 and data.draw(st.booleans(), label="one byte at a time"):
        cuts = list(range(len(wire)))
    kinds = data.draw(st.lists(st.integers(min_value=0, max_value=2), max_size=3), label="chunk types")
    results = {}
    for name in frames.available_implementations():
        with frames.using(name):
            receiver = make(receiver_role, False)
            events: list[Event] = []
            for chunk in chunked(wire, cuts, kinds):
                events += receiver.receive_data(chunk)
            assert events == expected, name
            if close is not None:
                receiver.data_to_send()
                assert receiver.state is State.CLOSED
                assert receiver.close_code == close[0]
            else:
                assert receiver.state is State.OPEN
            results[name] = events
    assert len(set(map(repr, results.values()))) == 1


# -- (b) garbage into a Connection ------------------------------------------------


def _frame(b0: int, payload: bytes, key: bytes | None, length_byte: int | None) -> bytes:
    out = bytearray(pyframes.build_frame(b0, payload, key))
    if length_byte is not None and len(payload) < 126:
        out[1] = (out[1] & 0x80) | length_byte  # lie about the length
    return bytes(out)


def _compressed(data: bytes, b0: int, key: bytes | None) -> bytes:
    co = zlib.compressobj(wbits=-15)
    payload = co.compress(data) + co.flush(zlib.Z_SYNC_FLUSH)
    return pyframes.build_frame(b0 | 0x40, payload[:-4], key)


masks = st.none() | st.binary(min_size=4, max_size=4)
frame_like = st.one_of(
    st.builds(
        _frame,
        b0=st.integers(0, 255),
        payload=st.binary(max_size=140),
        key=masks,
        length_byte=st.none() | st.integers(0, 127),
    ),
    st.builds(
        _frame,
        b0=st.sampled_from([0x01, 0x81, 0x00, 0x80, 0x88, 0x89, 0x8A, 0xC1, 0x41, 0xC2]),
        payload=st.one_of(
            st.binary(max_size=40),
            st.text(max_size=20).map(str.encode),
            st.tuples(st.integers(0, 65535), st.binary(max_size=10)).map(lambda t: t[0].to_bytes(2, "big") + t[1]),
        ),
        key=masks,
        length_byte=st.none(),
    ),
    st.builds(
        _compressed,
        data=st.one_of(st.binary(max_size=300), st.text(max_size=50).map(str.encode)),
        b0=st.sampled_from([0x81, 0x82, 0x01, 0x02]),
        key=masks,
    ),
)
garbage = st.one_of(
    st.binary(max_size=400),
    st.lists(frame_like, max_size=8).map(b"".join),
    st.tuples(st.lists(frame_like, max_size=5).map(b"".join), st.binary(max_size=20)).map(lambda t: t[0] + t[1]),
)


def _deflate(data: bytes) -> bytes:
    co = zlib.compressobj(wbits=-15)
    return (co.compress(data) + co.flush(zlib.Z_SYNC_FLUSH))[:-4]


# Frames that follow the role's masking rule (mostly) and use meaningful
# opcodes, so that the garbage reaches reassembly, UTF-8, close and deflate.
plausible_frame = st.tuples(
    st.sampled_from([0x01, 0x02, 0x00, 0x80, 0x81, 0x82, 0x88, 0x89, 0x8A]) | st.integers(0, 255),
    st.one_of(
        st.binary(max_size=60),
        st.text(max_size=20).map(str.encode),
        st.tuples(st.sampled_from([1000, 1005, 1007, 2999, 3000, 4999]), st.binary(max_size=6)).map(
            lambda t: t[0].to_bytes(2, "big") + t[1]
        ),
    ),
    st.booleans(),  # compress the payload and set RSV1
    st.integers(0, 19).map(lambda n: n == 0),  # break the masking rule
)


def build_plausible(specs: list[tuple[int, bytes, bool, bool]], role: Role) -> bytes:
    out = []
    for b0, payload, compress, wrong_mask in specs:
        if compress:
            b0, payload = b0 | 0x40, _deflate(payload)
        masked = (role is Role.SERVER) != wrong_mask
        out.append(pyframes.build_frame(b0, payload, b"\x00\x01\x02\x03" if masked else None))
    return b"".join(out)


#: What goes into a Connection in the tests of garbage: bytes, how they are cut, and its settings.
GARBAGE_INTO_A_CONNECTION = {
    "data": garbage,
    "plausible": st.none() | st.lists(plausible_frame, max_size=10),
    "role": st.sampled_from([Role.CLIENT, Role.SERVER]),
    "deflate": st.booleans(),
    "max_message_size": st.sampled_from([None, 0, 10, 100, 2**20]),
    "cuts": st.lists(st.integers(0, 1000), max_size=8),
    "kinds": st.lists(st.integers(0, 2), max_size=3),
}


@SETTINGS
@given(**GARBAGE_INTO_A_CONNECTION)
def test_garbage_never_raises_from_a_connection(
    data: bytes,
    plausible: list[tuple[int, bytes, bool, bool]] | None,
    role: Role,
    deflate: bool,
    max_message_size: int | None,
    cuts: list[int],
    kinds: list[int],
) -> None:
    if plausible is not None:
        data = build_plausible(plausible, role)
    extensions = [PerMessageDeflate()] if deflate else []
    conn = Connection(role, extensions=extensions, max_message_size=max_message_size)
    events: list[Event] = []
    for chunk in chunked(data, cuts, kinds):
        events += conn.receive_data(chunk)
        conn.data_to_send()
    check_event_stream(events, conn)
    event(f"last event: {type(events[-1]).__name__ if events else None}")
    if events and isinstance(events[-1], ConnectionFailed):
        assert conn.close_code == events[-1].code
        assert conn.receive_data(b"\x81\x00") == []
    conn.receive_eof()
    assert conn.state is State.CLOSED


def as_events(messages: list[tuple[int, bytes | str]]) -> list[Event]:
    """``receive_messages``' pairs as the events ``receive_data`` makes of them."""
    events: list[Event] = []
    for first_byte, payload in messages:
        assert first_byte in (0x81, 0x82), hex(first_byte)
        if first_byte == 0x82:
            events.append(BinaryReceived(payload))  # type: ignore[arg-type]
        else:
            events.append(TextReceived(payload if isinstance(payload, str) else payload.decode()))
    return events


@SETTINGS
@given(
    **GARBAGE_INTO_A_CONNECTION,
    decode_text=st.booleans(),
    max_frame_size=st.sampled_from([None, 50, 2**21]),
)
def test_receive_messages_reports_exactly_what_receive_data_does(
    data: bytes,
    plausible: list[tuple[int, bytes, bool, bool]] | None,
    role: Role,
    deflate: bool,
    decode_text: bool,
    max_message_size: int | None,
    max_frame_size: int | None,
    cuts: list[int],
    kinds: list[int],
) -> None:
    if plausible is not None:
        data = build_plausible(plausible, role)
    twins = []
    for _ in range(2):
        extensions = [PerMessageDeflate()] if deflate else []
        conn = Connection(role, extensions=extensions, max_message_size=max_message_size, max_frame_size=max_frame_size)
        conn.decode_text = decode_text
        twins.append(conn)
    by_events, by_pairs = twins
    for chunk in chunked(data, cuts, kinds):
        expected = by_events.receive_data(chunk)
        messages, events = by_pairs.receive_messages(chunk)
        assert as_events(messages) + events == expected
        for first_byte, payload in messages:
            if isinstance(payload, str):  # only an ASCII text, and only when asked to decode
                assert decode_text and first_byte == 0x81 and payload.isascii()
        # A client masks with fresh keys: compare what the frames say, not their bytes.
        sent = [pyframes.parse_frames(conn.data_to_send(), 0, conn.is_client, 0x70, 2**63 - 1) for conn in twins]
        assert sent[1] == sent[0]
        assert by_pairs.state is by_events.state
    assert by_pairs.close_code == by_events.close_code


# -- (c) garbage into the handshake -------------------------------------------------

GOOD_REQUEST = (
    b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\n"
    b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
)
header_value = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=60)
header_name = st.sampled_from(
    [
        "Host",
        "Upgrade",
        "Connection",
        "Sec-WebSocket-Key",
        "Sec-WebSocket-Version",
        "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Extensions",
        "Origin",
        "X-Other",
    ]
)


@st.composite
def mutated(draw: st.DrawFn, base: bytes) -> bytes:
    data = bytearray(base)
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        pos = draw(st.integers(0, len(data)))
        if op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        else:
            data[pos : pos + 1] = draw(st.binary(min_size=1, max_size=1))
    return bytes(data)


@st.composite
def requests_with_random_headers(draw: st.DrawFn) -> bytes:
    lines = [b"GET /chat HTTP/1.1"]
    for name, value in draw(st.lists(st.tuples(header_name, header_value), max_size=10)):
        lines.append(name.encode() + b": " + value.encode("latin-1"))
    return b"\r\n".join(lines) + b"\r\n\r\n"


handshake_garbage = st.one_of(
    st.binary(max_size=300),
    mutated(GOOD_REQUEST),
    requests_with_random_headers(),
    st.just(GOOD_REQUEST),
)


@SETTINGS
@given(data=handshake_garbage, cuts=st.lists(st.integers(0, 400), max_size=6))
def test_garbage_into_the_server_handshake_raises_only_handshake_error(data: bytes, cuts: list[int]) -> None:
    server = ServerHandshake(subprotocols=["chat"], compression=DeflateOptions(), origins=None)
    try:
        request = None
        for chunk in chunked(data, cuts, [0]):
            request = server.receive_data(chunk)
            if request is not None:
                break
        event(f"request complete: {request is not None}")
        if request is not None:
            response = server.accept()
            assert response.startswith(b"HTTP/1.1 101 ")
    except HandshakeError as exc:
        event(f"refused with {exc.status}")
        assert 400 <= exc.status < 600
        assert exc.status != 101
        ServerHandshake.reject(exc)  # the refusal can always be serialised


@SETTINGS
@given(
    data=st.one_of(
        st.binary(max_size=300),
        mutated(
            b"HTTP/1.1 101 Switching Protocols\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: ACCEPT\r\n\r\n"
        ),
    )
)
def test_garbage_into_the_client_handshake_raises_only_handshake_error(data: bytes) -> None:
    client = ClientHandshake("example.com", subprotocols=["chat"], compression=DeflateOptions())
    data = data.replace(b"ACCEPT", accept_key(client.key).encode())
    with suppress(HandshakeError):
        client.receive_data(data)
    with suppress(HandshakeError):
        HeadReader(is_request=False).feed(data)


# -- (d) parse_frames on random bytes: the two codecs agree ---------------------------


@SETTINGS
@given(
    buf=st.one_of(st.binary(max_size=200), st.lists(frame_like, max_size=4).map(b"".join)),
    expect_mask=st.booleans(),
    allowed_rsv=st.sampled_from([0, 0x40, 0x70]) | st.integers(0, 255),
    max_frame_size=st.sampled_from([0, 1, 125, 126, 65535, 2**63 - 1]) | st.integers(0, 2**63 - 1),
    pos_fraction=st.floats(0, 1),
    key=st.binary(min_size=4, max_size=4),
    b0=st.integers(0, 255),
    ascii_text_as_str=st.booleans(),
)
def test_parse_frames_on_random_bytes_never_raises_and_the_codecs_agree(
    buf: bytes,
    expect_mask: bool,
    allowed_rsv: int,
    max_frame_size: int,
    pos_fraction: float,
    key: bytes,
    b0: int,
    ascii_text_as_str: bool,
) -> None:
    pos = int(len(buf) * pos_fraction)
    result = frames.parse_frames(buf, pos, expect_mask, allowed_rsv, max_frame_size)
    _, end, error = result
    assert pos <= end <= len(buf)
    assert error is None or error[0] in (1002, 1007, 1009)  # 1007: a whole text frame that is not UTF-8
    if cframes is None:
        pytest.skip("ws4py._speedups is not built")
    for source in (buf, bytearray(buf), memoryview(buf)):
        args = (source, pos, expect_mask, allowed_rsv, max_frame_size, ascii_text_as_str)
        assert cframes.parse_frames(*args) == pyframes.parse_frames(*args)
    assert cframes.apply_mask(buf, key) == pyframes.apply_mask(buf, key)
    assert cframes.apply_mask(memoryview(buf)[pos:], key) == pyframes.apply_mask(memoryview(buf)[pos:], key)
    assert cframes.build_frame(b0, buf, key) == pyframes.build_frame(b0, buf, key)
    assert cframes.build_frame(b0, buf, None) == pyframes.build_frame(b0, buf, None)
