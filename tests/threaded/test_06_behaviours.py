"""ws4py 0.6's behaviours restored (issue 24): the pollers' timeout and repeats, the manager's
membership right after add()/remove(), close_connection(), client_terminated/server_terminated,
and the close reason as 0.6 gave it (bytes-compatible; "Going away" with 1006)."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest
from threaded_support import TIMEOUT, RawClient, RecordingClient, Server, wait_until

from ws4py.client import WebSocketBaseClient
from ws4py.manager import EPollPoller, KQueuePoller, PollPoller, SelectPoller, WebSocketManager
from ws4py.messaging import CloseControlMessage, CloseReason
from ws4py.pollers import READ, Poller

AVAILABLE_POLLERS = [cls for cls in (SelectPoller, PollPoller, EPollPoller, KQueuePoller) if cls.selector_class]


# -- the pollers -------------------------------------------------------------------


@pytest.mark.parametrize("poller_cls", AVAILABLE_POLLERS, ids=lambda cls: cls.__name__)
def test_poll_without_a_timeout_returns_after_the_constructors_timeout(poller_cls: type[Poller]) -> None:
    """poll() waited forever whatever the constructor said (a bug): it waits the constructor's timeout."""
    poller = poller_cls(timeout=0.05)
    quiet, other_end = socket.socketpair()
    try:
        poller.register(quiet.fileno())
        result: list[Any] = []
        thread = threading.Thread(target=lambda: result.append(poller.poll()), name="poll-default-timeout")
        thread.start()
        thread.join(TIMEOUT)
        hung = thread.is_alive()
        if hung:
            other_end.send(b"x")  # wake it: no thread outlives the test
            thread.join(TIMEOUT)
        assert not hung, "poll() without a timeout ignored the constructor's"
        assert result == [[]]
        other_end.send(b"x")
        assert poller.poll() == [(None, READ)]  # and what is ready comes back as before
    finally:
        poller.release()
        quiet.close()
        other_end.close()


@pytest.mark.parametrize("poller_cls", AVAILABLE_POLLERS, ids=lambda cls: cls.__name__)
def test_registering_twice_and_unregistering_twice_are_ignored(poller_cls: type[Poller]) -> None:
    poller = poller_cls(timeout=0)
    sock, other_end = socket.socketpair()
    try:
        poller.register(sock.fileno())
        poller.register(sock.fileno())
        other_end.send(b"x")
        assert poller.poll() == [(None, READ)], "one registration, one event"
        poller.unregister(sock.fileno())
        poller.unregister(sock.fileno())
        poller.unregister(12345)  # never registered
        assert poller.poll() == []
    finally:
        poller.release()
        sock.close()
        other_end.close()


# -- the manager's membership -------------------------------------------------------


class _Unmanaged(RecordingClient):
    """A client whose connect() leaves the connection to the test (no thread of its own)."""

    def handshake_ok(self) -> None:
        pass


def _connect(server: Server) -> tuple[_Unmanaged, Any]:
    client = _Unmanaged(server.url())
    client.connect()
    return client, server.accept()


@pytest.mark.parametrize("started", [True, False], ids=["running", "not-started"])
def test_add_and_remove_are_seen_at_once_from_any_thread(server: Server, started: bool) -> None:
    manager = WebSocketManager()
    if started:
        manager.start()
    client, peer = _connect(server)
    try:
        manager.add(client)
        assert client in manager and len(manager) == 1 and list(manager) == [client]
        manager.add(client)  # twice: as 0.6, nothing more
        assert len(manager) == 1
        manager.remove(_Unmanaged(server.url()))  # unknown: as 0.6, ignored
        assert len(manager) == 1
        manager.remove(client)
        assert client not in manager and len(manager) == 0 and manager.websockets == {}
        manager.remove(client)  # twice: ignored
        if started:
            # The manager let go of the socket before remove() returned: the caller may use it.
            assert client.sock.getblocking()
            peer.send("to the unmanaged client")
            client.sock.settimeout(TIMEOUT)
            assert client.once(), "the client reads its socket itself again"
            assert [str(m) for m in client.messages] == ["to the unmanaged client"]
        manager.add(client)  # back again
        assert client in manager and len(manager) == 1
        if started:
            client.wait_opened()
            client.close()
            client.wait_closed()
            wait_until(lambda: client not in manager, what="the closed client to leave the manager")
            assert len(manager) == 0
    finally:
        if not started:
            manager.start()  # runs the queued registrations, then stops and closes what is left
        manager.stop()
        manager.join(TIMEOUT)
        assert not manager.is_alive()
        client.close_connection()
        client.wait_closed()


