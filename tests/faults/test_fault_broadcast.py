"""Fault 3: broadcasting to peers that never read.

``manager.broadcast`` never waits: a peer whose write buffer is over
``max_write_buffer`` when more comes is closed with 1008 instead of being
buffered for, so memory stays bounded however many messages go out, and the
peers that do read get every message. A peer closed that way that never
answers is dropped ``close_timeout`` seconds later.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable

from faultkit import (
    RawClient,
    Server,
    Tracker,
    fd_count,
    numbered,
    seq_of,
    tracked,
    vmrss,
    wait_until,
)

from ws4py.protocol import BinaryReceived, CloseReceived
from ws4py.websocket import WebSocket

KIB = 1024
MIB = 1024 * KIB
MESSAGE = 16 * KIB
MAX_WRITE_BUFFER = 256 * KIB


def _small_kernel_buffers(server: Server) -> None:
    """Accepted sockets inherit the listener's SO_SNDBUF: keep what the kernel holds for a
    peer that does not read small (a thousand such peers would otherwise pin gigabytes of
    kernel memory on a shared machine, and it is ws4py's own buffer that is under test)."""
    server.httpd.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32 * KIB)


class _Reader(threading.Thread):
    """A peer that reads everything and checks it gets messages 0, 1, 2... in order."""

    def __init__(self, client: RawClient, expected: int, progress: threading.Condition) -> None:
        super().__init__(name="test-reader", daemon=True)
        self.client = client
        self.expected = expected
        self.progress = progress
        self.count = 0
        self.error: str | None = None

    def run(self) -> None:
        sock, conn = self.client.sock, self.client.conn
        assert conn is not None
        sock.settimeout(60)
        try:
            while self.count < self.expected:
                data = sock.recv(1024 * 1024)
                if not data:
                    self.error = f"connection ended after {self.count} messages"
                    return
                for event in conn.receive_data(data):
                    if not isinstance(event, BinaryReceived):
                        self.error = f"unexpected {event!r} after {self.count} messages"
                        return
                    if seq_of(event.data) != self.count or len(event.data) != MESSAGE:
                        self.error = f"message {seq_of(event.data)} ({len(event.data)} bytes) in place of {self.count}"
                        return
                    with self.progress:
                        self.count += 1
                        self.progress.notify_all()
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc} after {self.count} messages"
        finally:
            with self.progress:
                self.progress.notify_all()


def _drain_until_close(client: RawClient, timeout: float) -> tuple[list[int], CloseReceived | None]:
    """Read what was buffered for a peer: the message numbers, then its close (None if dropped)."""
    events, _ended = client.read_until_close(timeout)
    close = events.pop() if events and isinstance(events[-1], CloseReceived) else None
    assert all(isinstance(e, BinaryReceived) for e in events), events[:3]
    return [seq_of(e.data) for e in events], close  # type: ignore[attr-defined]


