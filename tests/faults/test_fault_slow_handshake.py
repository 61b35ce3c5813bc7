"""Fault 7: slow and stalled opening handshakes.

Each request head is read on the manager's loop, with no thread of its own,
within the server's ``handshake_timeout`` (for the whole head, not per read): a peer trickling
its request or never finishing it delays no one else's handshake, and is
dropped once the timeout has passed, even if it keeps sending.
"""

from __future__ import annotations

import select
import selectors
import socket
import threading
import time
from collections.abc import Callable

from faultkit import RawClient, Server, Tracker, connect_raw, fd_count, tracked, wait_until

from ws4py.protocol import ClientHandshake, CloseReceived, TextReceived
from ws4py.websocket import EchoWebSocket

HANDSHAKE_TIMEOUT = 1.5
STALLED = 100


def _ended(sock: socket.socket) -> bool:
    """Read what is there; whether the server ended the connection (EOF or reset)."""
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True
    except BlockingIOError:
        return False


class _Trickler(threading.Thread):
    """Sends a valid request head one byte per second until the server hangs up."""

    def __init__(self, port: int, request: bytes) -> None:
        super().__init__(name="test-trickler", daemon=True)
        self.sock = connect_raw(port)
        self.sock.setblocking(False)
        self.connected_at = time.monotonic()
        self.request = request
        self.sent = 0
        self.ended_at: float | None = None

    def run(self) -> None:
        try:
            for byte in self.request:
                try:
                    self.sock.send(bytes([byte]))
                except OSError:  # reset by the server
                    self.ended_at = time.monotonic()
                    return
                self.sent += 1
                next_byte_at = time.monotonic() + 1.0
                while (left := next_byte_at - time.monotonic()) > 0:
                    if select.select([self.sock], [], [], left)[0] and _ended(self.sock):
                        self.ended_at = time.monotonic()
                        return
        finally:
            self.sock.close()


def _normal_handshake_and_echo(port: int) -> float:
    """A well-behaved client: handshake, echo, close; the handshake's duration."""
    started = time.monotonic()
    client = RawClient(port, timeout=5)
    elapsed = time.monotonic() - started
    try:
        client.send_text("hello")
        assert client.events(1, 5) == [TextReceived("hello")]
        client.sock.sendall(client.conn.send_close(1000))  # type: ignore[union-attr]
        assert client.events(1, 5) == [CloseReceived(1000, "")]
        client.wait_eof(5)
    finally:
        client.close()
    return elapsed


def test_trickling_and_stalled_handshakes_delay_no_one_and_are_dropped_after_handshake_timeout(
    serve: Callable[..., Server],
) -> None:
    tracker = Tracker()
    server = serve(tracked(EchoWebSocket, tracker), handshake_timeout=HANDSHAKE_TIMEOUT)
    _normal_handshake_and_echo(server.port)  # warm-up
    fds_before, threads_before = fd_count(), threading.active_count()
    request = ClientHandshake("127.0.0.1", "/", port=server.port).request_bytes()

    trickler = _Trickler(server.port, request)
    trickler.start()
    stalled: list[tuple[socket.socket, float]] = []
    selector = selectors.DefaultSelector()
    try:
        for i in range(STALLED):
            sock = connect_raw(server.port)
            if i % 2:
                sock.sendall(request[: len(request) // 2])  # half a head, then nothing
            # else: connected, and not a byte sent
            sock.setblocking(False)
            stalled.append((sock, time.monotonic()))
            selector.register(sock, selectors.EVENT_READ)
        first_stalled_at = stalled[0][1]

        # While all of them are in progress, normal clients get through at once.
        for _ in range(3):
            assert _normal_handshake_and_echo(server.port) < 1.0
        assert time.monotonic() - first_stalled_at < HANDSHAKE_TIMEOUT, "too slow to test during the stalls"
        assert trickler.ended_at is None

        # Then each stalled peer is dropped, after the handshake timeout and not before.
        ended_at: dict[int, float] = {}
        deadline = time.monotonic() + HANDSHAKE_TIMEOUT + 10
        while len(ended_at) < STALLED and time.monotonic() < deadline:
            for key, _ in selector.select(0.2):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if _ended(sock):
                    ended_at[sock.fileno()] = time.monotonic()
                    selector.unregister(sock)
        assert len(ended_at) == STALLED, f"{STALLED - len(ended_at)} stalled peers still connected"
        for sock, connected_at in stalled:
            waited = ended_at[sock.fileno()] - connected_at
            assert HANDSHAKE_TIMEOUT - 0.1 <= waited < HANDSHAKE_TIMEOUT + 5, f"dropped after {waited:.2f}s"

        # The trickler too, though it never stopped sending.
        trickler.join(HANDSHAKE_TIMEOUT + 5)
        assert not trickler.is_alive() and trickler.ended_at is not None, "the trickling peer was never dropped"
        waited = trickler.ended_at - trickler.connected_at
        assert HANDSHAKE_TIMEOUT - 0.1 <= waited < HANDSHAKE_TIMEOUT + 2, f"trickler dropped after {waited:.2f}s"
        assert trickler.sent >= 2
        assert tracker.opened and len(tracker.opened) == 4  # only the normal clients got through
    finally:
        selector.close()
        for sock, _ in stalled:
            sock.close()

    # Every request thread ended and every socket is closed.
    assert wait_until(lambda: threading.active_count() <= threads_before, 10), threading.enumerate()
    assert wait_until(lambda: fd_count() <= fds_before, 10), f"{fd_count()} fds open, {fds_before} before"


def test_stalled_handshakes_take_no_thread_each_and_a_normal_client_gets_through_at_once(
    serve: Callable[..., Server],
) -> None:
    """The heads are read on the manager's loop: 100 silent peers and a trickling one hold
    no thread of the server, and a normal client's handshake and echo are not delayed."""
    server = serve(EchoWebSocket, handshake_timeout=HANDSHAKE_TIMEOUT)
    _normal_handshake_and_echo(server.port)  # warm-up: the manager runs
    threads_before = threading.active_count()
    request = ClientHandshake("127.0.0.1", "/", port=server.port).request_bytes()
    trickler = _Trickler(server.port, request)
    trickler.start()  # one thread of the test's own
    silent = [connect_raw(server.port) for _ in range(STALLED)]
    try:
        started = time.monotonic()
        assert _normal_handshake_and_echo(server.port) < 1.0  # before any stalled peer times out
        assert threading.active_count() <= threads_before + 1, [t.name for t in threading.enumerate()]
        assert time.monotonic() - started < HANDSHAKE_TIMEOUT
    finally:
        for sock in silent:
            sock.close()
        trickler.join(HANDSHAKE_TIMEOUT + 5)
