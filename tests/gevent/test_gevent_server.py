"""ws4py's gevent server (``ws4py.server.geventserver``), monkey-patched in a subprocess.

The clients here are raw sockets with ws4py's sans-I/O core (``faultkit.RawClient``)
or ``websocket-client``, in pytest's own (unpatched) process.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import websocket as websocket_client
from faultkit import RawClient, connect_raw, unread_bytes, wait_eof, wait_stalled, wait_until
from gevent_support import PEERS, TIMEOUT, GeventServer, peer_env

from ws4py.protocol import BinaryReceived, ClientHandshake, CloseReceived, Connection, Role, TextReceived


def test_first_frame_sent_with_the_handshake_is_echoed(gevent_server: GeventServer) -> None:
    # Two frames in the same write as the request head: pywsgi's reader holds them.
    first = Connection(Role.CLIENT)
    frames = first.send_text("with the handshake") + first.send_binary(b"\x01" * 3000)
    client = RawClient(gevent_server.port, first=frames)
    try:
        echoes = client.events(2, TIMEOUT)
        assert isinstance(echoes[0], TextReceived) and echoes[0].decoded == "with the handshake", echoes
        assert isinstance(echoes[1], BinaryReceived) and echoes[1].data == b"\x01" * 3000, echoes
    finally:
        client.close()


def test_plain_wsgi_requests_beside_open_websockets(gevent_server: GeventServer) -> None:
    ws = websocket_client.create_connection(gevent_server.url(), timeout=TIMEOUT)
    try:
        assert gevent_server.get("/plain") == (200, b"plain WSGI beside websockets\n")
        assert gevent_server.get("/missing")[0] == 404
        ws.send("still open")
        assert ws.recv() == "still open"
    finally:
        ws.close()
    # A plain request to the ws4py application is refused with a clear HTTP error, not a crash.
    code, body = gevent_server.get("/echo")
    assert code == 400 and b"websocket" in body.lower(), (code, body)


def test_wsgi_websocket_blocking_api_for_gevent_websocket_applications(gevent_server: GeventServer) -> None:
    ws = websocket_client.create_connection(gevent_server.url("/compat"), timeout=TIMEOUT)
    try:
        ws.send("héllo")
        assert ws.recv() == "héllo"
        ws.send_binary(b"\x00\xff" * 40000)
        assert ws.recv() == b"\x00\xff" * 40000
        ws.close(1000, "bye")  # receive() returns None: the application returns, the handler ends
        assert ws.getstatus() == 101
    finally:
        ws.shutdown()
    wait_until(lambda: gevent_server.status()["websockets"] == 0, TIMEOUT)
    # close() from the application, its code and reason on the wire.
    once = PathClient(gevent_server.port, "/compat-once")
    assert once.events(1, TIMEOUT)[0] == BinaryReceived(b"x" * 300_000)  # sent before any receive()
    once.send_text("once")
    events, _ = once.read_until_close(TIMEOUT)
    assert isinstance(events[0], TextReceived) and events[0].decoded == "once", events
    assert isinstance(events[-1], CloseReceived) and (events[-1].code, events[-1].reason) == (4000, "done"), events
    once.close()
    # An application that raises after the handshake: 1011, as for a ws4py handler.
    failing = PathClient(gevent_server.port, "/compat-raise")
    failing.send_text("boom")
    events, _ = failing.read_until_close(TIMEOUT)
    assert isinstance(events[-1], CloseReceived) and events[-1].code == 1011, events
    failing.close()


def test_wsgi_websocket_refuses_an_invalid_upgrade_with_its_http_error(gevent_server: GeventServer) -> None:
    sock = connect_raw(gevent_server.port)
    sock.sendall(
        b"GET /compat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"  # no Sec-WebSocket-Key
    )
    response = wait_eof(sock, TIMEOUT)
    sock.close()
    assert response.startswith(b"HTTP/1.1 400 "), response
    assert b"Sec-WebSocket-Key" in response, response


def test_handler_raising_closes_with_1011_and_the_server_goes_on(gevent_server: GeventServer) -> None:
    client = PathClient(gevent_server.port, "/raise")
    client.send_text("boom")
    events, ended = client.read_until_close(TIMEOUT)
    assert not ended and isinstance(events[-1], CloseReceived) and events[-1].code == 1011, events
    client.flush_replies()
    client.wait_eof(TIMEOUT)
    client.close()
    ws = websocket_client.create_connection(gevent_server.url(), timeout=TIMEOUT)
    ws.send("after the failure")
    assert ws.recv() == "after the failure"
    ws.close()


def test_client_killed_mid_message_is_released(gevent_server: GeventServer) -> None:
    before = gevent_server.status()
    process = subprocess.Popen(
        [sys.executable, str(PEERS), "killed-midway", str(gevent_server.port)],
        stdout=subprocess.PIPE,
        text=True,
        env=peer_env(),
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "midway"
        wait_until(lambda: gevent_server.status()["websockets"] == before["websockets"] + 1, TIMEOUT)
    finally:
        process.kill()
        process.wait(TIMEOUT)
    assert wait_until(lambda: gevent_server.status()["websockets"] == before["websockets"], TIMEOUT)
    after = gevent_server.status()
    assert after["fds"] <= before["fds"] and after["greenlets"] <= before["greenlets"], (before, after)


def test_stop_closes_every_websocket_with_1001(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server()
    clients = [RawClient(server.port) for _ in range(3)]
    compat = websocket_client.create_connection(server.url("/compat"), timeout=TIMEOUT)
    compat.send("open")
    assert compat.recv() == "open"
    assert wait_until(lambda: server.status()["websockets"] == 3, TIMEOUT)
    stopping = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    for client in clients:
        events, ended = client.read_until_close(TIMEOUT)
        assert not ended and isinstance(events[-1], CloseReceived), events
        assert events[-1].code == 1001, events[-1]
        client.flush_replies()  # the close answered: the server ends the connection at once
        client.wait_eof(TIMEOUT)
        client.close()
    assert server.stop() == 0
    assert any("stopped" in line for line in server.lines), server.lines
    assert time.monotonic() - stopping < TIMEOUT
    assert not server.tracebacks(), server.errors
    compat.shutdown()


def test_slow_and_silent_handshakes_delay_no_one_and_are_dropped(start_server, tls_files) -> None:  # type: ignore[no-untyped-def]
    server = start_server("--handshake-timeout", "1.0")
    tls_server = start_server(
        "--handshake-timeout", "1.0", "--certfile", tls_files["cert"], "--keyfile", tls_files["key"]
    )
    silent_tls = connect_raw(tls_server.port)  # no TLS handshake at all
    silent = connect_raw(server.port)
    slow = connect_raw(server.port)
    slow.sendall(b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and nothing more
    # Meanwhile another client is served at once.
    ws = websocket_client.create_connection(server.url(), timeout=TIMEOUT)
    ws.send("not delayed")
    assert ws.recv() == "not delayed"
    for pending in (silent, slow):
        pending.setblocking(False)
        try:
            data = pending.recv(1)
        except BlockingIOError:
            data = None
        assert data is None, "a pending handshake was dropped before the others were served"
        pending.setblocking(True)
    # Both are dropped once the timeout passed (a 400 for the one that sent part of a head).
    assert wait_eof(silent, TIMEOUT) == b""
    assert wait_eof(silent_tls, TIMEOUT) == b""
    wait_eof(slow, TIMEOUT)
    ws.send("still served")
    assert ws.recv() == "still served"
    ws.close()
    silent.close()
    silent_tls.close()
    slow.close()


def test_a_request_head_trickled_byte_by_byte_is_dropped_at_the_timeout(start_server) -> None:  # type: ignore[no-untyped-def]
    """The timeout bounds the whole head, not each read: a byte every 0.1 s does not keep it alive."""
    server = start_server("--handshake-timeout", "1.0")
    trickle = connect_raw(server.port)
    head = b"GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"x" * 1000
    trickle.settimeout(0.1)
    sent = 0
    try:
        for byte in head:  # 100 s at this pace, were it not dropped
            trickle.sendall(bytes([byte]))
            sent += 1
            try:
                if trickle.recv(4096) == b"" or sent > 60:
                    break  # dropped (an EOF), or the answer to a head it took (a 400 then EOF)
            except TimeoutError:
                continue
    except OSError:
        pass  # reset while sending: dropped
    finally:
        trickle.close()
    assert sent <= 60, f"still reading the head after {sent} bytes, one every 0.1 s (timeout 1 s)"


def test_peer_that_never_reads_during_a_broadcast_is_dropped_with_1008(start_server) -> None:  # type: ignore[no-untyped-def]
    server = start_server()
    reader = PathClient(server.port, "/broadcast")
    sleeper = PathClient(server.port, "/broadcast", rcvbuf=4096)
    assert wait_until(lambda: server.status()["websockets"] == 2, TIMEOUT)
    reader.send_text("say hello all")  # a text broadcast reaches both, the sender too
    for client in (reader, sleeper):
        event = client.events(1, TIMEOUT)[0]
        assert isinstance(event, TextReceived) and event.decoded == "hello all", event
    rss_before = server.status()["rss"]
    count, size = 400, 65536  # 26 MB to each: far over the 4 MiB write buffer bound
    reader.send_text(f"go {count} {size}")
    messages = reader.events(count, 30)
    assert all(isinstance(e, BinaryReceived) and len(e.data) == size for e in messages), messages[-1:]
    grown = server.status()["rss"] - rss_before
    assert grown < 16 * 1024, f"the server grew by {grown} KiB for a peer that does not read"
    # The sleeper, read at last: some of the messages, then the server's close 1008.
    events, _ = sleeper.read_until_close(TIMEOUT)
    assert isinstance(events[-1], CloseReceived) and events[-1].code == 1008, events[-1:]
    assert sum(isinstance(e, BinaryReceived) for e in events) < count
    reader.close()
    sleeper.close()


def test_a_greenlet_sending_to_a_slow_peer_is_held_back_not_buffered(gevent_server: GeventServer) -> None:
    client = PathClient(gevent_server.port, "/produce", rcvbuf=16384)
    rss_before = gevent_server.status()["rss"]
    count, size = 400, 65536  # 26 MB, sent by a greenlet of the server's as fast as it may
    client.send_text(f"produce {count} {size}")
    # The peer lags (reads nothing yet): the producer must wait, not buffer it all.
    wait_stalled(lambda: unread_bytes(client.sock), quiet=0.2, timeout=TIMEOUT)
    grown = gevent_server.status()["rss"] - rss_before
    messages = client.events(count, 30)
    assert [int.from_bytes(m.data[:4], "big") for m in messages] == list(range(count))  # type: ignore[attr-defined]
    assert grown < 16 * 1024, f"the server grew by {grown} KiB for a peer that lags"
    client.close()


class PathClient(RawClient):
    """``faultkit.RawClient`` (ws4py's core on a raw socket) on a path other than ``/``."""

    def __init__(self, port: int, path: str, rcvbuf: int | None = None) -> None:
        self.sock = connect_raw(port, rcvbuf, TIMEOUT)
        handshake = ClientHandshake("127.0.0.1", path, port=port)
        self.sock.sendall(handshake.request_bytes())
        while handshake.receive_data(self.sock.recv(65536)) is None:
            pass
        self.conn = handshake.connection(max_message_size=None)
        self.pending = list(self.conn.receive_data(handshake.leftover)) if handshake.leftover else []
