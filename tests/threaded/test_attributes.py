"""A websocket's attributes: sock, protocols, extensions, addresses, and ws4py.format_addresses()."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from threaded_support import (
    RawClient,
    RawServer,
    RecordingClient,
    RecordingWebSocket,
    Request,
    ServeFactory,
    Server,
    switching_protocols,
    wait_until,
)

from ws4py import format_addresses
from ws4py.websocket import EchoWebSocket, WebSocket


def test_sock_is_the_connected_socket(connect: Any) -> None:
    client, ws = connect()
    assert isinstance(ws.sock, socket.socket)
    assert ws.sock.getpeername() == client.sock.getsockname()
    assert ws.connection is ws.sock
    assert client.connection is client.sock


def test_server_websocket_addresses(server: Server) -> None:
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        assert ws.local_address == ("127.0.0.1", server.port)
        assert ws.peer_address == peer.sock.getsockname()
        peer.send_close()
        peer.recv_frame()


def test_client_addresses(connect: Any, server: Server) -> None:
    client, ws = connect()
    assert client.peer_address == ("127.0.0.1", server.port)
    assert client.local_address == ws.peer_address


def test_format_addresses_names_both_ends(connect: Any, server: Server) -> None:
    client, ws = connect()
    client_port = client.local_address[1]
    assert format_addresses(ws) == f"[Local => 127.0.0.1:{server.port} | Remote => 127.0.0.1:{client_port}]"
    assert format_addresses(client) == f"[Local => 127.0.0.1:{client_port} | Remote => 127.0.0.1:{server.port}]"
    assert format_addresses(ws) in repr(ws)


def test_format_addresses_of_a_unix_socket_names_the_path(tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(path)
        listener.listen(1)
        with socket.socket(socket.AF_UNIX) as client_sock:
            client_sock.connect(path)
            accepted, _ = listener.accept()
            with accepted:
                ws = WebSocket(accepted)
                assert ws.local_address == path
                assert format_addresses(ws) == f"[Bound to {path!r}]"


def test_repr_of_an_unconnected_websocket() -> None:
    assert "unconnected" in repr(WebSocket(None))
    assert "unconnected" in repr(RecordingClient("ws://127.0.0.1:9/"))


def test_addresses_are_none_without_a_socket() -> None:
    client = RecordingClient("ws://127.0.0.1:9/")
    assert client.local_address is None
    assert client.peer_address is None
    assert isinstance(format_addresses(client), str)


def test_addresses_are_still_known_in_closed(serve: ServeFactory) -> None:
    class RemembersAddresses(RecordingWebSocket):
        def closed(self, code: int, reason: str | None = None) -> None:
            self.addresses_in_closed = (self.local_address, self.peer_address, format_addresses(self))
            super().closed(code, reason)

    server = serve(RemembersAddresses)
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()  # its addresses never asked for before the end
        local, remote = peer.sock.getpeername(), peer.sock.getsockname()
        peer.send_close()
        peer.recv_frame()
        ws.wait_closed()
    assert ws.addresses_in_closed[:2] == (local, remote)
    assert f"{remote[0]}:{remote[1]}" in ws.addresses_in_closed[2]


def test_a_websocket_without_a_closed_of_its_own_keeps_only_the_addresses_asked_for(serve: ServeFactory) -> None:
    """Taking them costs two system calls per connection: only for a closed() that may ask."""
    server = serve(EchoWebSocket)
    peer = RawClient(server.port)
    with peer.sock:
        ws = server.accept()
        remote = peer.sock.getsockname()
        assert ws.peer_address == remote  # asked for: kept
        peer.send_close()
        peer.recv_frame()
        wait_until(lambda: ws.terminated, what="the websocket to end")
    assert ws.peer_address == remote
    assert ws.local_address is None, "never asked for, yet taken before the socket closed"


def test_protocols_and_extensions_are_empty_lists_without_negotiation(connect: Any) -> None:
    client, ws = connect()
    assert client.protocols == [] and client.extensions == []
    assert ws.protocols == [] and ws.extensions == []


def test_negotiated_protocol_and_extension_on_the_server_side(serve: ServeFactory) -> None:
    server = serve(protocols=["v2"], extensions=["permessage-deflate"])
    client = RecordingClient(server.url(), protocols=["v1", "v2"], extensions=["permessage-deflate"])
    client.connect()
    try:
        ws = server.accept()
        assert ws.protocols == ["v2"]
        assert ws.extensions == ["permessage-deflate"]
    finally:
        client.close()
        client.wait_closed()


def test_constructor_arguments_become_attributes() -> None:
    ws = WebSocket(None, ["p"], ["e"], {"PATH_INFO": "/"}, 2.5)
    assert ws.sock is None
    assert ws.protocols == ["p"]
    assert ws.extensions == ["e"]
    assert ws.environ == {"PATH_INFO": "/"}
    assert ws.heartbeat_freq == 2.5
    assert not ws.terminated


def test_client_environ_is_none(raw_server: RawServer) -> None:
    def handler(sock: socket.socket, request: Request) -> None:
        sock.sendall(switching_protocols(request))

    raw_server.serve(handler)
    client = RecordingClient(raw_server.url())
    assert client.environ is None
    client.connect()
    client.wait_closed()
    client.run_forever()
    assert client.environ is None
