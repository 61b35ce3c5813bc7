"""A handler callback that raises: that connection is closed with 1011, no other suffers.

Also when the message it fails on arrives in the same read as the peer's
close: the close must still be answered and the connection dropped.
"""

from __future__ import annotations

from collections.abc import Callable

from faultkit import RawClient, Server, Tracker, tracked

from ws4py.messaging import Message
from ws4py.protocol import CloseReceived, TextReceived
from ws4py.websocket import EchoWebSocket


class _FailsOnBoom(EchoWebSocket):
    """Echoes, except ``boom``, on which it raises."""

    def received_message(self, message: Message) -> None:
        if message.data == b"boom":
            raise RuntimeError("the handler failed")
        super().received_message(message)


def test_handler_error_closes_that_connection_with_1011_and_spares_the_others(
    serve: Callable[..., Server],
) -> None:
    tracker = Tracker()
    server = serve(tracked(_FailsOnBoom, tracker))
    failing, bystander = RawClient(server.port), RawClient(server.port)
    try:
        failing_ws = tracker.server_side(failing.sock)
        failing.send_text("boom")
        events, ended = failing.read_until_close(5)
        assert not ended and events == [CloseReceived(1011, "internal error")]
        failing.flush_replies()
        assert failing.wait_eof(5) == b""
        assert tracker.wait_closed(failing_ws, 5)[0] == 1011
        assert failing_ws not in server.manager

        bystander.send_text("fine")
        assert bystander.events(1, 5) == [TextReceived("fine")]
    finally:
        failing.close()
        bystander.close()


def test_handler_error_on_a_message_arriving_with_the_peers_close_still_answers_the_close(
    serve: Callable[..., Server],
) -> None:
    """Regression: process() ran the callbacks before answering the protocol, so a raising callback
    skipped data_to_send() (the close echo) and the teardown: the peer's close went unanswered."""
    tracker = Tracker()
    server = serve(tracked(_FailsOnBoom, tracker))
    client = RawClient(server.port)
    try:
        ws = tracker.server_side(client.sock)
        conn = client.conn
        assert conn is not None
        client.sock.sendall(conn.send_text("boom") + conn.send_close(1000))  # one write, one read
        events, ended = client.read_until_close(3)
        assert not ended and len(events) == 1 and isinstance(events[0], CloseReceived)
        assert client.wait_eof(5) == b""
        tracker.wait_closed(ws, 5)
        assert ws not in server.manager
    finally:
        client.close()
