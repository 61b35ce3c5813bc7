"""wss:// through CherryPy's own TLS settings (ssl_module builtin, certificate, private key).

#270: over TLS, bytes OpenSSL has decrypted already give no readiness event;
a server that waits for one answers each message only when the next arrives
("one behind"). Every message here must be answered without a next one.

cheroot's builtin adapter handshakes on the thread that accepts every
connection: one silent peer on the TLS port would hold back every other
client for the whole socket_timeout. The handshakes are done off it, still
carrying the TLS environ and answering plain HTTP as cheroot does.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from cherrypy_support import TIMEOUT, TLS_SOCKET_TIMEOUT, Servers, drained, read_head, upgrade_request
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


#: Silent peers, and as many half-done handshakes: more than the TLS server's 10 worker threads.
IDLE_PEERS = 12


def a_client_hello(context: ssl.SSLContext) -> bytes:
    """The ClientHello a client of ``context`` sends."""
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing := ssl.MemoryBIO(), server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def trickle(sock: socket.socket, data: bytes) -> None:
    """Send ``data`` a byte every 50 ms until the server closes ``sock`` (or all is sent)."""
    with contextlib.suppress(OSError):
        for byte in data:
            sock.send(bytes([byte]))
            time.sleep(0.05)


def test_silent_slow_and_half_done_tls_handshakes_delay_no_one_and_are_dropped(
    servers: Servers, client_context: ssl.SSLContext
) -> None:
    address = ("127.0.0.1", servers.tls_port)
    idle = [socket.create_connection(address, timeout=TIMEOUT) for _ in range(2 * IDLE_PEERS)]
    hello = a_client_hello(client_context)
    for sock in idle[IDLE_PEERS:]:
        sock.sendall(hello[: len(hello) // 2])
    slow = socket.create_connection(address, timeout=TIMEOUT)
    trickling = threading.Thread(target=trickle, args=(slow, hello), daemon=True)
    trickling.start()
    try:
        # Meanwhile a client gets through, well before the server's socket_timeout is over.
        url = f"wss://localhost:{servers.tls_port}/ws"
        with connect(url, ssl=client_context, open_timeout=TLS_SOCKET_TIMEOUT / 2) as ws:
            ws.send("not delayed")
            assert ws.recv(TIMEOUT) == "not delayed"
        # Dropped without a word: the silent ones after socket_timeout of silence, the slow
        # one socket_timeout after it connected (its ClientHello takes longer to trickle in).
        for sock in [*idle, slow]:
            assert drained(sock, TLS_SOCKET_TIMEOUT + TIMEOUT) == b""
    finally:
        for sock in [*idle, slow]:
            sock.close()
        trickling.join(TIMEOUT)


def https_reports(servers: Servers, context: ssl.SSLContext, requests: int = 1) -> list[dict[str, Any]]:
    """What the application knows of each of ``requests`` HTTPS requests on one connection."""
    conn = http.client.HTTPSConnection("localhost", servers.tls_port, timeout=TIMEOUT, context=context)
    reports = []
    try:
        for _ in range(requests):
            conn.request("GET", "/scheme")
            response = conn.getresponse()
            assert response.status == 200
            reports.append({**json.loads(response.read()), "client's protocol": conn.sock.version()})
    finally:
        conn.close()
    return reports


def test_https_requests_carry_the_tls_environ(servers: Servers, client_context: ssl.SSLContext) -> None:
    for report in https_reports(servers, client_context, requests=2):  # the second on the kept-alive connection
        assert report == {
            "scheme": "https",
            "wsgi.url_scheme": "https",
            "HTTPS": "on",
            "SSL_PROTOCOL": report["client's protocol"],
            "client's protocol": report["client's protocol"],
            "SSL_TLS_SNI": "localhost",
            "SSL_CLIENT_VERIFY": "NONE",
            "SSL_CLIENT_S_DN_CN": None,
        }


def test_client_certificates_are_verified_and_reach_the_app(servers: Servers, client_context: ssl.SSLContext) -> None:
    servers.ca.issue_cert("client@example.com", common_name="ws4py client").configure_cert(client_context)
    [report] = https_reports(servers, client_context)
    assert (report["SSL_CLIENT_VERIFY"], report["SSL_CLIENT_S_DN_CN"]) == ("SUCCESS", "ws4py client")


def test_client_certificates_of_another_ca_are_refused(servers: Servers, client_context: ssl.SSLContext) -> None:
    trustme.CA().issue_cert("client@example.com").configure_cert(client_context)
    with pytest.raises((ssl.SSLError, ConnectionError)):  # in TLS 1.3, the alert comes after the client's handshake
        https_reports(servers, client_context)


def test_plain_http_to_the_tls_port_gets_cheroots_400(servers: Servers) -> None:
    with socket.create_connection(("127.0.0.1", servers.tls_port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET /scheme HTTP/1.1\r\nHost: localhost\r\n\r\n")
        answer = drained(sock, TIMEOUT)
    # The answer may be lost to a reset: the server does not read the rest of the request.
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400 Bad Request\r\n"), answer
