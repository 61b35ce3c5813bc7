"""The closing handshake, who closes TCP first (RFC 6455 7.1.1), and terminate()."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from threaded_support import (
    OP_CLOSE,
    TIMEOUT,
    RawClient,
    RawPeer,
    RawServer,
    RecordingClient,
    Request,
    Server,
    parse_close,
    switching_protocols,
)

# The server must drop TCP right after the exchange, not after a timeout.
PROMPTLY = 1.0


def test_server_close_code_and_reason_reach_the_peer(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        ws.close(4001, "shutting this one")
        close = peer.recv_frame()
        assert close.opcode == OP_CLOSE
        assert parse_close(close.payload) == (4001, "shutting this one")
        peer.send_frame(OP_CLOSE, close.payload)
        peer.assert_eof(PROMPTLY)
        assert ws.wait_closed() == (4001, "shutting this one")


def test_server_drops_tcp_first_when_the_client_starts_the_close(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        peer.send_close(1000, "client done")
        echo = peer.recv_frame()
        assert echo.opcode == OP_CLOSE
        assert parse_close(echo.payload)[0] == 1000
        peer.assert_eof(PROMPTLY)
        assert ws.wait_closed() == (1000, "client done")


def test_server_drops_tcp_first_when_it_starts_the_close(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        ws.close(1001, "bye")
        close = peer.recv_frame()
        assert parse_close(close.payload) == (1001, "bye")
        peer.send_close(1001)
        peer.assert_eof(PROMPTLY)
        ws.wait_closed()


def test_close_is_sent_once(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        ws.close(1000, "first")
        ws.close(1001, "second")
        assert parse_close(peer.recv_frame().payload) == (1000, "first")
        peer.send_close(1000)
        peer.assert_eof(PROMPTLY)  # and no second close frame before it
        ws.close(1002, "after the end")
        assert ws.wait_closed()[0] == 1000


def test_messages_sent_before_the_close_are_delivered_before_it(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        for i in range(5):
            ws.send(f"m{i}")
        ws.close()
        frames, close = peer.recv_frames_until_close()
        assert [f.payload for f in frames] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
        peer.send_frame(OP_CLOSE, close.payload)
        peer.assert_eof(PROMPTLY)


def test_messages_received_with_the_peers_close_are_still_delivered(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        peer.send_text("last words")
        peer.send_close(1000)
        assert ws.wait_closed()[0] == 1000
        assert [str(m) for m in ws.messages] == ["last words"]
        kinds = [kind for kind, _, _ in ws.calls]
        assert kinds.index("message") < kinds.index("closed")


def test_client_close_reaches_the_server_and_completes_when_it_drops_tcp(raw_server: RawServer) -> None:
    seen: dict[str, Any] = {}

    def handler(sock: socket.socket, request: Request) -> None:
        sock.sendall(switching_protocols(request))
        peer = RawPeer(sock, b"", is_client=False)
        close = peer.recv_frame()
        seen["close"] = (close.masked, parse_close(close.payload))
        peer.send_frame(OP_CLOSE, close.payload[:2])
        # the handler returns: the server closes TCP

    raw_server.serve(handler)
    client = RecordingClient(raw_server.url())
    client.connect()
    client.close(1000, "see you")
    assert client.wait_closed() == (1000, "")
    client.run_forever()
    raw_server.join()
    assert seen["close"] == (True, (1000, "see you")), "a client masks its close"


def test_client_echoes_the_servers_close_and_lets_the_server_drop_tcp_first(raw_server: RawServer) -> None:
    client: RecordingClient | None = None
    seen: dict[str, Any] = {}

    def handler(sock: socket.socket, request: Request) -> None:
        sock.sendall(switching_protocols(request))
        peer = RawPeer(sock, b"", is_client=False)
        peer.send_frame(OP_CLOSE, b"\x03\xe9server leaving")
        echo = peer.recv_frame()
        seen["echo"] = (echo.opcode, echo.masked, parse_close(echo.payload)[0])
        # The client waits for us to close TCP: no EOF, and closed() not yet called.
        peer.assert_silent(0.3)
        assert client is not None
        seen["closed_before_drop"] = client.closed_event.is_set()

    raw_server.serve(handler)
    client = RecordingClient(raw_server.url())
    client.connect()
    assert client.wait_closed() == (1001, "server leaving")
    client.run_forever()
    raw_server.join()
    assert seen["echo"] == (OP_CLOSE, True, 1001)
    assert seen["closed_before_drop"] is False


def test_terminate_drops_tcp_without_a_close_frame(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        assert not ws.terminated
        ws.terminate()
        peer.assert_eof(TIMEOUT)
        assert ws.wait_closed()[0] == 1006
        assert ws.terminated
        assert ws.sock.fileno() == -1, "the socket is closed"


def test_terminate_on_the_client_calls_closed_with_1006_and_ends_its_thread(connect: Any) -> None:
    client, ws = connect()
    client.terminate()
    assert client.wait_closed()[0] == 1006
    client.run_forever()
    assert client.terminated
    assert ws.wait_closed()[0] == 1006


def test_terminated_is_true_only_once_the_connection_is_over(connect: Any) -> None:
    client, ws = connect()
    assert not client.terminated and not ws.terminated
    client.send("still open")
    ws.wait_messages(1)
    assert not client.terminated and not ws.terminated
    ws.close()
    client.wait_closed()
    ws.wait_closed()
    assert client.terminated and ws.terminated


def test_a_peer_that_sends_data_after_its_close_is_ignored(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        peer.send_close(1000)
        peer.send_text("after close")
        assert ws.wait_closed()[0] == 1000
        assert peer.recv_frame().opcode == OP_CLOSE
        assert ws.messages == []


def test_close_with_a_code_that_may_not_be_sent_raises_and_keeps_the_connection(connect: Any) -> None:
    client, ws = connect()
    for code in (999, 1005, 1006, 1015):
        with pytest.raises(ValueError):
            client.close(code)
    with pytest.raises(ValueError):
        client.close(1000, "x" * 124)  # over 123 bytes of reason
    client.send("still open")
    assert str(ws.wait_messages(1)[0]) == "still open"
