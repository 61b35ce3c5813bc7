"""permessage-deflate (RFC 7692): negotiation, compression round trips, limits, interop."""

from __future__ import annotations

import functools
import zlib

import pytest

from ws4py.exc import HandshakeError
from ws4py.protocol import (
    BinaryReceived,
    ClientHandshake,
    CloseReceived,
    Connection,
    ConnectionFailed,
    DeflateOptions,
    PerMessageDeflate,
    PingReceived,
    PongReceived,
    Request,
    Role,
    ServerHandshake,
    TextReceived,
    accept_key,
    frames,
)
from ws4py.protocol.headers import parse_extensions
from ws4py.protocol.http11 import HeadReader

KEY = b"\x01\x02\x03\x04"
TAIL = b"\x00\x00\xff\xff"


def from_client(b0: int, payload: bytes = b"") -> bytes:
    return frames.build_frame(b0, payload, KEY)


def from_server(b0: int, payload: bytes = b"") -> bytes:
    return frames.build_frame(b0, payload, None)


def parse_sent(conn: Connection, data: bytes) -> list[tuple[int, bytes]]:
    parsed, pos, error = frames.parse_frames(data, 0, conn.is_client, 0x70, 2**63 - 1)
    assert error is None
    assert pos == len(data)
    return parsed


def params_of(header: str) -> list[tuple[str, str | None]]:
    ((name, params),) = parse_extensions([header])
    assert name == "permessage-deflate"
    return params


def pmd_tuple(pmd: PerMessageDeflate) -> tuple[bool, bool, int, int]:
    return (
        pmd.local_no_context_takeover,
        pmd.remote_no_context_takeover,
        pmd.local_max_window_bits,
        pmd.remote_max_window_bits,
    )


def handshake(
    client_opts: DeflateOptions | None, server_opts: DeflateOptions | None
) -> tuple[ClientHandshake, ServerHandshake, bytes]:
    client = ClientHandshake("example.com", "/chat", compression=client_opts)
    server = ServerHandshake(compression=server_opts)
    assert server.receive_data(client.request_bytes()) is not None
    response = server.accept()
    assert client.receive_data(response) is not None
    return client, server, response


def connected(client_opts: DeflateOptions, server_opts: DeflateOptions, **limits: int) -> tuple[Connection, Connection]:
    client, server, _ = handshake(client_opts, server_opts)
    assert len(client.extensions) == len(server.extensions) == 1
    return client.connection(**limits), server.connection(**limits)


def extension_header(response: bytes) -> str | None:
    for line in response.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.lower() == b"sec-websocket-extensions":
            return value.strip().decode()
    return None


# -- negotiation (RFC 7692 section 7.1) -------------------------------------


def test_default_offer_advertises_client_max_window_bits() -> None:
    assert DeflateOptions().offer() == "permessage-deflate; client_max_window_bits"


def test_offer_carries_all_four_parameters() -> None:
    opts = DeflateOptions(
        server_no_context_takeover=True,
        client_no_context_takeover=True,
        server_max_window_bits=10,
        client_max_window_bits=12,
    )
    assert opts.offer() == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=10; client_max_window_bits=12"
    )


