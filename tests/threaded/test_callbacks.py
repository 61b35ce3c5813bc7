"""WebSocket callbacks: which, with what, in which order, on which thread, how often."""

from __future__ import annotations

import socket
import threading
from typing import Any

from threaded_support import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RawClient,
    RawServer,
    RecordingClient,
    RecordingWebSocket,
    Request,
    ServeFactory,
    Server,
    build_frame,
    parse_close,
    switching_protocols,
)

from ws4py.messaging import BinaryMessage, PongControlMessage, TextMessage


def test_opened_runs_before_any_received_message(server: Server) -> None:
    # The first frame travels in the same segment as the upgrade request.
    peer = RawClient(server.port, first_bytes=build_frame(OP_TEXT, b"early"))
    with peer.sock:
        peer.send_text("later")
        ws = server.accept()
        ws.wait_messages(2)
        kinds = [kind for kind, _, _ in ws.calls]
        assert kinds[:3] == ["opened", "message", "message"]
        assert [str(m) for m in ws.messages] == ["early", "later"]


def test_received_message_gets_text_and_binary_message_objects(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        peer.send_frame(OP_TEXT, "ünïcode".encode())
        peer.send_frame(OP_BINARY, b"\x00\xffbin")
        ws = server.accept()
        text, binary = ws.wait_messages(2)
        assert isinstance(text, TextMessage)
        assert text.is_text and not text.is_binary
        assert str(text) == "ünïcode"
        assert text.data == "ünïcode".encode()
        assert len(text) == 7
        assert text.completed
        assert isinstance(binary, BinaryMessage)
        assert binary.is_binary and not binary.is_text
        assert binary.data == b"\x00\xffbin"
        assert len(binary) == 5


def test_fragmented_message_from_the_peer_arrives_as_one_message(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        peer.send_frame(OP_TEXT, b"one ", fin=False)
        peer.send_frame(OP_PING, b"in between")
        peer.send_frame(0x0, b"two ", fin=False)
        peer.send_frame(0x0, b"three", fin=True)
        ws = server.accept()
        assert [str(m) for m in ws.wait_messages(1)] == ["one two three"]
        pong = peer.recv_frame()
        assert (pong.opcode, pong.payload) == (OP_PONG, b"in between")


def test_ponged_gets_a_pong_control_message(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        peer.send_frame(OP_PONG, b"unsolicited")
        ws = server.accept()
        (pong,) = ws.wait_for("pong")
        assert isinstance(pong, PongControlMessage)
        assert pong.data == b"unsolicited"


def test_closed_gets_the_peers_code_and_reason(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        peer.send_close(4321, "app says bye")
        assert ws.wait_closed() == (4321, "app says bye")
        echo = peer.recv_frame()
        assert echo.opcode == OP_CLOSE
        assert parse_close(echo.payload)[0] == 4321


def test_closed_gets_1005_for_a_close_frame_without_a_code(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        peer.send_frame(OP_CLOSE, b"")
        code, _ = ws.wait_closed()
        assert code == 1005


def test_server_closed_gets_1006_when_tcp_dies_without_a_close_frame(server: Server) -> None:
    peer = RawClient(server.port)
    ws = server.accept()
    peer.close()
    code, _ = ws.wait_closed()
    assert code == 1006


def test_client_closed_gets_1006_when_tcp_dies_without_a_close_frame(raw_server: RawServer) -> None:
    def drop_after_handshake(sock: Any, request: Request) -> None:
        sock.sendall(switching_protocols(request))

    raw_server.serve(drop_after_handshake)
    client = RecordingClient(raw_server.url())
    client.connect()
    code, _ = client.wait_closed()
    assert code == 1006
    client.run_forever()


def test_closed_gets_1002_and_the_peer_a_close_when_it_breaks_the_protocol(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        peer.sock.sendall(build_frame(OP_TEXT, b"unmasked from a client", mask=False))
        close = peer.recv_frame()
        assert close.opcode == OP_CLOSE
        assert parse_close(close.payload)[0] == 1002
        # The peer ends TCP, as it should after a close: the server need not wait out close_timeout.
        peer.sock.shutdown(socket.SHUT_WR)
        code, _ = ws.wait_closed()
        assert code == 1002
        peer.assert_eof()


def test_closed_is_called_exactly_once(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        peer.send_close(1000)
        ws.wait_closed()
        assert peer.recv_frame().opcode == OP_CLOSE
        peer.assert_eof()
    # Asking again (from this thread and from the manager's) changes nothing.
    ws.terminate()
    ws.close()
    server.stop()
    assert len(ws.values("closed")) == 1
    assert ws.terminated


def test_server_callbacks_all_run_on_the_manager_thread(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        peer.send_text("a")
        peer.send_frame(OP_BINARY, b"b")
        peer.send_frame(OP_PONG, b"c")
        ws = server.accept()
        ws.wait_messages(2)
        ws.wait_for("pong")
        peer.send_close()
        ws.wait_closed()
    threads = {ident for _, _, ident in ws.calls}
    assert threads == {server.manager.ident}
    assert [kind for kind, _, _ in ws.calls] == ["opened", "message", "message", "pong", "closed"]


def test_closed_runs_on_the_manager_thread_when_terminate_is_called_elsewhere(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        assert threading.get_ident() != server.manager.ident
        ws.terminate()
        code, _ = ws.wait_closed()
        assert code == 1006
        peer.assert_eof()
    (_, _, ident) = ws.calls[-1]
    assert ident == server.manager.ident


def test_threaded_client_callbacks_run_on_its_own_thread(connect: Any) -> None:
    client, ws = connect()
    client.ping(b"p")
    ws.send("hello")
    client.wait_messages(1)
    client.wait_for("pong")
    ws.close(1000)
    client.wait_closed()
    client.run_forever()
    threads = {ident for _, _, ident in client.calls}
    assert threads == {client._th.ident}
    assert client._th.name == "WebSocketClient"
    kinds = [kind for kind, _, _ in client.calls]
    assert (kinds[0], sorted(kinds[1:-1]), kinds[-1]) == ("opened", ["message", "pong"], "closed")


def test_an_exception_in_opened_closes_that_websocket_with_1011(serve: ServeFactory) -> None:

    class FailsOnOpen(RecordingWebSocket):
        def opened(self) -> None:
            super().opened()
            raise RuntimeError("boom in opened")

    server = serve(FailsOnOpen)
    peer = RawClient(server.port)
    with peer.sock:
        close = peer.recv_frame()
        assert close.opcode == OP_CLOSE
        assert parse_close(close.payload)[0] == 1011
        peer.send_frame(OP_CLOSE, close.payload[:2])
        peer.assert_eof()
        assert server.accept().wait_closed()[0] == 1011
