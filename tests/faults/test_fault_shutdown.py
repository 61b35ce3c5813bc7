"""Fault 5: shutting down (``close_all``, ``stop``, ``server_close``) while traffic flows.

Every client gets a close frame with 1001, nothing raises in the server, every
``WebSocketManager`` thread ends and no socket stays open. Shutting down is
bounded by ``close_timeout`` even when a peer does not cooperate, and a
handshake that completes after the server closed does not leave a socket
behind.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable

import pytest
from faultkit import (
    ErrorLog,
    RawClient,
    Server,
    Tracker,
    connect_raw,
    fd_count,
    manager_threads,
    numbered,
    tracked,
    wait_eof,
    wait_stalled,
    wait_until,
)

from ws4py.client import WebSocketBaseClient
from ws4py.exc import StreamClosed
from ws4py.manager import WebSocketManager
from ws4py.messaging import Message
from ws4py.protocol import ClientHandshake
from ws4py.server.wsgirefserver import HandshakeReader
from ws4py.websocket import EchoWebSocket, WebSocket

CONNECTIONS = 50
SENDERS = 5


class _Client(WebSocketBaseClient):
    """ws4py's client, run by a shared client manager, recording how it ended."""

    def __init__(self, url: str, manager: WebSocketManager, done: threading.Condition) -> None:
        super().__init__(url)
        self._loop = manager
        self._done = done
        self.received = 0
        self.code: int | None = None

    def handshake_ok(self) -> None:
        self._loop.add(self)

    def received_message(self, message: Message) -> None:
        self.received += 1

    def closed(self, code: int, reason: str | None = None) -> None:
        with self._done:
            self.code = code
            self._done.notify_all()


def _send_until_closed(clients: list[_Client], stop: threading.Event, errors: list[str]) -> None:
    """Send on ``clients`` from this thread (not the loop's) until each of them is closed."""
    text = "x" * 1024
    alive = list(clients)
    while alive and not stop.is_set():
        for client in list(alive):
            try:
                client.send(text)
            except StreamClosed:
                alive.remove(client)
            except Exception as exc:
                errors.append(f"send: {type(exc).__name__}: {exc}")
                alive.remove(client)


def _close_all_then_stop(server: Server) -> None:
    server.manager.close_all()
    server.manager.stop()


def _stop(server: Server) -> None:
    server.manager.stop()


def _server_close(server: Server) -> None:
    server.close()


class _PoliteEcho(WebSocket):
    """Echoes, and lets go of an echo when the connection is already closing."""

    def received_message(self, message: Message) -> None:
        with contextlib.suppress(StreamClosed):
            self.send(message.data, message.is_binary)


def _shut_down_under_traffic(
    serve: Callable[..., Server],
    handler: type[WebSocket],
    shut_down: Callable[[Server], None],
    ws4py_errors: ErrorLog,
    thread_errors: list[str],
) -> None:
    """50 ws4py clients send from 5 threads while the server echoes and broadcasts; then shut down.

    Checks that every client got 1001, the server's and the clients' managers
    ended, no file descriptor is left and nothing failed anywhere.
    """
    managers_before = set(manager_threads())
    fds_before = fd_count()
    tracker = Tracker()
    server = serve(tracked(handler, tracker, close_timeout=2.0))
    client_manager = WebSocketManager()
    client_manager.start()
    done = threading.Condition()
    stop = threading.Event()
    errors: list[str] = []
    clients = [_Client(server.url, client_manager, done) for _ in range(CONNECTIONS)]
    for client in clients:
        client.connect()
    threads = [
        threading.Thread(target=_send_until_closed, args=(clients[i::SENDERS], stop, errors), daemon=True)
        for i in range(SENDERS)
    ]

    def broadcast_until_stopped() -> None:
        seq = 0
        while not stop.is_set():
            try:
                server.manager.broadcast(numbered(seq, 512), binary=True)
            except Exception as exc:
                errors.append(f"broadcast: {type(exc).__name__}: {exc}")
                return
            seq += 1
            time.sleep(0.001)

    threads.append(threading.Thread(target=broadcast_until_stopped, daemon=True))
    try:
        tracker.wait_opened(CONNECTIONS, 10)
        for thread in threads:
            thread.start()
        # Messages flow both ways: echoes and broadcasts to every client, client messages to the server.
        tracker.wait_for(lambda: tracker.received >= 20 * CONNECTIONS, 20, "client messages at the server")
        assert wait_until(lambda: all(client.received >= 5 for client in clients), 20)

        shut_down(server)
        with done:
            assert done.wait_for(lambda: all(client.code is not None for client in clients), 15), (
                f"{sum(client.code is None for client in clients)} clients still open"
            )
        codes = [client.code for client in clients]
        assert codes == [1001] * CONNECTIONS, f"close codes: {sorted(set(codes), key=str)}"
        server.manager.join(10)
        assert not server.manager.is_alive()
        tracker.wait_all_closed(5)

        stop.set()
        for thread in threads:
            thread.join(10)
            assert not thread.is_alive()
        server.close()
        client_manager.stop()
        client_manager.join(10)
        assert wait_until(lambda: not set(manager_threads()) - managers_before, 10), manager_threads()
        assert wait_until(lambda: fd_count() <= fds_before, 10), f"{fd_count()} fds open, {fds_before} before"
        assert not errors, errors[:5]
        assert not thread_errors, thread_errors
        assert not server.httpd.request_errors, server.httpd.request_errors[:1]
        assert not ws4py_errors.records, ws4py_errors.messages()[:3]
    finally:
        stop.set()
        client_manager.stop()
        for client in clients:
            if client.sock is not None:
                client.sock.close()