# (client options, server options, response header, client's agreed, server's agreed)
# agreed = (local_no_context_takeover, remote_no_context_takeover, local_max_window_bits, remote_max_window_bits)
NEGOTIATIONS = [
    (DeflateOptions(), DeflateOptions(), "permessage-deflate", (False, False, 15, 15), (False, False, 15, 15)),
    (
        DeflateOptions(server_no_context_takeover=True),
        DeflateOptions(),
        "permessage-deflate; server_no_context_takeover",
        (False, True, 15, 15),
        (True, False, 15, 15),
    ),
    (
        DeflateOptions(client_no_context_takeover=True),
        DeflateOptions(),
        "permessage-deflate; client_no_context_takeover",
        (True, False, 15, 15),
        (False, True, 15, 15),
    ),
    (
        DeflateOptions(server_max_window_bits=10),
        DeflateOptions(),
        "permessage-deflate; server_max_window_bits=10",
        (False, False, 15, 10),
        (False, False, 10, 15),
    ),
    (
        DeflateOptions(client_max_window_bits=12),
        DeflateOptions(),
        "permessage-deflate; client_max_window_bits=12",
        (False, False, 12, 15),
        (False, False, 15, 12),
    ),
    (
        DeflateOptions(),
        DeflateOptions(server_no_context_takeover=True),
        "permessage-deflate; server_no_context_takeover",
        (False, True, 15, 15),
        (True, False, 15, 15),
    ),
    (
        DeflateOptions(),
        DeflateOptions(client_no_context_takeover=True),
        "permessage-deflate; client_no_context_takeover",
        (True, False, 15, 15),
        (False, True, 15, 15),
    ),
    (
        DeflateOptions(),
        DeflateOptions(server_max_window_bits=11),
        "permessage-deflate; server_max_window_bits=11",
        (False, False, 15, 11),
        (False, False, 11, 15),
    ),
    (
        DeflateOptions(),
        DeflateOptions(client_max_window_bits=9),
        "permessage-deflate; client_max_window_bits=9",
        (False, False, 9, 15),
        (False, False, 15, 9),
    ),
    (
        DeflateOptions(server_max_window_bits=12, client_max_window_bits=10),
        DeflateOptions(server_max_window_bits=10, client_max_window_bits=12),
        "permessage-deflate; server_max_window_bits=10; client_max_window_bits=10",
        (False, False, 10, 10),
        (False, False, 10, 10),
    ),
    (
        DeflateOptions(True, True, 9, 9),
        DeflateOptions(True, True, 9, 9),
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
        "server_max_window_bits=9; client_max_window_bits=9",
        (True, True, 9, 9),
        (True, True, 9, 9),
    ),
]


@pytest.mark.parametrize(("client_opts", "server_opts", "response", "client_agreed", "server_agreed"), NEGOTIATIONS)
def test_negotiation_through_deflate_options(
    client_opts: DeflateOptions,
    server_opts: DeflateOptions,
    response: str,
    client_agreed: tuple[bool, bool, int, int],
    server_agreed: tuple[bool, bool, int, int],
) -> None:
    answer = server_opts.accept_offer(params_of(client_opts.offer()))
    assert answer is not None
    header, server_pmd = answer
    assert header == response
    assert pmd_tuple(server_pmd) == server_agreed
    assert pmd_tuple(client_opts.accept_response(params_of(header))) == client_agreed


@pytest.mark.parametrize(("client_opts", "server_opts", "response", "client_agreed", "server_agreed"), NEGOTIATIONS)
def test_negotiation_through_handshakes(
    client_opts: DeflateOptions,
    server_opts: DeflateOptions,
    response: str,
    client_agreed: tuple[bool, bool, int, int],
    server_agreed: tuple[bool, bool, int, int],
) -> None:
    client, server, raw = handshake(client_opts, server_opts)
    assert extension_header(raw) == response
    assert [pmd_tuple(p) for p in client.extensions] == [client_agreed]
    assert [pmd_tuple(p) for p in server.extensions] == [server_agreed]
    assert client.connection().deflate is client.extensions[0]
    assert server.connection().deflate is server.extensions[0]


def test_no_compression_on_either_side_negotiates_nothing() -> None:
    for client_opts, server_opts in [(None, DeflateOptions()), (DeflateOptions(), None), (None, None)]:
        client, server, raw = handshake(client_opts, server_opts)
        assert extension_header(raw) is None
        assert client.extensions == server.extensions == []


# Window bits outside 8-15 or not in canonical decimal form.
BAD_WINDOW_BITS = [
    [(param, value)]
    for param in ("server_max_window_bits", "client_max_window_bits")
    for value in ("7", "16", "08", "abc")
]

