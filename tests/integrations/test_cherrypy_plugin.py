"""The WebSocketPlugin in a real CherryPy engine: hand-over, bus broadcast, failures, restart."""

from __future__ import annotations

import contextlib
import urllib.request

import cherrypy
import pytest
from cherrypy_support import TIMEOUT, Servers, SilentEchoWebSocket, small_window_client, wait_for
from threaded_support import OP_BINARY, OP_TEXT, RawClient, parse_close
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect


def manager_size(servers: Servers) -> int:
    return len(servers.plugin.manager)


def test_worker_is_free_once_the_101_is_out(servers: Servers) -> None:
    """A thread pool of one: 100 websockets open on it, and a plain request is still served."""
    clients = []
    try:
        for _ in range(100):
            clients.append(RawClient(servers.pool1_port, resource="/ws"))
        with urllib.request.urlopen(f"http://127.0.0.1:{servers.pool1_port}/", timeout=TIMEOUT) as response:
            assert response.read() == b"plain HTTP"
        for client in (clients[0], clients[-1]):
            client.send_text("still there")
            frame = client.recv_frame()
            assert (frame.opcode, frame.payload) == (OP_TEXT, b"still there")
    finally:
        for client in clients:
            client.close()


def test_bus_broadcast_reaches_every_peer(servers: Servers) -> None:
    peers = [RawClient(servers.port, resource="/ws") for _ in range(3)]
    try:
        wait_for(lambda: manager_size(servers) == 3, "3 websockets on the plugin's manager")
        cherrypy.engine.publish("websocket-broadcast", "to all")
        servers.plugin.broadcast(b"\x00\x01", binary=True)
        for peer in peers:
            text, binary = peer.recv_frame(), peer.recv_frame()
            assert (text.opcode, text.payload) == (OP_TEXT, b"to all")
            assert (binary.opcode, binary.payload) == (OP_BINARY, b"\x00\x01")
    finally:
        for peer in peers:
            peer.close()
    wait_for(lambda: manager_size(servers) == 0, "the plugin to forget the closed websockets")


def test_opened_may_send_and_its_broadcast_reaches_the_new_peer(servers: Servers) -> None:
    """#158: sending from opened() works, and a broadcast made there reaches the new peer too."""
    with contextlib.closing(RawClient(servers.port, resource="/ws")) as other:
        wait_for(lambda: manager_size(servers) >= 1, "a websocket on the manager")
        newcomer = RawClient(servers.port, resource="/greeting")
        try:
            port = newcomer.sock.getsockname()[1]
            assert newcomer.recv_frame().payload == b"welcome"
            assert newcomer.recv_frame().payload == f"joined {port}".encode()
            assert other.recv_frame().payload == f"joined {port}".encode()
            newcomer.send_text("echo")
            assert newcomer.recv_frame().payload == b"echo"
        finally:
            newcomer.close()


def test_handler_raising_closes_with_1011_and_the_server_goes_on(servers: Servers) -> None:
    with contextlib.closing(RawClient(servers.port, resource="/failing")) as failing:
        failing.send_text("boom")
        _, close = failing.recv_frames_until_close()
        assert parse_close(close.payload)[0] == 1011
    with connect(servers.url("/ws")) as ws:
        ws.send("after")
        assert ws.recv(TIMEOUT) == "after"


def test_peer_that_never_reads_is_dropped_with_1008_during_broadcasts(
    servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What waits for a peer that does not read stays under its max_write_buffer; the peer
    is closed with 1008 and the readers get every message."""
    monkeypatch.setattr(SilentEchoWebSocket, "max_write_buffer", 256 * 1024)
    stalled = small_window_client(servers.port, "/silent")
    reader = RawClient(servers.port, resource="/ws")
    try:
        wait_for(lambda: manager_size(servers) >= 2, "both websockets on the manager")
        message = b"m" * 65536
        count = 120  # 7.5 MiB each: far over the stalled peer's bound and socket buffers
        for _ in range(count):
            servers.plugin.broadcast(message, binary=True)
            frame = reader.recv_frame()
            assert frame.payload == message
        received, close = stalled.recv_frames_until_close(timeout=TIMEOUT)
        assert parse_close(close.payload)[0] == 1008
        assert len(received) * len(message) < 4 * 1024 * 1024  # bounded, not all 7.5 MiB
    finally:
        stalled.close()
        reader.close()


def test_engine_stop_closes_websockets_with_1001_and_a_restart_serves_again(servers: Servers) -> None:
    urls = [servers.url("/ws"), servers.url("/ws"), servers.url("/ws", servers.pool1_port)]
    old_manager = servers.plugin.manager
    try:
        with contextlib.ExitStack() as stack:
            clients: list[ClientConnection] = [stack.enter_context(connect(url, close_timeout=TIMEOUT)) for url in urls]
            wait_for(lambda: len(old_manager) == 3, "3 websockets on the manager")
            cherrypy.engine.stop()  # the clients answer the close on their own threads
            for client in clients:
                with pytest.raises(ConnectionClosed):
                    client.recv(TIMEOUT)
                assert client.close_code == 1001
            assert not old_manager.is_alive() and len(old_manager) == 0
    finally:
        cherrypy.engine.start()
    assert servers.plugin.manager is not old_manager and servers.plugin.manager.is_alive()
    for port in (servers.port, servers.pool1_port):
        with connect(servers.url("/ws", port)) as ws:
            ws.send("again")
            assert ws.recv(TIMEOUT) == "again"
