"""ping()/ponged() and the heartbeat (heartbeat_freq)."""

from __future__ import annotations

import itertools
import socket
import time
from typing import Any

import pytest
from threaded_support import (
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    TIMEOUT,
    RawClient,
    RawPeer,
    RawServer,
    RecordingClient,
    RecordingWebSocket,
    Request,
    ServeFactory,
    parse_close,
    switching_protocols,
)

from ws4py.messaging import PongControlMessage

PERIOD = 0.2


class Heartbeating(RecordingWebSocket):
    """A server-side websocket with a heartbeat (the WSGI app passes no heartbeat_freq)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, heartbeat_freq=PERIOD, **kwargs)


def test_ping_is_answered_and_ponged_gets_the_payload(connect: Any) -> None:
    client, ws = connect()
    client.ping(b"are you there?")
    (pong,) = client.wait_for("pong")
    assert isinstance(pong, PongControlMessage)
    assert pong.data == b"are you there?"
    ws.ping("text payload")
    (pong,) = ws.wait_for("pong")
    assert pong.data == b"text payload"


def test_ping_frame_carries_the_payload(serve: ServeFactory) -> None:
    server = serve()
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        ws.ping(b"\x00\x01")
        frame = peer.recv_frame()
        assert (frame.opcode, frame.payload) == (OP_PING, b"\x00\x01")
        peer.send_frame(OP_PONG, frame.payload)
        assert ws.wait_for("pong")[0].data == b"\x00\x01"


def test_ping_payload_over_125_bytes_raises_value_error(connect: Any) -> None:
    client, _ = connect()
    with pytest.raises(ValueError):
        client.ping(b"x" * 126)


def _answer_pings(peer: RawPeer, count: int) -> list[float]:
    """Answer ``count`` pings; return when each arrived. Fails on anything else."""
    arrivals = []
    for _ in range(count):
        frame = peer.recv_frame()
        assert frame.opcode == OP_PING, f"expected a ping, got opcode {frame.opcode}"
        arrivals.append(time.monotonic())
        peer.send_frame(OP_PONG, frame.payload)
    return arrivals


def test_heartbeat_pings_at_its_period_while_the_peer_answers(serve: ServeFactory) -> None:
    server = serve(Heartbeating)
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        opened_at = time.monotonic()
        arrivals = _answer_pings(peer, 4)
        gaps = [b - a for a, b in itertools.pairwise([opened_at, *arrivals])]
        assert gaps[0] >= PERIOD * 0.75, "the first ping comes one period after opening"
        assert all(PERIOD * 0.75 <= gap <= PERIOD * 5 for gap in gaps[1:]), gaps
        assert not ws.closed_event.is_set(), "a peer that answers stays connected"
        assert len(ws.values("pong")) >= 3
        peer.send_close()
        peer.recv_frames_until_close()


def test_heartbeat_closes_a_peer_that_stops_answering_with_1011(serve: ServeFactory) -> None:
    server = serve(Heartbeating)
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        _answer_pings(peer, 2)
        # Silence from now on: the next ping stays unanswered.
        unanswered = peer.recv_frame()
        assert unanswered.opcode == OP_PING
        sent_at = time.monotonic()
        close = peer.recv_frame(TIMEOUT)
        assert close.opcode == OP_CLOSE
        assert parse_close(close.payload)[0] == 1011
        assert time.monotonic() - sent_at >= PERIOD * 0.75
        peer.send_frame(OP_CLOSE, close.payload[:2])
        peer.assert_eof()
        assert ws.wait_closed()[0] == 1011


def test_heartbeat_closes_a_peer_that_never_answers(serve: ServeFactory) -> None:
    server = serve(Heartbeating)
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        frames, close = peer.recv_frames_until_close()
        assert [f.opcode for f in frames] == [OP_PING]
        assert parse_close(close.payload)[0] == 1011
        peer.send_frame(OP_CLOSE, close.payload[:2])
        peer.assert_eof()
        ws.wait_closed()


def test_no_heartbeat_without_heartbeat_freq(serve: ServeFactory) -> None:
    server = serve()
    peer = RawClient(server.port)
    with peer.sock:
        server.accept()
        peer.assert_silent(3 * PERIOD)


def test_client_heartbeat_pings_the_server(raw_server: RawServer) -> None:
    arrivals: list[float] = []

    def handler(sock: socket.socket, request: Request) -> None:
        sock.sendall(switching_protocols(request))
        peer = RawPeer(sock, b"", is_client=False)
        arrivals.extend(_answer_pings(peer, 3))
        close = peer.recv_frame()
        assert close.opcode == OP_CLOSE
        peer.send_frame(OP_CLOSE, close.payload[:2])

    raw_server.serve(handler)
    client = RecordingClient(raw_server.url(), heartbeat_freq=PERIOD)
    client.connect()
    client.wait_for("pong", 3)
    client.close()
    assert client.wait_closed()[0] == 1000
    client.run_forever()
    raw_server.join()
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert all(PERIOD * 0.75 <= gap <= PERIOD * 5 for gap in gaps), gaps


def test_client_heartbeat_closes_a_server_that_never_answers(raw_server: RawServer) -> None:
    seen: dict[str, Any] = {}

    def handler(sock: socket.socket, request: Request) -> None:
        sock.sendall(switching_protocols(request))
        peer = RawPeer(sock, b"", is_client=False)
        frames, close = peer.recv_frames_until_close()
        seen["frames"] = [f.opcode for f in frames]
        seen["close"] = parse_close(close.payload)
        peer.send_frame(OP_CLOSE, close.payload[:2])

    raw_server.serve(handler)
    client = RecordingClient(raw_server.url(), heartbeat_freq=PERIOD)
    client.connect()
    assert client.wait_closed()[0] == 1011
    client.run_forever()
    raw_server.join()
    assert seen["frames"] == [OP_PING]
    assert seen["close"][0] == 1011


def test_ping_with_the_payload_of_an_unanswered_ping_is_sent_too(serve: ServeFactory) -> None:
    server = serve()
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        ws.ping(b"same")
        try:
            ws.ping(b"same")
        finally:
            first = peer.recv_frame()
            peer.send_close()
        assert (first.opcode, first.payload) == (OP_PING, b"same")
        assert peer.recv_frame().opcode == OP_PING
