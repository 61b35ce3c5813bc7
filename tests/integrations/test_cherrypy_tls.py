"""wss:// through CherryPy's own TLS settings (ssl_module builtin, certificate, private key).

#270: over TLS, bytes OpenSSL has decrypted already give no readiness event;
a server that waits for one answers each message only when the next arrives
("one behind"). Every message here must be answered without a next one.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator

import pytest
from cherrypy_support import TIMEOUT, Servers, read_head, upgrade_request
from threaded_support import OP_TEXT, RawPeer, build_frame
from websockets.sync.client import connect


@pytest.fixture
def client_context(servers: Servers) -> ssl.SSLContext:
    context = ssl.create_default_context()
    servers.ca.configure_trust(context)
    return context


@pytest.fixture
def tls_peer(servers: Servers, client_context: ssl.SSLContext) -> Iterator[tuple[ssl.SSLSocket, bytes]]:
    """A TLS connection to the TLS server, nothing sent yet, and the upgrade request to send."""
    raw = socket.create_connection(("127.0.0.1", servers.tls_port), timeout=TIMEOUT)
    sock = client_context.wrap_socket(raw, server_hostname="localhost")
    try:
        yield sock, upgrade_request("/ws", servers.tls_port)
    finally:
        sock.close()


def test_wss_echo_with_verified_certificate(servers: Servers, client_context: ssl.SSLContext) -> None:
    with connect(f"wss://localhost:{servers.tls_port}/deflate", ssl=client_context) as ws:
        assert ws.recv(TIMEOUT) == "|permessage-deflate"
        ws.send("secure")
        assert ws.recv(TIMEOUT) == "secure"
        ws.send(b"\x01" * 200000)
        assert ws.recv(TIMEOUT) == b"\x01" * 200000


def test_burst_right_after_the_handshake_is_echoed_whole(tls_peer: tuple[ssl.SSLSocket, bytes]) -> None:
    sock, request = tls_peer
    burst = [b"message %03d " % i + b"." * 80 for i in range(150)]
    # 14 KiB in the handshake's own TLS record, and nothing after: more than cheroot reads
    # at once, so OpenSSL keeps the rest decrypted, with no readiness event to come.
    first = request + b"".join(build_frame(OP_TEXT, m) for m in burst)
    assert 8192 < len(first) < 16384
    sock.sendall(first)
    head, rest = read_head(sock)
    assert head.startswith(b"HTTP/1.1 101 ")
    peer = RawPeer(sock, rest, is_client=True)
    assert [peer.recv_frame().payload for _ in burst] == burst


def test_lockstep_messages_are_not_one_behind(tls_peer: tuple[ssl.SSLSocket, bytes]) -> None:
    sock, request = tls_peer
    sock.sendall(request)
    head, rest = read_head(sock)
    assert head.startswith(b"HTTP/1.1 101 ")
    peer = RawPeer(sock, rest, is_client=True)
    for i in range(50):
        # Two frames in one TLS record: the second is decrypted with the first.
        sock.sendall(build_frame(OP_TEXT, b"a%d" % i) + build_frame(OP_TEXT, b"b%d" % i))
        assert peer.recv_frame(TIMEOUT).payload == b"a%d" % i
        assert peer.recv_frame(TIMEOUT).payload == b"b%d" % i
