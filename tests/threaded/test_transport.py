"""What happens to TCP once the WebSocket connection is over: the core decides, the loop obeys.

``Connection.transport_action`` says: a server closes TCP after a clean close;
after a failure either side half-closes (shutdown(SHUT_WR)) and reads until
the peer closes, so that its close frame is not destroyed by a reset; a
client after a clean close waits for the server to close first. Every wait
is bounded by ``close_timeout``. Also: ``WebSocket.run()`` with no manager,
and a callback's exception going to ``unhandled_error``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

from threaded_support import (
    OP_CLOSE,
    OP_TEXT,
    TIMEOUT,
    RawClient,
    RawPeer,
    RawServer,
    RecordingClient,
    RecordingWebSocket,
    Request,
    ServeFactory,
    Server,
    build_frame,
    parse_close,
    switching_protocols,
    wait_until,
)

from ws4py.messaging import Message

SHORT_CLOSE_TIMEOUT = 0.6


def _assert_still_open_for_writes(sock: socket.socket, duration: float = 0.3) -> None:
    """After the other side's EOF we can still write: no reset comes back, EOF stays EOF."""
    sock.sendall(build_frame(OP_TEXT, b"after your close", mask=True))
    time.sleep(duration)
    sock.settimeout(TIMEOUT)
    try:
        assert sock.recv(65536) == b"", "bytes after EOF"
    except ConnectionResetError:
        raise AssertionError("the other side closed TCP instead of half-closing: our write got a reset") from None


# -- server ------------------------------------------------------------------------------


def test_server_after_a_clean_close_closes_tcp_first(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        peer.send_close(1000)
        assert peer.recv_frame().opcode == OP_CLOSE
        peer.assert_eof(1.0)
        assert ws.wait_closed()[0] == 1000


def test_server_after_a_failure_half_closes_and_reads_until_the_peer_closes(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        peer.sock.sendall(build_frame(OP_TEXT, b"unmasked", mask=False))  # a client must mask: 1002
        close = peer.recv_frame()
        assert close.opcode == OP_CLOSE and parse_close(close.payload)[0] == 1002
        peer.assert_eof(1.0)  # shutdown(SHUT_WR) after the close frame
        _assert_still_open_for_writes(peer.sock)
        assert not ws.terminated, "the server dropped the connection before the peer closed"
        assert ws.values("closed") == []
    # The peer closes: the server's drain sees EOF and the connection ends.
    assert ws.wait_closed()[0] == 1002
    wait_until(lambda: ws not in server.manager, what="the server to drop the connection")


def test_server_after_a_failure_gives_up_on_a_peer_that_never_closes(serve: ServeFactory) -> None:
    class Quick(RecordingWebSocket):
        close_timeout = SHORT_CLOSE_TIMEOUT

    server = serve(Quick)
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        peer.sock.sendall(build_frame(OP_TEXT, b"unmasked", mask=False))
        started = time.monotonic()
        assert peer.recv_frame().opcode == OP_CLOSE
        peer.assert_eof(1.0)
        assert ws.wait_closed()[0] == 1002  # the peer never closes: the close timeout ends it
        assert SHORT_CLOSE_TIMEOUT - 0.1 <= time.monotonic() - started < SHORT_CLOSE_TIMEOUT + 2


# -- client ------------------------------------------------------------------------------


def test_client_after_a_clean_close_waits_for_the_server_then_gives_up_after_close_timeout(
    raw_server: RawServer,
) -> None:
    seen: dict[str, Any] = {}

    def handler(sock: socket.socket, request: Request) -> None:
        sock.sendall(switching_protocols(request))
        peer = RawPeer(sock, b"", is_client=False)
        close = peer.recv_frame()
        peer.send_frame(OP_CLOSE, close.payload[:2])
        started = time.monotonic()
        peer.assert_silent(SHORT_CLOSE_TIMEOUT - 0.2)  # the client waits for us to close first
        peer.assert_eof(TIMEOUT)  # we never do: it closes after its close_timeout
        seen["waited"] = time.monotonic() - started

    raw_server.serve(handler)
    client = RecordingClient(raw_server.url())
    client.close_timeout = SHORT_CLOSE_TIMEOUT
    client.connect()
    client.close(1000)
    assert client.wait_closed()[0] == 1000
    client.run_forever()
    raw_server.join()
    assert SHORT_CLOSE_TIMEOUT - 0.2 <= seen["waited"] < SHORT_CLOSE_TIMEOUT + 2


def test_client_after_a_failure_half_closes_and_reads_until_the_server_closes(raw_server: RawServer) -> None:
    client: RecordingClient | None = None
    seen: dict[str, Any] = {}

    def handler(sock: socket.socket, request: Request) -> None:
        sock.sendall(switching_protocols(request))
        peer = RawPeer(sock, b"", is_client=False)
        sock.sendall(build_frame(OP_TEXT, b"masked", mask=True))  # a server must not mask: 1002
        close = peer.recv_frame()
        seen["close"] = parse_close(close.payload)[0]
        peer.assert_eof(1.0)  # the client's shutdown(SHUT_WR)
        _assert_still_open_for_writes(sock)
        assert client is not None
        seen["ended_before_we_closed"] = client.closed_event.is_set()
        # returning closes our socket: the client's drain sees EOF

    raw_server.serve(handler)
    client = RecordingClient(raw_server.url())
    client.connect()
    assert client.wait_closed()[0] == 1002
    client.run_forever()
    raw_server.join()
    assert seen == {"close": 1002, "ended_before_we_closed": False}


# -- run() without a manager ---------------------------------------------------------------

_RUN_ALONE = textwrap.dedent(
    """
    import socket, sys, threading
    from ws4py.protocol import Connection, Role, TextReceived, CloseReceived
    from ws4py.websocket import EchoWebSocket

    closed = []

    class Echo(EchoWebSocket):
        def closed(self, code, reason=None):
            closed.append(code)

    ours, theirs = socket.socketpair()
    ws = Echo(ours)
    runner = threading.Thread(target=ws.run)
    runner.start()
    peer = Connection(Role.CLIENT)
    theirs.sendall(peer.send_text("hello") + peer.send_close(1000))
    events = []
    while True:
        data = theirs.recv(65536)
        if not data:
            break
        events += peer.receive_data(data)
    runner.join(10)
    assert not runner.is_alive()
    assert events == [TextReceived("hello"), CloseReceived(1000, "")], events
    assert closed == [1000], closed
    print("manager imported:", "ws4py.manager" in sys.modules)
    """
)


def test_run_drives_a_connection_to_its_end_without_the_manager_module() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _RUN_ALONE],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "manager imported: False"


# -- a callback that raises -------------------------------------------------------------------


class _Raises(RecordingWebSocket):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.errors: list[BaseException] = []
        self.error_thread: int | None = None

    def received_message(self, message: Message) -> None:
        super().received_message(message)
        raise KeyError("the handler failed")

    def unhandled_error(self, error: BaseException) -> None:
        self.errors.append(error)
        self.error_thread = threading.get_ident()


def test_a_callback_exception_goes_to_unhandled_error_then_closes_with_1011(serve: ServeFactory) -> None:
    server = serve(_Raises)
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        peer.send_text("boom")
        close = peer.recv_frame()
        assert (close.opcode, parse_close(close.payload)) == (OP_CLOSE, (1011, "internal error"))
        peer.send_frame(OP_CLOSE, close.payload)
        peer.assert_eof(1.0)
    assert ws.wait_closed()[0] == 1011
    assert len(ws.errors) == 1 and isinstance(ws.errors[0], KeyError)
    assert ws.error_thread == server.manager.ident