INVALID_OFFER_PARAMS = [
    [("foo", None)],
    [("foo", "1")],
    [("server_no_context_takeover", None), ("server_no_context_takeover", None)],
    [("client_max_window_bits", None), ("client_max_window_bits", "10")],
    [("server_no_context_takeover", "1")],
    [("client_no_context_takeover", "x")],
    [("server_max_window_bits", None)],
    [("server_max_window_bits", "")],
    *BAD_WINDOW_BITS,
]


@pytest.mark.parametrize("params", INVALID_OFFER_PARAMS)
def test_accept_offer_raises_handshake_error_on_invalid_params(params: list[tuple[str, str | None]]) -> None:
    with pytest.raises(HandshakeError):
        DeflateOptions().accept_offer(params)


INVALID_RESPONSE_PARAMS = [
    [("foo", None)],
    [("server_no_context_takeover", None), ("server_no_context_takeover", None)],
    [("server_no_context_takeover", "1")],
    [("client_no_context_takeover", "1")],
    [("server_max_window_bits", None)],
    [("client_max_window_bits", None)],
    *BAD_WINDOW_BITS,
]


@pytest.mark.parametrize("params", INVALID_RESPONSE_PARAMS)
def test_accept_response_raises_handshake_error_on_invalid_params(params: list[tuple[str, str | None]]) -> None:
    with pytest.raises(HandshakeError):
        DeflateOptions().accept_response(params)


@pytest.mark.parametrize(
    "value",
    [
        "permessage-deflate; foo",
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; client_no_context_takeover=1",
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    ],
)
def test_client_handshake_fails_on_invalid_response_params(value: str) -> None:
    client = ClientHandshake("example.com", compression=DeflateOptions())
    response = (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(client.key)}\r\nSec-WebSocket-Extensions: {value}\r\n\r\n"
    ).encode()
    with pytest.raises(HandshakeError) as info:
        client.receive_data(response)
    assert info.value.status == 101


def test_server_must_include_server_no_context_takeover_if_offered() -> None:
    answer = DeflateOptions().accept_offer([("server_no_context_takeover", None)])
    assert answer is not None
    assert "server_no_context_takeover" in [name for name, _ in params_of(answer[0])]
    assert answer[1].local_no_context_takeover
    with pytest.raises(HandshakeError):
        DeflateOptions(server_no_context_takeover=True).accept_response([])


def test_client_rejects_server_max_window_bits_larger_than_offered_or_missing() -> None:
    opts = DeflateOptions(server_max_window_bits=10)
    with pytest.raises(HandshakeError):
        opts.accept_response([("server_max_window_bits", "11")])
    with pytest.raises(HandshakeError):
        opts.accept_response([])
    assert opts.accept_response([("server_max_window_bits", "9")]).remote_max_window_bits == 9


def test_client_rejects_client_max_window_bits_larger_than_offered() -> None:
    opts = DeflateOptions(client_max_window_bits=10)
    with pytest.raises(HandshakeError):
        opts.accept_response([("client_max_window_bits", "11")])
    assert opts.accept_response([("client_max_window_bits", "9")]).local_max_window_bits == 9
    assert opts.accept_response([]).local_max_window_bits == 10


def test_server_declines_when_it_requires_client_max_window_bits_the_client_did_not_offer() -> None:
    opts = DeflateOptions(client_max_window_bits=10)
    assert opts.accept_offer([]) is None
    answer = opts.accept_offer([("client_max_window_bits", None)])
    assert answer is not None
    assert answer[0] == "permessage-deflate; client_max_window_bits=10"


