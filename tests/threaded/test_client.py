"""ws4py.client: URLs, the opening handshake, TLS, compression, and the threaded client."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest
import trustme
from threaded_support import (
    OP_CLOSE,
    OP_TEXT,
    TIMEOUT,
    Inflater,
    RawClient,
    RawPeer,
    RawServer,
    Recorder,
    RecordingClient,
    Request,
    ServeFactory,
    Server,
    build_frame,
    deflate_message,
    switching_protocols,
)

from ws4py.client import WebSocketBaseClient
from ws4py.client.threadedclient import WebSocketClient
from ws4py.exc import HandshakeError
from ws4py.manager import WebSocketManager
from ws4py.protocol import Connection, ServerHandshake, State, TextReceived

# -- URLs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host", "port", "resource"),
    [
        ("ws://example.com/chat", "example.com", 80, "/chat"),
        ("ws://example.com", "example.com", 80, "/"),
        ("ws://example.com:9000/a/b?room=1&x=y", "example.com", 9000, "/a/b?room=1&x=y"),
        ("wss://example.com/", "example.com", 443, "/"),
        ("wss://example.com:8443/s?t", "example.com", 8443, "/s?t"),
        ("ws://127.0.0.1:1234", "127.0.0.1", 1234, "/"),
        ("ws://[::1]:9000/v6", "::1", 9000, "/v6"),
    ],
)
def test_url_gives_host_port_and_resource(url: str, host: str, port: int, resource: str) -> None:
    client = WebSocketBaseClient(url)
    assert (client.host, client.port, client.resource) == (host, port, resource)
    assert client.url == url
    assert client.scheme == url.split(":")[0]
    assert client.bind_addr == (host, port)
    assert client.sock is None, "no socket before connect()"


def test_unix_url_gives_the_socket_path() -> None:
    client = WebSocketBaseClient("ws+unix:///run/app.sock")
    assert client.unix_socket_path == "/run/app.sock"
    assert client.bind_addr == "/run/app.sock"
    assert client.resource == "/"


@pytest.mark.parametrize("url", ["http://example.com/", "https://example.com/", "ftp://x/", "example.com", "ws://"])
def test_bad_url_raises_value_error(url: str) -> None:
    with pytest.raises(ValueError):
        WebSocketBaseClient(url)


def test_constructor_keeps_ws4py_positional_argument_order() -> None:
    client = WebSocketBaseClient(
        "wss://h/", ["chat"], ["permessage-deflate"], 3.0, {"ca_certs": "/x"}, [("X-A", "1")], ["Origin"]
    )
    assert client.protocols == ["chat"]
    assert client.extensions == ["permessage-deflate"]
    assert client.heartbeat_freq == 3.0
    assert client.ssl_options == {"ca_certs": "/x"}
    assert client.extra_headers == [("X-A", "1")]
    assert client.exclude_headers == ["origin"]


# -- the handshake against the wsgiref server -----------------------------------


def test_client_round_trips_text_and_binary(connect: Any) -> None:
    client, ws = connect()
    client.send("héllo")
    client.send(b"\x00\x01", binary=True)
    text, binary = ws.wait_messages(2)
    assert (str(text), binary.data) == ("héllo", b"\x00\x01")
    ws.send("back")
    assert str(client.wait_messages(1)[0]) == "back"


def test_resource_and_query_reach_the_server(connect: Any) -> None:
    _, ws = connect("/room/42?user=bob&x=1")
    assert ws.environ["PATH_INFO"] == "/room/42"
    assert ws.environ["QUERY_STRING"] == "user=bob&x=1"


def test_negotiated_subprotocol_appears_in_client_and_server_protocols(serve: ServeFactory) -> None:
    server = serve(protocols=["chat.v2", "chat.v1"])
    client = RecordingClient(server.url(), protocols=["chat.v1", "chat.v2"])
    client.connect()
    ws = server.accept()
    try:
        assert client.protocols == ["chat.v2"], "the server's preference wins"
        assert ws.protocols == ["chat.v2"]
    finally:
        client.close()
        client.wait_closed()


def test_no_common_subprotocol_leaves_protocols_empty(serve: ServeFactory) -> None:
    server = serve(protocols=["chat"])
    client = RecordingClient(server.url(), protocols=["other"])
    client.connect()
    ws = server.accept()
    try:
        assert client.protocols == []
        assert ws.protocols == []
    finally:
        client.close()
        client.wait_closed()


def test_extra_headers_reach_the_server_environ(connect: Any) -> None:
    _, ws = connect(headers=[("X-Auth-Token", "s3cret"), ("Cookie", "a=b")])
    assert ws.environ["HTTP_X_AUTH_TOKEN"] == "s3cret"
    assert ws.environ["HTTP_COOKIE"] == "a=b"


def _record_request(raw_server: RawServer) -> dict[str, Request]:
    """Have ``raw_server`` accept the handshake and then close cleanly; returns where the request lands."""
    seen: dict[str, Request] = {}

    def handler(sock: socket.socket, request: Request) -> None:
        seen["request"] = request
        sock.sendall(switching_protocols(request))
        peer = RawPeer(sock, b"", is_client=False)
        close = peer.recv_frame()
        assert close.opcode == OP_CLOSE
        peer.send_frame(OP_CLOSE, close.payload)

    raw_server.serve(handler)
    return seen


def _connect_and_close(client: RecordingClient) -> None:
    client.connect()
    client.close()
    client.wait_closed()
    client.run_forever()


def test_exclude_headers_removes_a_default_header(raw_server: RawServer) -> None:
    seen = _record_request(raw_server)
    _connect_and_close(
        RecordingClient(raw_server.url(), protocols=["chat"], exclude_headers=["Sec-WebSocket-Protocol"])
    )
    raw_server.join()
    assert "sec-websocket-protocol" not in seen["request"].headers
    assert "host" in seen["request"].headers


def test_a_header_in_headers_replaces_the_default_one(raw_server: RawServer) -> None:
    seen = _record_request(raw_server)
    _connect_and_close(RecordingClient(raw_server.url(), headers=[("Host", "virtual.example")]))
    raw_server.join()
    assert seen["request"].headers["host"] == "virtual.example"
    assert seen["request"].raw.count(b"Host:") == 1


def test_host_header_carries_the_port(raw_server: RawServer) -> None:
    seen = _record_request(raw_server)
    _connect_and_close(RecordingClient(raw_server.url("/x")))
    raw_server.join()
    assert seen["request"].headers["host"] == f"127.0.0.1:{raw_server.port}"
    assert seen["request"].line == "GET /x HTTP/1.1"


def test_client_sends_no_origin_header_unless_given_one(raw_server: RawServer) -> None:
    # A deliberate change from the original ws4py (README): a non-browser client
    # has no origin, and "ws://host" is not one a server's Origin check expects.
    seen = _record_request(raw_server)
    _connect_and_close(RecordingClient(raw_server.url()))
    raw_server.join()
    assert seen["request"].headers.get("origin") is None


# -- refused handshakes ----------------------------------------------------------


def _answer(response: bytes) -> Any:
    def handler(sock: socket.socket, request: Request) -> None:
        sock.sendall(response)

    return handler


@pytest.mark.parametrize(
    ("status", "reason"), [(403, "Forbidden"), (404, "Not Found"), (200, "OK")], ids=["403", "404", "200"]
)
def test_refused_handshake_raises_handshake_error_with_the_status(
    raw_server: RawServer, status: int, reason: str
) -> None:
    body = b"go away\n"
    raw_server.serve(_answer(f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body))
    client = RecordingClient(raw_server.url())
    with pytest.raises(HandshakeError) as info:
        client.connect()
    assert info.value.status == status
    assert str(status) in str(info.value)
    assert client.sock is None
    assert not client.opened_event.is_set()


def test_a_101_without_the_right_accept_key_is_refused(raw_server: RawServer) -> None:
    raw_server.serve(_answer(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"))
    with pytest.raises(HandshakeError, match="Accept"):
        RecordingClient(raw_server.url()).connect()


def test_a_server_closing_during_the_handshake_raises_handshake_error(raw_server: RawServer) -> None:
    raw_server.serve(lambda sock, request: None)
    with pytest.raises(HandshakeError):
        RecordingClient(raw_server.url()).connect()


def test_connecting_to_a_closed_port_raises_oserror() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OSError):
        RecordingClient(f"ws://127.0.0.1:{port}/").connect()


def test_a_client_cannot_connect_twice(connect: Any) -> None:
    client, _ = connect()
    with pytest.raises(RuntimeError):
        client.connect()


# -- frames that come with the 101 -----------------------------------------------


def _server_sending_with_the_101(raw_server: RawServer) -> None:
    def handler(sock: socket.socket, request: Request) -> None:
        first = build_frame(OP_TEXT, b"first", mask=False) + build_frame(OP_TEXT, b"second", mask=False)
        sock.sendall(switching_protocols(request) + first)
        peer = RawPeer(sock, b"", is_client=False)
        hello = peer.recv_frame()
        assert hello.payload == b"ready"
        peer.send_frame(OP_TEXT, b"third")
        close = peer.recv_frame()
        assert close.opcode == OP_CLOSE
        peer.send_frame(OP_CLOSE, close.payload)

    raw_server.serve(handler)


def test_frames_in_the_101_segment_reach_the_threaded_client_first(raw_server: RawServer) -> None:
    _server_sending_with_the_101(raw_server)
    client = RecordingClient(raw_server.url())
    client.connect()
    client.send("ready")
    messages = client.wait_messages(3)
    assert [str(m) for m in messages] == ["first", "second", "third"]
    assert [kind for kind, _, _ in client.calls][:4] == ["opened", "message", "message", "message"]
    client.close()
    client.wait_closed()
    client.run_forever()


class _ManagedRecordingClient(Recorder, WebSocketBaseClient):
    """A base client that hands itself to a manager in handshake_ok (the manager page's pattern)."""

    manager: WebSocketManager

    def handshake_ok(self) -> None:
        self.manager.add(self)


def test_frames_in_the_101_segment_reach_a_managed_base_client_first(raw_server: RawServer) -> None:
    _server_sending_with_the_101(raw_server)
    manager = WebSocketManager()
    manager.start()
    try:
        client = _ManagedRecordingClient(raw_server.url())
        client.manager = manager
        client.connect()
        client.send("ready")
        messages = client.wait_messages(3)
        assert [str(m) for m in messages] == ["first", "second", "third"]
        assert [kind for kind, _, _ in client.calls][:4] == ["opened", "message", "message", "message"]
        assert {ident for _, _, ident in client.calls} == {manager.ident}
        client.close()
        client.wait_closed()
    finally:
        manager.stop()
        manager.join(TIMEOUT)
    assert not manager.is_alive()


# -- IPv6 and Unix sockets -------------------------------------------------------


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
def test_client_connects_over_ipv6(serve: ServeFactory) -> None:
    server = serve(host="::1")
    assert server.url().startswith("ws://[::1]:")
    client = RecordingClient(server.url())
    client.connect()
    ws = server.accept()
    try:
        assert client.peer_address == ("::1", server.port), "IPv6 addresses are trimmed to (host, port)"
        assert ws.environ["HTTP_HOST"] == f"[::1]:{server.port}"
        client.send("over v6")
        assert str(ws.wait_messages(1)[0]) == "over v6"
    finally:
        client.close()
        client.wait_closed()


def _core_echo_server(sock: socket.socket, request: Request) -> None:
    """An echo server made of ws4py's core alone (no wsgiref on a Unix socket)."""
    handshake = ServerHandshake()
    handshake.receive_data(request.raw)
    sock.sendall(handshake.accept())
    connection: Connection = handshake.connection()
    pending = handshake.leftover
    while True:
        data = pending or sock.recv(65536)
        pending = b""
        if not data:
            return
        for event in connection.receive_data(data):
            if isinstance(event, TextReceived):
                sock.sendall(connection.send_text("echo: " + event.data))
        sock.sendall(connection.data_to_send())
        if connection.state is State.CLOSED:
            return  # the server closes TCP first


def test_client_connects_over_a_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "ws.sock")
    unix_server = RawServer(socket.AF_UNIX, path)
    try:
        unix_server.serve(_core_echo_server)
        client = RecordingClient(f"ws+unix://{path}")
        client.connect()
        client.send("through a file")
        assert str(client.wait_messages(1)[0]) == "echo: through a file"
        assert client.peer_address == path
        assert client.local_address == ""
        client.close()
        assert client.wait_closed()[0] == 1000
        client.run_forever()
        unix_server.join()
    finally:
        unix_server.close()