def test_broadcast_to_1000_peers_most_never_reading_never_blocks_keeps_memory_bounded_and_readers_get_all(
    serve: Callable[..., Server], fds: Callable[[int], None]
) -> None:
    peers, readers_count, messages, drained = 1000, 4, 2000, 20
    fds(2 * peers + 64)
    tracker = Tracker()
    server = serve(tracked(WebSocket, tracker, max_write_buffer=MAX_WRITE_BUFFER, close_timeout=120.0))
    _small_kernel_buffers(server)
    fds_before = fd_count()

    progress = threading.Condition()
    clients: list[RawClient] = []
    try:
        readers = [_Reader(RawClient(server.port), messages, progress) for _ in range(readers_count)]
        clients += [reader.client for reader in readers]
        non_readers = [RawClient(server.port, rcvbuf=8 * KIB) for _ in range(peers - readers_count)]
        clients += non_readers
        tracker.wait_opened(peers, 60)
        assert wait_until(lambda: len(server.manager) == peers, 30), f"{len(server.manager)}/{peers} managed"
        reader_ws = [tracker.server_side(reader.client.sock) for reader in readers]
        non_reader_ws = [tracker.server_side(client.sock) for client in non_readers]
        for reader in readers:
            reader.start()

        rss_before = vmrss()
        rss_peak = rss_before
        slowest = 0.0
        failure: list[str] = []

        def broadcast_all() -> None:
            nonlocal rss_peak, slowest
            batch = 8  # let the readers keep up: they must not fall max_write_buffer behind
            for first in range(0, messages, batch):
                for seq in range(first, min(first + batch, messages)):
                    payload = numbered(seq, MESSAGE)
                    start = time.monotonic()
                    server.manager.broadcast(payload, binary=True)
                    slowest = max(slowest, time.monotonic() - start)
                rss_peak = max(rss_peak, vmrss())
                end = min(first + batch, messages)
                with progress:
                    caught_up = progress.wait_for(lambda end=end: all(r.count >= end or r.error for r in readers), 20)
                errors = [r.error for r in readers if r.error]
                if errors or not caught_up:
                    failure.append(f"after message {first}: readers at {[r.count for r in readers]}, {errors}")
                    return

        broadcaster = threading.Thread(target=broadcast_all, name="test-broadcaster", daemon=True)
        started = time.monotonic()
        broadcaster.start()
        broadcaster.join(150)
        assert not broadcaster.is_alive(), "broadcasting did not complete"
        elapsed = time.monotonic() - started
        assert not failure, failure
        assert slowest < 1.0, f"a broadcast() call took {slowest:.2f}s: it waited for a slow peer"

        # Everything went to the readers, and the readers are still open.
        for reader in readers:
            reader.join(10)
            assert reader.error is None and reader.count == messages
        for ws in reader_ws:
            assert ws.protocol.close_sent is None and ws in server.manager
        # Every peer that never read was closed with 1008 instead of being buffered for.
        codes = {ws.protocol.close_sent[0] if ws.protocol.close_sent else None for ws in non_reader_ws}
        assert codes == {1008}
        assert max(ws._out_size for ws in non_reader_ws) <= MAX_WRITE_BUFFER + 2 * MESSAGE
        # Naively buffered, 996 peers x 2000 x 16 KiB would be 31 GiB.
        assert rss_peak - rss_before < 200 * MIB, f"VmRSS grew by {(rss_peak - rss_before) / MIB:.0f} MiB"

        # Some non-readers read now: a prefix of the messages, then the 1008 close frame.
        for client in non_readers[:drained]:
            seqs, close = _drain_until_close(client, 10)
            assert seqs == list(range(len(seqs)))
            assert close is not None, "the 1008 close frame never came"
            assert close.code == 1008
            client.flush_replies()  # the close echo
        for ws in non_reader_ws[:drained]:
            code, _ = tracker.wait_closed(ws, 10)
            assert code == 1008

        # Everybody leaves: the server drops every connection and every socket.
        for client in clients:
            client.close()
        assert wait_until(lambda: len(server.manager) == 0, 30), f"{len(server.manager)} still managed"
        tracker.wait_all_closed(10)
        assert wait_until(lambda: fd_count() <= fds_before, 10), f"{fd_count()} fds open, {fds_before} before"
        print(f"broadcast of {messages} x {MESSAGE} B to {peers} peers: {elapsed:.1f}s, slowest call {slowest:.3f}s")
    finally:
        for client in clients:
            client.close()


def _overflow_one_peer(server: Server, tracker: Tracker) -> tuple[RawClient, WebSocket, int]:
    """A peer that does not read, broadcast to until it is closed with 1008; the messages sent."""
    peer = RawClient(server.port, rcvbuf=8 * KIB)
    ws = tracker.server_side(peer.sock)
    seq = 0
    while ws.protocol.close_sent is None:
        assert seq < 4096, "64 MiB broadcast to a peer that does not read and it was never closed"
        server.manager.broadcast(numbered(seq, MESSAGE), binary=True)
        seq += 1
        # Paced: the loop has long handled the previous message when the one that overflows comes.
        time.sleep(0.002)
    assert ws.protocol.close_sent == (1008, "write buffer overflow: the peer is not reading")
    return peer, ws, seq


def test_peer_closed_1008_for_not_reading_gets_its_buffered_messages_then_the_close_when_it_reads_again(
    serve: Callable[..., Server],
) -> None:
    tracker = Tracker()
    server = serve(tracked(WebSocket, tracker, max_write_buffer=MAX_WRITE_BUFFER, close_timeout=30.0))
    _small_kernel_buffers(server)
    peer, ws, sent = _overflow_one_peer(server, tracker)
    try:
        seqs, close = _drain_until_close(peer, 10)
        assert seqs == list(range(len(seqs)))
        assert len(seqs) < sent, "the message that found the buffer full was not dropped"
        assert close == CloseReceived(1008, "write buffer overflow: the peer is not reading")
        peer.flush_replies()  # the close echo
        assert tracker.wait_closed(ws, 5)[0] == 1008
        peer.wait_eof(5)
        assert ws not in server.manager
    finally:
        peer.close()


def test_peer_closed_1008_by_a_broadcast_that_never_reads_again_is_dropped_after_close_timeout(
    serve: Callable[..., Server],
) -> None:
    close_timeout = 0.5
    tracker = Tracker()
    server = serve(tracked(WebSocket, tracker, max_write_buffer=MAX_WRITE_BUFFER, close_timeout=close_timeout))
    _small_kernel_buffers(server)
    peer, ws, _ = _overflow_one_peer(server, tracker)
    try:
        code, _ = tracker.wait_closed(ws, close_timeout + 3)
        assert code == 1006  # the peer never answered the close
        assert ws not in server.manager
        peer.wait_eof(5)
    finally:
        peer.close()