def test_server_handshake_declines_offer_without_client_max_window_bits_and_takes_the_next() -> None:
    server = ServerHandshake(compression=DeflateOptions(client_max_window_bits=10))
    request = _request("permessage-deflate")
    response = server.accept(request)
    assert extension_header(response) is None
    assert server.extensions == []
    server = ServerHandshake(compression=DeflateOptions(client_max_window_bits=10))
    response = server.accept(_request("permessage-deflate, permessage-deflate; client_max_window_bits"))
    assert extension_header(response) == "permessage-deflate; client_max_window_bits=10"
    assert [pmd_tuple(p) for p in server.extensions] == [(False, False, 15, 10)]


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate; foo=1, permessage-deflate",
        "permessage-deflate; server_max_window_bits=7, permessage-deflate",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover, permessage-deflate",
    ],
)
def test_server_handshake_declines_an_invalid_offer_and_accepts_the_next(offer: str) -> None:
    # RFC 7692 section 7: "A server MUST decline an extension negotiation offer
    # for this extension if" it has an unknown parameter, an invalid value or
    # a duplicate parameter -- decline, not refuse the handshake.
    server = ServerHandshake(compression=DeflateOptions())
    response = server.accept(_request(offer))
    assert response.startswith(b"HTTP/1.1 101 ")
    assert extension_header(response) == "permessage-deflate"
    assert len(server.extensions) == 1


def test_server_handshake_skips_unknown_extensions() -> None:
    server = ServerHandshake(compression=DeflateOptions())
    response = server.accept(_request("x-webkit-deflate-frame, permessage-deflate; client_max_window_bits"))
    assert extension_header(response) == "permessage-deflate"


def test_client_handshake_rejects_a_second_accepted_extension() -> None:
    client = ClientHandshake("example.com", compression=DeflateOptions())
    response = (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(client.key)}\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate, permessage-deflate\r\n\r\n"
    ).encode()
    with pytest.raises(HandshakeError):
        client.receive_data(response)


def _request(extensions: str) -> Request:
    raw = (
        "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Extensions: {extensions}\r\n\r\n"
    ).encode()
    request = HeadReader(is_request=True).feed(raw)
    assert isinstance(request, Request)
    return request


# -- compressed round trips (section 7.2) --------------------------------------

OPTION_SETS = [
    DeflateOptions(),
    DeflateOptions(server_no_context_takeover=True),
    DeflateOptions(client_no_context_takeover=True),
    DeflateOptions(server_no_context_takeover=True, client_no_context_takeover=True),
    DeflateOptions(server_max_window_bits=9, client_max_window_bits=9),
    DeflateOptions(server_max_window_bits=12, client_max_window_bits=10, client_no_context_takeover=True),
]

MESSAGES = [
    "Hello",
    "Hello",
    "",
    "ünïcödé 😀 " * 50,
    "x" * 70000,
    "Hello",
]


def _send(conn: Connection, message: str | bytes, fragmented: bool) -> bytes:
    if not fragmented:
        return conn.send_text(message) if isinstance(message, str) else conn.send_binary(message)
    data = message.encode() if isinstance(message, str) else message
    third = len(data) // 3
    first = (
        conn.send_text(data[:third], fin=False)
        if isinstance(message, str)
        else conn.send_binary(data[:third], fin=False)
    )
    return (
        first
        + conn.send_continuation(data[third : 2 * third], fin=False)
        + conn.send_continuation(data[2 * third :], fin=True)
    )


def _expected(message: str | bytes) -> TextReceived | BinaryReceived:
    return TextReceived(message) if isinstance(message, str) else BinaryReceived(message)


@pytest.mark.parametrize("opts", OPTION_SETS, ids=repr)
@pytest.mark.parametrize("fragmented", [False, True], ids=["single", "fragmented"])
@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_compressed_messages_round_trip_both_ways(opts: DeflateOptions, fragmented: bool, binary: bool) -> None:
    client, server = connected(opts, DeflateOptions())
    messages = [m.encode() if binary else m for m in MESSAGES]
    for sender, receiver in ((client, server), (server, client)):
        for message in messages:
            wire = _send(sender, message, fragmented)
            sent = parse_sent(sender, wire)
            assert sent[0][0] & 0x40, "RSV1 set on the first frame of a compressed message"
            assert all(not b0 & 0x40 for b0, _ in sent[1:]), "RSV1 only on the first frame"
            assert receiver.receive_data(wire) == [_expected(message)]
        # the same, fed byte by byte
        wire = _send(sender, messages[3], fragmented)
        events = []
        for i in range(len(wire)):
            events += receiver.receive_data(wire[i : i + 1])
        assert events == [_expected(messages[3])]