# -- TLS ------------------------------------------------------------------------


@pytest.fixture
def tls_server(serve: ServeFactory, tls_server_context: ssl.SSLContext) -> Server:
    return serve(ssl_context=tls_server_context)


def test_wss_client_verifies_the_server_with_the_given_ca(
    tls_server: Server, tls_ca: trustme.CA, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca_file))
    client = RecordingClient(tls_server.url("/secure"), ssl_options={"ca_certs": str(ca_file)})
    assert client.port == tls_server.port
    client.connect()
    ws = tls_server.accept()
    try:
        assert isinstance(client.sock, ssl.SSLSocket)
        assert ws.environ["PATH_INFO"] == "/secure"
        client.send("x" * 100_000)
        assert ws.wait_messages(1)[0].data == b"x" * 100_000
        ws.send("secret reply")
        assert str(client.wait_messages(1)[0]) == "secret reply"
    finally:
        client.close()
        assert client.wait_closed()[0] == 1000
    client.run_forever()


def test_wss_client_refuses_an_unknown_ca_by_default(tls_server: Server) -> None:
    client = RecordingClient(tls_server.url())
    with pytest.raises(ssl.SSLCertVerificationError):
        client.connect()
    assert client.sock is None


def test_wss_client_checks_the_host_name(tls_server: Server, tls_ca: trustme.CA, tmp_path: Path) -> None:
    ca_file = tmp_path / "ca.pem"
    tls_ca.cert_pem.write_to_path(str(ca_file))
    client = RecordingClient(
        tls_server.url(), ssl_options={"ca_certs": str(ca_file), "server_hostname": "not-the-cert.example"}
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        client.connect()


# -- permessage-deflate ---------------------------------------------------------


def test_permessage_deflate_is_negotiated_when_both_sides_list_it(serve: ServeFactory) -> None:
    server = serve(extensions=["permessage-deflate"])
    client = RecordingClient(server.url(), extensions=["permessage-deflate"])
    client.connect()
    ws = server.accept()
    try:
        assert client.extensions == ["permessage-deflate"]
        assert ws.extensions == ["permessage-deflate"]
        big = "compressible " * 5000
        client.send(big)
        client.send(b"\x00" * 10000, binary=True)
        text, binary = ws.wait_messages(2)
        assert (str(text), binary.data) == (big, b"\x00" * 10000)
        ws.send(big)
        assert str(client.wait_messages(1)[0]) == big
    finally:
        client.close()
        client.wait_closed()


@pytest.mark.parametrize(("client_ext", "server_ext"), [(["permessage-deflate"], None), (None, ["permessage-deflate"])])
def test_permessage_deflate_is_off_unless_both_sides_list_it(
    serve: ServeFactory, client_ext: list[str] | None, server_ext: list[str] | None
) -> None:
    server = serve(extensions=server_ext)
    client = RecordingClient(server.url(), extensions=client_ext)
    client.connect()
    ws = server.accept()
    try:
        assert client.extensions == []
        assert ws.extensions == []
        client.send("plain")
        assert str(ws.wait_messages(1)[0]) == "plain"
    finally:
        client.close()
        client.wait_closed()


def test_compressed_client_frames_carry_rsv1_on_the_wire(raw_server: RawServer) -> None:
    seen: dict[str, Any] = {}

    def handler(sock: socket.socket, request: Request) -> None:
        assert "permessage-deflate" in request.headers["sec-websocket-extensions"]
        sock.sendall(switching_protocols(request, ("Sec-WebSocket-Extensions: permessage-deflate",)))
        peer = RawPeer(sock, b"", is_client=False)
        inflate = Inflater()
        frames = [peer.recv_frame() for _ in range(2)]
        seen["frames"] = [(f.rsv1, f.masked, len(f.payload), inflate(f.payload)) for f in frames]
        close = peer.recv_frame()
        peer.send_frame(OP_CLOSE, close.payload)

    raw_server.serve(handler)
    client = RecordingClient(raw_server.url(), extensions=["permessage-deflate"])
    client.connect()
    assert client.extensions == ["permessage-deflate"]
    message = "a" * 4000
    client.send(message)
    client.send(message)
    client.close()
    client.wait_closed()
    client.run_forever()
    raw_server.join()
    (rsv1_a, masked_a, size_a, data_a), (rsv1_b, _, size_b, data_b) = seen["frames"]
    assert rsv1_a and rsv1_b and masked_a
    assert data_a == data_b == message.encode()
    assert size_a < 100 and size_b < size_a, "compressed, with context takeover"


def test_server_compresses_with_rsv1_and_reads_compressed_frames(serve: ServeFactory) -> None:
    server = serve(extensions=["permessage-deflate"])
    peer = RawClient(server.port, headers=(("Sec-WebSocket-Extensions", "permessage-deflate"),))
    with peer.sock:
        assert peer.response_headers["sec-websocket-extensions"].startswith("permessage-deflate")
        ws = server.accept()
        assert ws.extensions == ["permessage-deflate"]
        peer.send_frame(OP_TEXT, deflate_message(b"squeezed " * 100), rsv1=True)
        assert str(ws.wait_messages(1)[0]) == "squeezed " * 100
        ws.send("reply " * 100)
        frame = peer.recv_frame()
        assert frame.rsv1 and frame.opcode == OP_TEXT
        assert len(frame.payload) < 100
        assert Inflater()(frame.payload) == ("reply " * 100).encode()
        peer.send_close()
        peer.recv_frame()


# -- the threaded client --------------------------------------------------------


def test_run_forever_returns_once_the_connection_is_closed(connect: Any) -> None:
    client, ws = connect()
    returned = threading.Event()
    waiter = threading.Thread(target=lambda: (client.run_forever(), returned.set()), name="run-forever")
    waiter.start()
    assert not returned.wait(0.2), "run_forever() returned while the connection is open"
    ws.close(1000, "done")
    assert returned.wait(TIMEOUT), "run_forever() did not return after the close"
    waiter.join(TIMEOUT)
    assert client.terminated
    assert client.wait_closed() == (1000, "done")


def test_run_forever_before_connect_returns_at_once() -> None:
    client = RecordingClient("ws://127.0.0.1:9/")
    returned = threading.Event()
    waiter = threading.Thread(target=lambda: (client.run_forever(), returned.set()), name="run-forever")
    waiter.start()
    assert returned.wait(TIMEOUT)
    waiter.join(TIMEOUT)


def test_daemon_property_is_true_by_default_and_settable() -> None:
    client = WebSocketClient("ws://127.0.0.1:9/")
    assert client.daemon is True
    client.daemon = False
    assert client.daemon is False
    assert client._th.daemon is False
    client.daemon = True
    assert client._th.daemon is True


def test_non_daemon_client_thread_runs_and_ends(server: Server) -> None:
    client = RecordingClient(server.url())
    client.daemon = False
    client.connect()
    ws = server.accept()
    assert not client._th.daemon
    ws.close()
    client.wait_closed()
    client.run_forever()
    assert not client._th.is_alive()


def test_client_close_code_and_reason_reach_the_server(connect: Any) -> None:
    client, ws = connect()
    client.close(4000, "client leaving")
    assert ws.wait_closed() == (4000, "client leaving")
    assert client.wait_closed()[0] == 4000


class _LateStartingClient(RecordingClient):
    """A threaded client whose thread is slow to get going (as on a loaded machine)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.may_run = threading.Event()

    def run(self) -> None:
        assert self.may_run.wait(TIMEOUT)
        super().run()


def test_terminate_right_after_connect_ends_the_client_thread_cleanly(server: Server) -> None:
    client = _LateStartingClient(server.url())
    client.connect()
    client.terminate()
    assert client.wait_closed()[0] == 1006
    errors: list[str] = []
    previous = threading.excepthook
    threading.excepthook = lambda args: errors.append(repr(args.exc_value))
    try:
        client.may_run.set()
        client.run_forever()
    finally:
        threading.excepthook = previous
    assert errors == [], "the client's thread died with an exception"
    assert len(client.values("closed")) == 1
