"""Fault 2: a half-open peer (it neither reads nor answers) is found by the heartbeat.

With ``heartbeat_freq`` set, the server pings at that period; a peer that has
not answered the previous ping by the next one is sent a close with 1011, and
its TCP connection is dropped ``close_timeout`` seconds later at the latest.
A peer that answers its pings is left alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from faultkit import RawClient, Server, Tracker, tracked, wait_eof

from ws4py.client import WebSocketBaseClient
from ws4py.manager import WebSocketManager
from ws4py.protocol import CloseReceived, Connection, PingReceived, Role
from ws4py.websocket import WebSocket

HEARTBEAT = 0.3
CLOSE_TIMEOUT = 0.7


class _Backlogged(WebSocket):
    """Has 8 MiB waiting for its peer from the start: the socket is never writable again."""

    max_write_buffer = 64 * 1024 * 1024

    def opened(self) -> None:
        chunk = bytes(1024 * 1024)
        for _ in range(8):
            self.send(chunk, binary=True)


@pytest.mark.parametrize("base", [WebSocket, _Backlogged], ids=["idle", "backlogged"])
def test_peer_that_never_answers_pings_is_closed_1011_then_dropped_after_close_timeout(
    serve: Callable[..., Server], base: type[WebSocket]
) -> None:
    tracker = Tracker()
    server = serve(tracked(base, tracker, heartbeat_freq=HEARTBEAT, close_timeout=CLOSE_TIMEOUT))
    # The peer completes the handshake, then neither reads nor writes anything.
    peer = RawClient(server.port, rcvbuf=16 * 1024)
    try:
        ws = tracker.server_side(peer.sock)
        opened_at = time.monotonic()

        # Ping at 1 heartbeat, no pong by the 2nd: close(1011), then close_timeout for the answer.
        earliest = 2 * HEARTBEAT + CLOSE_TIMEOUT
        code, closed_at = tracker.wait_closed(ws, earliest + 5)
        assert code in (1006, 1011)
        assert closed_at - opened_at >= earliest - 0.1, "dropped before close_timeout passed"
        assert closed_at - opened_at < earliest + 2.0, "close_timeout not honoured"
        assert ws not in server.manager
        assert ws.protocol.close_sent == (1011, "keepalive ping timeout")

        # Now look at what reached the peer: the server ended the connection.
        received = wait_eof(peer.sock, 10)
        if base is WebSocket:
            events = Connection(Role.CLIENT, max_message_size=None).receive_data(received)
            assert isinstance(events[0], PingReceived)
            assert events[-1] == CloseReceived(1011, "keepalive ping timeout")
    finally:
        peer.close()


def test_peer_that_answers_pings_stays_open_across_many_heartbeats(serve: Callable[..., Server]) -> None:
    tracker = Tracker()
    server = serve(tracked(WebSocket, tracker, heartbeat_freq=HEARTBEAT, close_timeout=CLOSE_TIMEOUT))
    manager = WebSocketManager()
    manager.start()

    class Client(WebSocketBaseClient):
        def handshake_ok(self) -> None:
            manager.add(self)

    # ws4py's own client answers pings by itself (the protocol core queues the pongs).
    client = Client(server.url)
    client.connect()
    try:
        ws = tracker.server_side(client.sock)  # type: ignore[arg-type]
        tracker.wait_for(lambda: tracker.pongs >= 5, 5 * HEARTBEAT + 5, "5 pongs")
        assert id(ws) not in tracker.closed
        assert ws in server.manager
        assert ws.protocol.close_sent is None
    finally:
        client.close()
        manager.stop()
        manager.join(10)
        assert not manager.is_alive()