def test_context_takeover_shrinks_a_repeated_message_and_no_context_takeover_does_not() -> None:
    message = "The quick brown fox jumps over the lazy dog. " * 4
    client, server = connected(DeflateOptions(), DeflateOptions())
    first, second = server.send_text(message), server.send_text(message)
    assert len(second) < len(first)
    assert client.receive_data(first + second) == [TextReceived(message)] * 2
    client, server = connected(DeflateOptions(server_no_context_takeover=True), DeflateOptions())
    first, second = server.send_text(message), server.send_text(message)
    assert first == second
    assert client.receive_data(first + second) == [TextReceived(message)] * 2


def test_compressed_messages_interleaved_with_control_frames() -> None:
    client, server = connected(DeflateOptions(), DeflateOptions())
    wire = (
        client.send_text("Hello, ", fin=False)
        + client.send_ping(b"ping")
        + client.send_continuation("world", fin=False)
        + client.send_pong(b"pong")
        + client.send_continuation("!", fin=True)
    )
    assert server.receive_data(wire) == [
        PingReceived(b"ping"),
        PongReceived(b"pong", ()),
        TextReceived("Hello, world!"),
    ]


def test_compressed_message_ending_with_empty_fragment_round_trips() -> None:
    client, server = connected(DeflateOptions(), DeflateOptions())
    wire = client.send_text("abc", fin=False) + client.send_continuation(b"", fin=True)
    assert server.receive_data(wire) == [TextReceived("abc")]
    wire = client.send_binary(b"", fin=False) + client.send_continuation(b"", fin=True)
    assert server.receive_data(wire) == [BinaryReceived(b"")]


def test_control_frames_are_never_compressed() -> None:
    client, server = connected(DeflateOptions(), DeflateOptions())
    for wire in (client.send_ping(b"hello hello hello"), client.send_pong(b"hello hello hello")):
        assert [b0 for b0, _ in parse_sent(client, wire)] in ([0x89], [0x8A])
    server.receive_data(client.send_ping(b"abcabcabcabc"))
    assert parse_sent(server, server.data_to_send()) == [(0x8A, b"abcabcabcabc")]
    close = client.send_close(1000, "bye bye bye bye")
    assert parse_sent(client, close) == [(0x88, (1000).to_bytes(2, "big") + b"bye bye bye bye")]
    assert server.receive_data(close) == [CloseReceived(1000, "bye bye bye bye")]
    assert parse_sent(server, server.data_to_send()) == [(0x88, (1000).to_bytes(2, "big"))]


# -- limits --------------------------------------------------------------------