@pytest.mark.parametrize(
    "shut_down", [_close_all_then_stop, _stop, _server_close], ids=["close_all+stop", "stop", "server_close"]
)
def test_shutting_down_under_two_way_traffic_closes_every_client_with_1001_and_leaves_nothing_behind(
    serve: Callable[..., Server],
    shut_down: Callable[[Server], None],
    ws4py_errors: ErrorLog,
    thread_errors: list[str],
) -> None:
    _shut_down_under_traffic(serve, _PoliteEcho, shut_down, ws4py_errors, thread_errors)


def test_library_echo_websocket_shuts_down_under_traffic_without_logging_errors(
    serve: Callable[..., Server], ws4py_errors: ErrorLog, thread_errors: list[str]
) -> None:
    _shut_down_under_traffic(serve, EchoWebSocket, _close_all_then_stop, ws4py_errors, thread_errors)


class _FillOnRequest(WebSocket):
    """On any message, writes (from the loop) until 48 KiB wait in the websocket's buffer
    (less than ``write_high_water``: the loop goes on reading from the peer)."""

    def received_message(self, message: Message) -> None:
        for seq in range(4096):
            self.send(numbered(seq, 16 * 1024), binary=True)
            if self._out_size >= 48 * 1024:
                return


def _small_kernel_buffers(server: Server) -> None:
    # Accepted sockets inherit the listener's SO_SNDBUF: the kernel fills up after a few KiB.
    server.httpd.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)


def _closed_then_stopped_reading(server: Server, tracker: Tracker) -> tuple[RawClient, WebSocket]:
    """A peer that sends its close and then never reads what the server still has for it."""
    peer = RawClient(server.port, rcvbuf=8 * 1024)
    ws = tracker.server_side(peer.sock)
    peer.send_text("fill")
    # What the kernel could still take was taken: the rest stays in the websocket's buffer.
    pending = wait_stalled(lambda: ws._out_size, quiet=0.3, timeout=5)
    assert 0 < pending <= ws.write_high_water
    peer.sock.sendall(peer.conn.send_close(1000))  # type: ignore[union-attr]
    # The server read the close and answered it: the closing handshake is over on its side.
    assert wait_until(lambda: ws.protocol.close_received is not None, 5)
    return peer, ws


def _overflowed_by_a_broadcast(server: Server, tracker: Tracker) -> tuple[RawClient, WebSocket]:
    """A peer that never reads, closed with 1008 by a broadcast."""
    peer = RawClient(server.port, rcvbuf=8 * 1024)
    ws = tracker.server_side(peer.sock)
    seq = 0
    while ws.protocol.close_sent is None and seq < 4096:
        server.manager.broadcast(numbered(seq, 16 * 1024), binary=True)
        seq += 1
        time.sleep(0.002)
    assert ws.protocol.close_sent is not None and ws.protocol.close_sent[0] == 1008
    return peer, ws


def test_peer_that_sends_its_close_but_never_reads_is_dropped_after_close_timeout(
    serve: Callable[..., Server],
) -> None:
    close_timeout = 0.5
    tracker = Tracker()
    server = serve(tracked(_FillOnRequest, tracker, close_timeout=close_timeout))
    _small_kernel_buffers(server)
    peer, ws = _closed_then_stopped_reading(server, tracker)
    try:
        tracker.wait_closed(ws, close_timeout + 3)
        assert ws not in server.manager
    finally:
        peer.close()


@pytest.mark.parametrize(
    "uncooperative", [_closed_then_stopped_reading, _overflowed_by_a_broadcast], ids=["closed", "overflowed"]
)
def test_server_close_returns_within_close_timeout_despite_a_peer_that_never_reads(
    serve: Callable[..., Server], uncooperative: Callable[[Server, Tracker], tuple[RawClient, WebSocket]]
) -> None:
    close_timeout = 0.5
    tracker = Tracker()
    server = serve(
        tracked(_FillOnRequest, tracker, close_timeout=close_timeout, max_write_buffer=256 * 1024),
    )
    _small_kernel_buffers(server)
    peer, ws = uncooperative(server, tracker)
    try:
        server.httpd.shutdown()
        closer = threading.Thread(target=server.httpd.server_close, daemon=True)
        started = time.monotonic()
        closer.start()
        closer.join(close_timeout + 3)
        assert not closer.is_alive(), "server_close() is stuck on a peer that does not read"
        assert time.monotonic() - started < close_timeout + 2
        assert ws.terminated
    finally:
        peer.close()  # unblocks the server if it is stuck


def test_handshake_completing_after_server_close_does_not_leave_its_socket_open(
    serve: Callable[..., Server],
) -> None:
    """Regression: add() on a manager whose loop was over queued a call that never ran: the
    handshake got its 101, then the socket was never read nor closed."""
    tracker = Tracker()
    server = serve(tracked(WebSocket, tracker), handshake_timeout=10.0)
    fds_before = fd_count()
    request = ClientHandshake("127.0.0.1", "/", port=server.port).request_bytes()
    sock = connect_raw(server.port)
    try:
        sock.sendall(request[:-2])  # all but the final CRLF: the server's reader waits for it
        assert wait_until(
            lambda: any(isinstance(ch, HandshakeReader) for ch in list(server.manager.loop.channels.values())), 5
        )
        server.close()
        assert not server.manager.is_alive()
        sock.sendall(request[-2:])
        # However the server answers now, the connection must end.
        wait_eof(sock, 3)
    finally:
        sock.close()
    assert wait_until(lambda: fd_count() <= fds_before, 5), f"{fd_count()} fds open, {fds_before} before"
