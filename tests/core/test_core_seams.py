"""What the core tells its adapters: when to end TCP, how a fragmented message goes out, what a URI means."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ws4py.exc import InvalidState, ProtocolException, StreamClosed
from ws4py.protocol import (
    Connection,
    OutgoingFragments,
    Role,
    State,
    TransportAction,
    frame_fragments,
    frames,
)
from ws4py.protocol.uri import WebSocketURI, parse_uri

KEY = b"\x11\x22\x33\x44"


def _peer_frame(conn: Connection, b0: int, payload: bytes = b"") -> bytes:
    """A frame as ``conn``'s peer sends it (masked toward a server)."""
    return frames.build_frame(b0, payload, None if conn.is_client else KEY)


def _sent(conn: Connection, data: bytes) -> list[tuple[int, bytes]]:
    parsed, pos, error = frames.parse_frames(data, 0, conn.is_client, 0x70, 2**63 - 1)
    assert error is None and pos == len(data)
    return [(b0, bytes(payload) if not isinstance(payload, str) else payload.encode()) for b0, payload in parsed]


# -- transport_action ------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT])
def test_an_open_connection_keeps_its_transport(role: Role) -> None:
    conn = Connection(role)
    assert conn.transport_action is TransportAction.KEEP
    conn.send_close(1000)
    assert conn.state is State.CLOSING
    assert conn.transport_action is TransportAction.KEEP  # the peer's close has not come yet


@pytest.mark.parametrize(
    ("role", "action"), [(Role.SERVER, TransportAction.CLOSE), (Role.CLIENT, TransportAction.AWAIT_CLOSE)]
)
def test_after_a_clean_close_the_server_closes_tcp_first_and_the_client_waits(
    role: Role, action: TransportAction
) -> None:
    # We start the closing handshake; the peer answers.
    conn = Connection(role)
    conn.send_close(1000)
    conn.receive_data(_peer_frame(conn, 0x88, (1000).to_bytes(2, "big")))
    assert conn.state is State.CLOSED
    assert conn.transport_action is action
    # The peer starts it; we echo.
    conn = Connection(role)
    conn.receive_data(_peer_frame(conn, 0x88, (1000).to_bytes(2, "big")))
    assert conn.transport_action is TransportAction.KEEP  # the echo is not out yet
    assert conn.data_to_send()
    assert conn.transport_action is action


@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT])
def test_after_a_failure_both_sides_half_close_once_their_close_is_written(role: Role) -> None:
    conn = Connection(role)
    conn.receive_data(_peer_frame(conn, 0x83))  # a reserved opcode
    assert conn.failure is not None
    assert conn.transport_action is TransportAction.KEEP  # our close frame is still owed
    reply = conn.data_to_send()
    assert _sent(conn, reply) == [(0x88, (1002).to_bytes(2, "big") + _sent(conn, reply)[0][1][2:])]
    assert conn.transport_action is TransportAction.HALF_CLOSE


@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT])
def test_after_the_peer_closed_tcp_the_transport_is_closed(role: Role) -> None:
    conn = Connection(role)
    conn.receive_eof()
    assert conn.eof_received
    assert conn.close_code == 1006
    assert conn.transport_action is TransportAction.CLOSE
    # Also after a failure, and after a clean close a client waited on: the peer's EOF ends it.
    conn = Connection(role)
    conn.receive_data(_peer_frame(conn, 0x83))
    conn.data_to_send()
    conn.receive_eof()
    assert conn.transport_action is TransportAction.CLOSE


# -- fragmented sends --------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.SERVER, Role.CLIENT])
def test_fragments_carry_fin_on_the_last_chunk_with_no_empty_final_frame(role: Role) -> None:
    conn = Connection(role)
    out = b"".join(frame_fragments(conn, ["frag", "mén", b"ted"], binary=False))
    assert _sent(conn, out) == [(0x01, b"frag"), (0x00, "mén".encode()), (0x80, b"ted")]
    out = b"".join(frame_fragments(conn, [b"\x00", b"\x01"]))
    assert _sent(conn, out) == [(0x02, b"\x00"), (0x80, b"\x01")]
    assert conn.send_text("after") != b""  # the connection takes whole messages again