@functools.cache
def _bomb() -> bytes:
    """100 MB of zeros, deflated (about 100 KB), with the RFC 7692 tail stripped."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = bytes(2**20)
    data = b"".join(co.compress(chunk) for _ in range(100)) + co.flush(zlib.Z_SYNC_FLUSH)
    assert data.endswith(TAIL)
    return data[:-4]


@pytest.mark.parametrize("opcode", [0x1, 0x2])
def test_deflate_bomb_fails_with_1009(opcode: int) -> None:
    server = Connection(Role.SERVER, extensions=[PerMessageDeflate()], max_message_size=2**20)
    events = server.receive_data(from_client(0x80 | 0x40 | opcode, _bomb()))
    assert len(events) == 1
    assert isinstance(events[0], ConnectionFailed)
    assert events[0].code == 1009


def test_fragmented_deflate_bomb_fails_with_1009_before_the_last_fragment() -> None:
    server = Connection(Role.SERVER, extensions=[PerMessageDeflate()], max_message_size=2**20)
    bomb = _bomb()
    step = len(bomb) // 10
    events = server.receive_data(from_client(0x42, bomb[:step]))
    i = step
    while not events and i < len(bomb) - step:
        events = server.receive_data(from_client(0x00, bomb[i : i + step]))
        i += step
    assert len(events) == 1
    assert isinstance(events[0], ConnectionFailed)
    assert events[0].code == 1009
    assert i < len(bomb) - step


def test_decompressed_size_limit_is_exact() -> None:
    limit = 2**20
    for size, ok in ((limit, True), (limit + 1, False)):
        co = zlib.compressobj(6, zlib.DEFLATED, -15)
        payload = (co.compress(bytes(size)) + co.flush(zlib.Z_SYNC_FLUSH))[:-4]
        server = Connection(Role.SERVER, extensions=[PerMessageDeflate()], max_message_size=limit)
        events = server.receive_data(from_client(0xC2, payload))
        if ok:
            assert events == [BinaryReceived(bytes(size))]
        else:
            assert len(events) == 1
            assert isinstance(events[0], ConnectionFailed)
            assert events[0].code == 1009


def test_unlimited_message_size_still_decompresses() -> None:
    client = Connection(Role.CLIENT, extensions=[PerMessageDeflate()])
    server = Connection(Role.SERVER, extensions=[PerMessageDeflate()], max_message_size=None)
    assert server.receive_data(client.send_text("hello")) == [TextReceived("hello")]


def test_invalid_compressed_data_fails_the_connection_with_1007() -> None:
    server = Connection(Role.SERVER, extensions=[PerMessageDeflate()])
    events = server.receive_data(from_client(0xC1, b"\xff\xff\xff\xff"))
    assert len(events) == 1
    assert isinstance(events[0], ConnectionFailed)
    assert events[0].code == 1007


def test_compressed_text_that_is_not_utf8_fails_with_1007() -> None:
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    payload = (co.compress(b"bad \xff") + co.flush(zlib.Z_SYNC_FLUSH))[:-4]
    server = Connection(Role.SERVER, extensions=[PerMessageDeflate()])
    events = server.receive_data(from_client(0xC1, payload))
    assert len(events) == 1
    assert isinstance(events[0], ConnectionFailed)
    assert events[0].code == 1007


# -- 8-bit windows ---------------------------------------------------------------


def test_local_max_window_bits_8_sends_uncompressed_messages_that_are_still_understood() -> None:
    sender = Connection(Role.CLIENT, extensions=[PerMessageDeflate(local_max_window_bits=8)])
    receiver = Connection(Role.SERVER, extensions=[PerMessageDeflate(remote_max_window_bits=8)])
    for _ in range(2):
        wire = sender.send_text("Hello Hello Hello")
        assert parse_sent(sender, wire) == [(0x81, b"Hello Hello Hello")]
        assert receiver.receive_data(wire) == [TextReceived("Hello Hello Hello")]
    wire = sender.send_binary(b"ab", fin=False) + sender.send_continuation(b"cd", fin=True)
    assert parse_sent(sender, wire) == [(0x02, b"ab"), (0x80, b"cd")]
    assert receiver.receive_data(wire) == [BinaryReceived(b"abcd")]


def test_negotiated_8_bit_windows_send_uncompressed_both_ways() -> None:
    opts = DeflateOptions(server_max_window_bits=8, client_max_window_bits=8)
    client, server = connected(opts, DeflateOptions())
    assert client.deflate is not None and server.deflate is not None
    assert client.deflate.local_max_window_bits == server.deflate.local_max_window_bits == 8
    wire = client.send_text("client client")
    assert not wire[0] & 0x40
    assert server.receive_data(wire) == [TextReceived("client client")]
    wire = server.send_text("server server")
    assert wire == b"\x81\x0dserver server"
    assert client.receive_data(wire) == [TextReceived("server server")]


# -- interop and RFC 7692 section 7.2.3 examples ----------------------------------


def test_message_compressed_by_plain_zlib_is_decoded() -> None:
    co = zlib.compressobj(wbits=-15)
    client = Connection(Role.CLIENT, extensions=[PerMessageDeflate()])
    for text in ("interop " * 10, "interop " * 11, "other"):
        payload = co.compress(text.encode()) + co.flush(zlib.Z_SYNC_FLUSH)
        assert payload.endswith(TAIL)
        assert client.receive_data(from_server(0xC1, payload[:-4])) == [TextReceived(text)]


def test_message_compressed_by_ws4py_is_decoded_by_plain_zlib() -> None:
    server = Connection(Role.SERVER, extensions=[PerMessageDeflate()])
    decoder = zlib.decompressobj(wbits=-15)
    for text in ("abc " * 30, "abc " * 31):
        ((b0, payload),) = parse_sent(server, server.send_text(text))
        assert b0 == 0xC1
        assert decoder.decompress(payload + TAIL) == text.encode()


def test_rfc7692_example_hello_compressed_byte_for_byte() -> None:
    # 7.2.3.1 and 7.2.3.2: "Hello", then "Hello" again sharing the LZ77 window.
    server = Connection(Role.SERVER, extensions=[PerMessageDeflate()])
    assert server.send_text("Hello") == bytes([0xC1, 0x07, 0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
    assert server.send_text("Hello") == bytes([0xC1, 0x05, 0xF2, 0x00, 0x11, 0x00, 0x00])


@pytest.mark.parametrize(
    "wire",
    [
        # 7.2.3.1: one compressed DEFLATE block
        [bytes([0xC1, 0x07, 0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])],
        # 7.2.3.1: the same, fragmented
        [bytes([0x41, 0x03, 0xF2, 0x48, 0xCD]), bytes([0x80, 0x04, 0xC9, 0xC9, 0x07, 0x00])],
        # 7.2.3.3: a DEFLATE block with no compression
        [bytes([0xC1, 0x0B, 0x00, 0x05, 0x00, 0xFA, 0xFF, 0x48, 0x65, 0x6C, 0x6C, 0x6F, 0x00])],
        # 7.2.3.4: a DEFLATE block with BFINAL set to 1
        [bytes([0xC1, 0x08, 0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00, 0x00])],
        # 7.2.3.5: two DEFLATE blocks in one message
        [bytes([0xC1, 0x0D, 0xF2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xCA, 0xC9, 0xC9, 0x07, 0x00])],
    ],
    ids=["one-block", "fragmented", "stored-block", "bfinal", "two-blocks"],
)
def test_rfc7692_examples_decode_to_hello(wire: list[bytes]) -> None:
    client = Connection(Role.CLIENT, extensions=[PerMessageDeflate()])
    events = []
    for frame in wire:
        events += client.receive_data(frame)
    assert events == [TextReceived("Hello")]


def test_rfc7692_shared_window_example_decodes_to_hello_twice() -> None:
    client = Connection(Role.CLIENT, extensions=[PerMessageDeflate()])
    wire = bytes([0xC1, 0x07, 0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00, 0xC1, 0x05, 0xF2, 0x00, 0x11, 0x00, 0x00])
    assert client.receive_data(wire) == [TextReceived("Hello"), TextReceived("Hello")]


def test_message_after_a_bfinal_message_is_still_decoded() -> None:
    # 7.2.3.4 lets a sender flush with a BFINAL=1 block; the next message must
    # still decode, not come out empty.
    client = Connection(Role.CLIENT, extensions=[PerMessageDeflate()])
    bfinal = bytes([0xC1, 0x08, 0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00, 0x00])
    sync = bytes([0xC1, 0x07, 0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])
    assert client.receive_data(bfinal) == [TextReceived("Hello")]
    assert client.receive_data(sync) == [TextReceived("Hello")]
    assert client.receive_data(bfinal) == [TextReceived("Hello")]


def test_peer_finishing_each_message_with_z_finish_is_decoded() -> None:
    client = Connection(Role.CLIENT, extensions=[PerMessageDeflate()])
    for text in ("first message", "second message", "third"):
        co = zlib.compressobj(wbits=-15)
        payload = co.compress(text.encode()) + co.flush(zlib.Z_FINISH)
        assert client.receive_data(from_server(0xC1, payload)) == [TextReceived(text)]