# -- closing ---------------------------------------------------------------------


def test_close_connection_drops_the_connection_and_closed_gets_1006_going_away(server: Server) -> None:
    client = RecordingClient(server.url())
    client.connect()
    peer = server.accept()
    client.close_connection()
    code, reason = client.wait_closed()
    assert (code, reason) == (1006, "Going away")
    assert reason.decode() == "Going away", "0.6 code decodes the reason"
    assert client.terminated and client.client_terminated and client.server_terminated
    assert peer.wait_closed() == (1006, "Going away")


def test_termination_flags_follow_each_side_of_the_closing_handshake(server: Server) -> None:
    client = _Unmanaged(server.url())
    client.connect()
    peer = server.accept()
    try:
        assert not client.client_terminated and not client.server_terminated
        assert not peer.client_terminated and not peer.server_terminated
        client.close(4000, "client is done")
        assert client.client_terminated, "the client's close went out"
        assert not client.server_terminated and not client.terminated
        peer.wait_closed()
        assert peer.client_terminated and peer.server_terminated and peer.terminated
        client.sock.settimeout(TIMEOUT)
        while client.once():  # read the server's close, then its end of TCP
            pass
        client.terminate()
        assert client.server_terminated and client.terminated
        assert client.wait_closed()[0] == 4000  # the server's echo of our code
    finally:
        client.close_connection()


def test_termination_flags_can_be_set_as_0_6_code_did(server: Server) -> None:
    client = RecordingClient(server.url())
    client.connect()
    server.accept()
    client.server_terminated = True
    assert client.server_terminated and not client.client_terminated and not client.terminated
    client.server_terminated = False
    assert not client.server_terminated
    client.close()
    client.wait_closed()


def test_the_reason_closed_gets_is_text_that_answers_0_6s_bytes_api(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        peer.send_close(4001, "fin \u00e9t\u00e9")
        code, reason = ws.wait_closed()
    assert code == 4001
    assert isinstance(reason, CloseReason)
    assert reason == "fin \u00e9t\u00e9" and reason == "fin \u00e9t\u00e9".encode()
    assert reason.decode() == reason.decode("utf-8") == "fin \u00e9t\u00e9"
    assert reason != b"other" and reason != "other"


def test_close_control_message_reason_is_its_text_and_its_utf8_bytes() -> None:
    message = CloseControlMessage(1001, "au revoir \u2014 bye")
    assert message.reason == "au revoir \u2014 bye".encode() and message.reason == "au revoir \u2014 bye"
    assert message.reason.decode() == "au revoir \u2014 bye" == str(message)
    assert message.data == b"\x03\xe9" + "au revoir \u2014 bye".encode()
    from_bytes = CloseControlMessage(1000, b"bytes reason")
    assert from_bytes.reason == b"bytes reason" and str(from_bytes) == "bytes reason"
    assert CloseControlMessage(1000, None).reason == b""  # 0.6 took None for no reason


def test_the_base_client_has_0_6s_close_connection() -> None:
    client = WebSocketBaseClient("ws://127.0.0.1:1/")
    client.close_connection()  # never connected: nothing to drop, no error
    assert client.terminated
