"""Fault 1: a peer vanishes (FIN or RST) in the middle of a message, or while the server writes to it.

The server must call ``closed(1006)`` (no close frame came), drop the websocket
from its manager, close its socket, and go on serving everybody else.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from faultkit import (
    ErrorLog,
    RawClient,
    Server,
    Tracker,
    fd_count,
    reset,
    tracked,
    unread_bytes,
    unsent_bytes,
    wait_until,
)

from ws4py.exc import StreamClosed
from ws4py.messaging import Message
from ws4py.protocol import TextReceived
from ws4py.websocket import EchoWebSocket, WebSocket


def _echo_round_trip(client: RawClient, text: str) -> None:
    client.send_text(text)
    assert client.events(1, 5) == [TextReceived(text)]


def _vanish(client: RawClient, how: str) -> None:
    if how == "rst":
        reset(client.sock)
    else:
        client.sock.close()


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_peer_vanishing_in_the_middle_of_a_large_frame_is_closed_1006_and_others_are_still_served(
    serve: Callable[..., Server], how: str
) -> None:
    tracker = Tracker()
    server = serve(tracked(EchoWebSocket, tracker))
    bystander = RawClient(server.port)
    baseline_fds = fd_count()
    try:
        victim = RawClient(server.port)
        victim_ws = tracker.server_side(victim.sock)
        assert victim_ws in server.manager

        frame = victim.conn.send_binary(bytes(1024 * 1024))  # type: ignore[union-attr]
        victim.sock.sendall(frame[: len(frame) // 2])
        # The server has read all of the half frame before the peer goes away.
        assert wait_until(lambda: unsent_bytes(victim.sock) == 0 and unread_bytes(victim_ws.sock) == 0, 5), (
            "the server never read the half frame"
        )
        _vanish(victim, how)

        code, _ = tracker.wait_closed(victim_ws, 5)
        assert code == 1006
        assert tracker.received == 0, "half a frame was delivered as a message"
        assert victim_ws.terminated
        assert victim_ws not in server.manager
        assert len(server.manager) == 1
        # Its socket is closed: only the bystander's two ends stay open.
        assert wait_until(lambda: fd_count() <= baseline_fds, 5), f"{fd_count()} fds open, {baseline_fds} before"

        _echo_round_trip(bystander, "still there?")
        newcomer = RawClient(server.port)
        try:
            _echo_round_trip(newcomer, "and a new one")
        finally:
            newcomer.close()
    finally:
        bystander.close()


class _Flooder(WebSocket):
    """Writes 16 MiB to its peer as soon as the connection opens (from the loop), more than
    the kernel's buffers take, so most of it waits in the websocket's own buffer."""

    max_write_buffer = 64 * 1024 * 1024

    def opened(self) -> None:
        chunk = bytes(1024 * 1024)
        for _ in range(16):
            self.send(chunk, binary=True)


@pytest.mark.parametrize("how", ["fin", "rst"])
def test_peer_vanishing_while_the_server_has_megabytes_buffered_for_it_is_closed_1006(
    serve: Callable[..., Server], how: str
) -> None:
    tracker = Tracker()
    server = serve(tracked(_Flooder, tracker))
    bystander = RawClient(server.port)
    try:
        bystander_ws = tracker.server_side(bystander.sock)
        victim = RawClient(server.port, rcvbuf=16 * 1024)
        victim_ws = tracker.server_side(victim.sock)
        # The peer does not read: what the kernel does not take waits in the websocket's buffer.
        assert wait_until(lambda: victim_ws._out_size > victim_ws.write_high_water, 5)
        _vanish(victim, how)

        code, _ = tracker.wait_closed(victim_ws, 5)
        assert code == 1006
        assert victim_ws not in server.manager
        assert victim_ws._out_size == 0, "the buffer of a dead connection is kept"
        assert bystander_ws in server.manager
        assert id(bystander_ws) not in tracker.closed
    finally:
        bystander.close()


def _close_all(server: Server, ws: WebSocket) -> None:
    server.manager.close_all()


def _send_from_another_thread(server: Server, ws: WebSocket) -> None:
    with pytest.raises(StreamClosed):
        ws.send("anyone there?")


@pytest.mark.parametrize("action", [_close_all, _send_from_another_thread], ids=["close_all", "send"])
def test_peer_reset_not_yet_noticed_by_the_busy_loop_makes_close_all_and_send_fail_cleanly(
    serve: Callable[..., Server], ws4py_errors: ErrorLog, action: Callable[[Server, WebSocket], None]
) -> None:
    inside, release = threading.Event(), threading.Event()

    class Blocking(WebSocket):
        """Keeps the loop busy in a callback for as long as the test wants."""

        def received_message(self, message: Message) -> None:
            inside.set()
            release.wait(10)

    tracker = Tracker()
    server = serve(tracked(Blocking, tracker))
    busy, victim = RawClient(server.port), RawClient(server.port)
    try:
        victim_ws = tracker.server_side(victim.sock)
        busy.send_text("hold the loop")
        assert inside.wait(5)
        reset(victim.sock)  # the loop cannot notice: it is inside a callback
        try:
            action(server, victim_ws)
        finally:
            release.set()
        code, _ = tracker.wait_closed(victim_ws, 5)
        assert code == 1006
        assert not ws4py_errors.records, ws4py_errors.messages()[:3]
    finally:
        release.set()
        busy.close()