def test_one_chunk_is_one_final_frame_and_no_chunk_is_one_empty_message() -> None:
    conn = Connection(Role.SERVER)
    assert _sent(conn, b"".join(frame_fragments(conn, ["only"]))) == [(0x81, b"only")]
    assert _sent(conn, b"".join(frame_fragments(conn, []))) == [(0x81, b"")]
    assert _sent(conn, b"".join(frame_fragments(conn, [], binary=True))) == [(0x82, b"")]


def test_the_first_chunk_decides_the_type_when_none_is_given_and_a_mix_is_refused() -> None:
    conn = Connection(Role.SERVER)
    message = OutgoingFragments(conn)
    assert message.add("text") == b""
    with pytest.raises(TypeError):
        message.add(b"bytes")
    with pytest.raises(TypeError):
        OutgoingFragments(conn).add(42)  # type: ignore[arg-type]


def test_a_chunk_is_framed_only_when_the_next_comes_and_other_messages_wait() -> None:
    conn = Connection(Role.SERVER)
    message = OutgoingFragments(conn, binary=True)
    assert message.add(b"a") == b""
    assert message.add(b"b") == b"\x02\x01a"
    with pytest.raises(InvalidState):
        conn.send_text("inside a fragmented message")
    assert conn.send_ping(b"p") == b"\x89\x01p"  # control frames may go in between
    assert message.end() == b"\x80\x01b"


def test_str_chunks_of_a_binary_message_are_encoded() -> None:
    conn = Connection(Role.SERVER)
    assert _sent(conn, b"".join(frame_fragments(conn, ["é", "x"], binary=True))) == [(0x02, "é".encode()), (0x80, b"x")]


# -- caller misuse ---------------------------------------------------------------


def test_sending_on_a_closed_connection_is_caller_misuse_not_a_protocol_error() -> None:
    conn = Connection(Role.SERVER)
    conn.send_close(1000)
    for send in (lambda: conn.send_text("x"), lambda: conn.send_binary(b"x"), lambda: conn.send_ping(b"")):
        with pytest.raises(InvalidState) as raised:
            send()
        assert isinstance(raised.value, StreamClosed) and isinstance(raised.value, RuntimeError)
        assert not isinstance(raised.value, ProtocolException)


# -- URIs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "parsed"),
    [
        ("ws://example.com", WebSocketURI(False, "example.com", 80, "/")),
        ("wss://example.com/chat?room=1#frag", WebSocketURI(True, "example.com", 443, "/chat?room=1")),
        ("ws://[::1]:9000/", WebSocketURI(False, "::1", 9000, "/")),
        ("WS://Example.com:81/a", WebSocketURI(False, "example.com", 81, "/a")),
    ],
)
def test_a_websocket_uri_gives_host_port_and_resource(uri: str, parsed: WebSocketURI) -> None:
    assert parse_uri(uri) == parsed


def test_unix_socket_uris_only_where_asked_for() -> None:
    assert parse_uri("ws+unix:///tmp/s.sock", unix=True) == WebSocketURI(False, "localhost", None, "/", "/tmp/s.sock")
    with pytest.raises(ValueError, match="not a WebSocket URI"):
        parse_uri("ws+unix:///tmp/s.sock")


@pytest.mark.parametrize(
    ("uri", "message"),
    [("http://example.com/", "not a WebSocket URI"), ("ws:///path", "no host"), ("ws://h:99999/", "invalid port")],
)
def test_a_bad_uri_is_a_value_error_saying_what_is_wrong(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_uri(uri)


# -- what importing the core costs ---------------------------------------------------


def test_importing_the_core_loads_no_sockets_threads_or_logging() -> None:
    code = (
        "import sys; before = set(sys.modules); import ws4py.protocol, ws4py.protocol.uri;"
        "print(' '.join(sorted(m for m in set(sys.modules) - before"
        " if m.split('.')[0] in ('socket', '_socket', 'threading', 'logging', 'ssl', 'selectors', 'asyncio'))))"
    )
    loaded = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.split() == []
