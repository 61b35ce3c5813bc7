"""Faults 4 and 8: peers that do not read, and back-pressure.

* A thread other than the loop's that sends to a peer that does not read is
  held back (like ``sendall``) once the write buffer is over
  ``write_high_water``; it goes on when the peer reads, and is released with
  :class:`~ws4py.exc.StreamClosed` when the connection ends.
* The loop's own sends never wait: an echo server whose peer floods it and
  never reads stops reading from that peer instead of buffering its echoes
  without bound, and resumes when the peer reads again, losing nothing.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Callable

import pytest
from faultkit import (
    RawClient,
    Server,
    Tracker,
    numbered,
    reset,
    seq_of,
    tracked,
    vmrss,
    wait_stalled,
)

from ws4py.exc import StreamClosed
from ws4py.protocol import BinaryReceived
from ws4py.websocket import EchoWebSocket, WebSocket

MESSAGE = 16 * 1024
MIB = 1024 * 1024


class _Sender(threading.Thread):
    """Sends ``count`` numbered binary messages on a server websocket, from its own thread."""

    def __init__(self, ws: WebSocket, count: int) -> None:
        super().__init__(name="test-sender", daemon=True)
        self.ws = ws
        self.count = count
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for seq in range(self.count):
                self.ws.send(numbered(seq, MESSAGE), binary=True)
                self.sent += 1
        except BaseException as exc:
            self.error = exc


def _blocked_sender(server: Server, tracker: Tracker, peer: RawClient) -> tuple[WebSocket, _Sender]:
    """Start a sender towards ``peer`` (which does not read) and wait until it is held back."""
    ws = tracker.server_side(peer.sock)
    sender = _Sender(ws, count=2048)  # 32 MiB: more than the kernel's buffers take
    sender.start()
    stalled_at = wait_stalled(lambda: sender.sent, quiet=0.5, timeout=30)
    assert sender.is_alive(), f"the sender finished ({sender.sent} sent, error {sender.error!r})"
    assert stalled_at < sender.count
    # Held back at the high-water mark: the websocket buffers little more than it.
    assert ws._out_size <= ws.write_high_water + MESSAGE + 64
    return ws, sender


def test_send_from_another_thread_blocks_while_the_peer_does_not_read_and_returns_when_it_drains(
    serve: Callable[..., Server],
) -> None:
    tracker = Tracker()
    server = serve(tracked(WebSocket, tracker))
    peer = RawClient(server.port, rcvbuf=16 * 1024)
    try:
        ws, sender = _blocked_sender(server, tracker, peer)
        # The peer reads now: every message arrives, in order, and the sender finishes.
        expected = 0
        deadline = time.monotonic() + 30
        while expected < sender.count:
            for event in peer.events(1, deadline - time.monotonic()):
                assert isinstance(event, BinaryReceived)
                assert seq_of(event.data) == expected
                assert len(event.data) == MESSAGE
                expected += 1
        sender.join(10)
        assert not sender.is_alive()
        assert sender.error is None
        assert sender.sent == sender.count
        assert ws in server.manager
    finally:
        peer.close()


def _terminate(server: Server, ws: WebSocket, peer: RawClient) -> None:
    ws.terminate()


def _peer_reset(server: Server, ws: WebSocket, peer: RawClient) -> None:
    reset(peer.sock)


def _server_close(server: Server, ws: WebSocket, peer: RawClient) -> None:
    server.close()


@pytest.mark.parametrize(
    "end", [_terminate, _peer_reset, _server_close], ids=["terminate", "peer-reset", "server-close"]
)
def test_send_blocked_by_a_peer_that_does_not_read_raises_stream_closed_when_the_connection_ends(
    serve: Callable[..., Server], end: Callable[[Server, WebSocket, RawClient], None]
) -> None:
    tracker = Tracker()
    server = serve(tracked(WebSocket, tracker, close_timeout=0.5))
    peer = RawClient(server.port, rcvbuf=16 * 1024)
    try:
        ws, sender = _blocked_sender(server, tracker, peer)
        blocked_at = sender.sent
        end(server, ws, peer)
        tracker.wait_closed(ws, 10)
        sender.join(10)
        assert not sender.is_alive(), "the send stayed blocked after the connection ended"
        assert isinstance(sender.error, StreamClosed), f"the sender ended with {sender.error!r}"
        # The send that was held back raised: it did not pretend to have sent its message.
        assert sender.sent == blocked_at, f"{sender.sent - blocked_at} blocked send(s) returned as if sent"
    finally:
        peer.close()


def test_echo_server_stops_reading_from_a_peer_that_floods_it_and_never_reads(serve: Callable[..., Server]) -> None:
    tracker = Tracker()
    server = serve(tracked(EchoWebSocket, tracker))
    peer = RawClient(server.port, rcvbuf=64 * 1024)
    peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
    conn = peer.conn
    assert conn is not None
    ws = tracker.server_side(peer.sock)
    rss_before = vmrss()
    limit = 256 * MIB  # an echo server buffering without bound takes all of it
    try:
        # Flood without ever reading, until the server stops taking more (or the limit).
        peer.sock.setblocking(False)
        pending = b""
        total = sent_messages = 0
        progress_at = time.monotonic()
        while total < limit:
            if not pending:
                pending = conn.send_binary(numbered(sent_messages, MESSAGE))
                sent_messages += 1
            try:
                count = peer.sock.send(pending)
            except BlockingIOError:
                count = 0
            if count:
                pending, total, progress_at = pending[count:], total + count, time.monotonic()
            elif time.monotonic() - progress_at > 1.0:
                break
            else:
                select.select([], [peer.sock], [], 0.05)
        assert total < limit, f"the server took {total} bytes from a peer that never reads"
        assert id(ws) not in tracker.closed, "the server closed the peer instead of pushing back"
        assert ws.protocol.close_sent is None
        # At most one read's worth of echoes past the high-water mark (the loop reads into a buffer
        # of its manager's read_size when it has one, else reading_buffer_size at a time).
        read_size = getattr(server.manager, "read_size", ws.reading_buffer_size)
        assert ws._out_size <= ws.write_high_water + read_size + 4096
        assert vmrss() - rss_before < 64 * MIB

        # The peer reads again: every message comes back, in order, and the server reads the rest.
        received: list[int] = []
        failure: list[BaseException] = []

        def read_all() -> None:
            try:
                while len(received) < sent_messages:
                    for event in peer.events(1, 30):
                        assert isinstance(event, BinaryReceived)
                        received.append(seq_of(event.data))
            except BaseException as exc:
                failure.append(exc)

        reader = threading.Thread(target=read_all, daemon=True)
        peer.sock.setblocking(True)
        reader.start()
        peer.sock.sendall(pending)
        reader.join(30)
        assert not reader.is_alive(), f"{len(received)}/{sent_messages} echoes read"
        assert not failure, failure
        assert received == list(range(sent_messages))
        assert ws in server.manager
    finally:
        peer.close()
