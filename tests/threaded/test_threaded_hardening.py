"""Issue 20 on the threaded stack: bounded buffers, no silent loss, no hang, origins.

Every test runs over real sockets on 127.0.0.1 against the wsgiref server or
the threaded client, with a hand-written peer where the wire must be watched.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
from threaded_support import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    TIMEOUT,
    RawClient,
    RecordingClient,
    RecordingWebSocket,
    ServeFactory,
    Server,
    parse_close,
    wait_until,
)

from ws4py.exc import StreamClosed
from ws4py.messaging import Message
from ws4py.websocket import EchoWebSocket

# -- item 7: terminate() right after connect() --------------------------------------


@pytest.fixture
def tls_server(serve: ServeFactory, tls_server_context: ssl.SSLContext) -> Server:
    return serve(EchoWebSocket, ssl_context=tls_server_context)


class Binding:
    """Holds the client's thread in ``setblocking()`` (the loop binding the socket) while
    the test calls ``terminate()``: the window of the race, made wide. It waits for that
    call to return, or a little while if it does not (a fixed websocket makes it wait)."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.terminating = threading.Event()
        self.terminated = threading.Event()


class SlowToBindSSLSocket(ssl.SSLSocket):
    binding: Binding | None = None

    def setblocking(self, flag: bool) -> None:
        binding = type(self).binding
        if binding is not None and not flag and threading.current_thread().name == "WebSocketClient":
            binding.reached.set()
            binding.terminating.wait(TIMEOUT)
            binding.terminated.wait(0.2)
        super().setblocking(flag)


def test_terminate_while_the_client_thread_binds_its_loop_ends_the_connection_on_that_loop(
    tls_server: Server, tls_ca: trustme.CA
) -> None:
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    context.sslsocket_class = SlowToBindSSLSocket
    binding = SlowToBindSSLSocket.binding = Binding()
    errors: list[BaseException | None] = []
    previous_hook = threading.excepthook
    threading.excepthook = lambda args: errors.append(args.exc_value)
    try:
        client = RecordingClient(tls_server.url(), ssl_options={"context": context})
        client.connect()
        assert binding.reached.wait(TIMEOUT)
        binding.terminating.set()
        client.terminate()
        binding.terminated.set()
        runner = threading.Thread(target=client.run_forever, name="run-forever", daemon=True)
        runner.start()
        runner.join(TIMEOUT)
        assert not runner.is_alive(), "run_forever() never returned after terminate()"
        assert errors == [], f"the client's thread failed: {errors}"
        assert client.wait_closed()[0] == 1006
        assert [kind for kind, _, _ in client.calls].count("closed") == 1
        assert client.sock is not None and client.sock.fileno() == -1
    finally:
        binding.terminating.set()
        binding.terminated.set()
        threading.excepthook = previous_hook
        SlowToBindSSLSocket.binding = None


def test_terminate_right_after_connect_lets_run_forever_return_and_leaks_nothing(server: Server) -> None:
    # The race is between terminate() and the client's thread starting its loop; a
    # sweep of pauses and a short switch interval make many rounds land in it. The
    # autouse fixture checks that no client thread and no descriptor outlives the test.
    errors: list[BaseException | None] = []
    previous_hook, interval = threading.excepthook, sys.getswitchinterval()
    threading.excepthook = lambda args: errors.append(args.exc_value)
    sys.setswitchinterval(1e-5)
    try:
        for i in range(100):
            client = RecordingClient(server.url())
            client.connect()
            spin_until = time.perf_counter() + (i % 20) * 10e-6
            while time.perf_counter() < spin_until:
                pass
            client.terminate()
            runner = threading.Thread(target=client.run_forever, name="run-forever", daemon=True)
            runner.start()
            runner.join(TIMEOUT)
            assert not runner.is_alive(), "run_forever() never returned after terminate()"
            assert client.wait_closed()[0] == 1006
            assert client.sock is not None and client.sock.fileno() == -1
        assert errors == [], f"client threads failed: {errors}"
    finally:
        sys.setswitchinterval(interval)
        threading.excepthook = previous_hook


# -- item 8: a send from the loop thread that cannot be honoured ---------------------

BIG = b"\xab" * 1_000_000


class SendsBigOnEachMessage(RecordingWebSocket):
    """Answers a message with up to 40 messages of 1 MB, from the loop's thread."""

    max_write_buffer = 1024 * 1024
    close_timeout = 2.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent = 0
        self.refused: list[BaseException] = []
        self.done = threading.Event()

    def received_message(self, message: Message) -> None:
        super().received_message(message)
        try:
            for _ in range(40):
                self.send(BIG, binary=True)
                self.sent += 1
        except StreamClosed as exc:
            self.refused.append(exc)
        finally:
            self.done.set()


def test_send_from_a_callback_over_max_write_buffer_raises_and_nothing_half_written_goes_out(
    serve: ServeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ws4py")
    server = serve(SendsBigOnEachMessage)
    peer = RawClient(server.port)
    try:
        ws = server.accept()
        peer.send_text("go")  # and do not read
        assert ws.done.wait(TIMEOUT)
        assert ws.refused, f"{ws.sent} sends of 1 MB to a peer that does not read all returned normally"
        # The peer reads now: every send that returned is there whole, then the 1008 close.
        frames, close = peer.recv_frames_until_close()
        assert [(f.opcode, f.fin, len(f.payload)) for f in frames] == [(OP_BINARY, True, len(BIG))] * ws.sent
        assert all(f.payload == BIG for f in frames)
        assert parse_close(close.payload)[0] == 1008
        # The first send refused says why.
        assert "max_write_buffer" in str(ws.refused[0])
        peer.send_close(1008)
        assert ws.wait_closed()[0] == 1008
        # Logged once, out of the websocket's lock (the loop runs it).
        warnings = [r.getMessage() for r in caplog.records if "bytes waiting to be sent" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].startswith("Closing "), warnings
    finally:
        peer.close()


# -- item 4: broadcasts deferred behind a fragmented send count ------------------------


class SmallBuffer(RecordingWebSocket):
    max_write_buffer = 256 * 1024
    close_timeout = 1.0

    def opened(self) -> None:
        assert self.sock is not None
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
        super().opened()


def test_broadcasts_deferred_behind_a_fragmented_send_count_against_max_write_buffer(serve: ServeFactory) -> None:
    server = serve(SmallBuffer)
    peer = RawClient(server.port)
    try:
        peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        ws = server.accept()
        started, resume = threading.Event(), threading.Event()
        outcome: list[BaseException | None] = []

        def chunks() -> Iterator[bytes]:
            started.set()  # the fragmented message is in progress from here on
            yield b"first"
            resume.wait(TIMEOUT)
            yield b"second"

        def send_fragmented() -> None:
            try:
                ws.send(chunks(), binary=True)
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        sender = threading.Thread(target=send_fragmented, name="fragmented-sender", daemon=True)
        sender.start()
        assert started.wait(TIMEOUT)
        # 40 x 64 KiB = 2.5 MiB deferred behind the fragmented message, 10x the bound.
        for _ in range(40):
            server.manager.broadcast(b"\xcd" * 65536, binary=True)
        wait_until(lambda: ws.protocol.close_sent is not None, what="the 1008 close of a peer over its bound")
        assert ws.protocol.close_sent == (1008, "write buffer overflow: the peer is not reading")
        resume.set()
        # The sender is not left waiting for a peer that does not read: the close timeout ends it.
        sender.join(TIMEOUT)
        assert not sender.is_alive(), "the fragmented send never returned"
        assert isinstance(outcome[0], StreamClosed)
        ws.wait_closed()
    finally:
        resume.set()
        peer.close()


def test_broadcasts_deferred_behind_a_fragmented_send_arrive_after_it_in_order(server: Server) -> None:
    peer = RawClient(server.port)
    try:
        ws = server.accept()
        started, resume = threading.Event(), threading.Event()

        def chunks() -> Iterator[bytes]:
            started.set()
            yield b"first"
            resume.wait(TIMEOUT)
            yield b"second"

        sender = threading.Thread(target=ws.send, args=(chunks(), True), daemon=True)
        sender.start()
        assert started.wait(TIMEOUT)
        server.manager.broadcast(b"one", binary=True)
        server.manager.broadcast(b"two", binary=True)
        resume.set()
        sender.join(TIMEOUT)
        got = [(f.opcode, f.fin, f.payload) for f in (peer.recv_frame() for _ in range(4))]
        assert got == [(OP_BINARY, False, b"first"), (OP_CONT, True, b"second"), (2, True, b"one"), (2, True, b"two")]
        peer.send_close()
        assert peer.recv_frame().opcode == OP_CLOSE
    finally:
        peer.close()


# -- item 6: pending handshakes on the wsgiref server are capped ------------------------


@contextlib.contextmanager
def idle_connections(server: Server, count: int) -> Iterator[list[socket.socket]]:
    """``count`` TCP connections to ``server`` that send nothing, closed at the end."""
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(socket.create_connection((server.host, server.port), timeout=TIMEOUT))
            for _ in range(count)
        ]


def _closed_by_server(sock: socket.socket) -> bool:
    sock.setblocking(False)  # with a timeout, recv() would wait for it even with MSG_DONTWAIT
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True  # reset


def test_idle_connections_take_no_thread_and_past_the_cap_the_oldest_are_dropped(server: Server) -> None:
    server.httpd.max_pending_handshakes = 100
    threads_before = threading.active_count()
    with idle_connections(server, 300) as idle:
        wait_until(lambda: sum(map(_closed_by_server, idle)) >= 200, what="200 connections dropped")
        closed = [_closed_by_server(sock) for sock in idle]
        # The oldest 200 went, the newest 100 still wait for their head.
        assert closed == [True] * 200 + [False] * 100
        assert threading.active_count() <= threads_before + 2
        # A real client still gets in (the oldest idle connection makes room for it).
        client = RecordingClient(server.url())
        client.connect()
        ws = server.accept()
        client.send("hello")
        assert ws.wait_messages(1)[0].data == b"hello"
        client.close()
        client.wait_closed()
        client.run_forever()


def test_idle_connections_are_dropped_after_handshake_timeout(server: Server) -> None:
    server.httpd.handshake_timeout = 0.3
    with idle_connections(server, 20) as idle:
        wait_until(lambda: all(map(_closed_by_server, idle)), what="idle connections dropped")


def test_tls_server_idle_connections_neither_stall_accept_nor_pass_the_cap(
    tls_server: Server, tls_ca: trustme.CA
) -> None:
    # On a TLS listening socket a thread per connection does the TLS handshake and reads
    # the head: ssl's accept() did the handshake, and one silent peer stalled every accept.
    tls_server.httpd.max_pending_handshakes = 10
    threads_before = threading.active_count()
    with idle_connections(tls_server, 30) as idle:
        wait_until(lambda: sum(map(_closed_by_server, idle)) >= 20, what="20 connections dropped")
        assert [_closed_by_server(sock) for sock in idle] == [True] * 20 + [False] * 10
        assert threading.active_count() <= threads_before + 10 + 2
        context = ssl.create_default_context()
        tls_ca.configure_trust(context)
        client = RecordingClient(tls_server.url(), ssl_options={"context": context})
        client.connect()
        client.send("hello")
        assert str(client.wait_messages(1)[0]) == "hello"
        client.close()
        client.wait_closed()
        client.run_forever()


# -- item 10: TLS reads and writes of one socket never overlap --------------------------


class OverlapWatchingSSLSocket(ssl.SSLSocket):
    """A real TLS socket that counts the calls into OpenSSL made while another thread's
    call on the same socket was still running (each call is stretched a little so that
    an unserialised pair of threads overlaps)."""

    overlaps = 0

    def _enter(self) -> threading.Lock:
        gate: threading.Lock = self.__dict__.setdefault("_gate", threading.Lock())
        if not gate.acquire(blocking=False):
            type(self).overlaps += 1
            gate.acquire()
        time.sleep(0.0002)
        return gate

    def send(self, data: Any, flags: int = 0) -> int:
        gate = self._enter()
        try:
            return super().send(data, flags)
        finally:
            gate.release()

    def recv_into(self, buffer: Any, nbytes: int | None = None, flags: int = 0) -> int:
        gate = self._enter()
        try:
            return super().recv_into(buffer, nbytes or 0, flags)
        finally:
            gate.release()


def test_tls_sends_from_app_threads_never_overlap_the_loops_reads(tls_server: Server, tls_ca: trustme.CA) -> None:
    server = tls_server
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    context.sslsocket_class = OverlapWatchingSSLSocket
    OverlapWatchingSSLSocket.overlaps = 0
    client = RecordingClient(server.url(), ssl_options={"context": context})
    client.connect()
    try:
        assert isinstance(client.sock, OverlapWatchingSSLSocket)
        expected = {f"{t}-{i}-" + "x" * (i % 7 * 300) for t in range(4) for i in range(100)}

        def send_some(t: int) -> None:
            for i in range(100):
                client.send(f"{t}-{i}-" + "x" * (i % 7 * 300))

        senders = [threading.Thread(target=send_some, args=(t,), daemon=True) for t in range(4)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join(TIMEOUT)
        echoed = {str(m) for m in client.wait_messages(len(expected))}
        assert echoed == expected
        assert OverlapWatchingSSLSocket.overlaps == 0, "a send ran into OpenSSL while the loop read"
    finally:
        client.close()
        client.wait_closed()
        client.run_forever()


# -- item 12: origins and Host on the WSGI path ----------------------------------------


def _handshake_status(port: int, *header_lines: str) -> int:
    lines = [
        "GET / HTTP/1.1",
        *header_lines,
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, f"closed without an answer: {head!r}"
            head += chunk
    return int(head.split(b" ")[1])


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("Origin: https://chat.example.com", 101),
        ("Origin: HTTPS://Chat.Example.COM", 101),  # scheme and host are case-insensitive
        ("Origin: https://chat.example.com:8443", 101),
        ("Origin: https://evil.example.net", 403),
        ("Origin: http://chat.example.com", 403),  # another scheme is another origin
        ("Origin: https://chat.example.com:444", 403),
        ("X-No-Origin: 1", 403),
    ],
)
def test_wsgi_application_with_origins_refuses_other_origins_with_403(
    serve: ServeFactory, origin: str, status: int
) -> None:
    server = serve()
    server.app.origins = ["https://chat.example.com", "https://chat.example.com:8443"]
    assert _handshake_status(server.port, f"Host: 127.0.0.1:{server.port}", origin) == status


def test_wsgi_application_takes_origins_and_lets_an_allowed_client_in(serve: ServeFactory) -> None:
    from threaded_support import CapturingApp

    app = CapturingApp(origins=["https://chat.example.com"], handler_cls=RecordingWebSocket)
    server = serve()
    server.httpd.set_app(app)
    server.app = app
    client = RecordingClient(server.url(), headers=[("Origin", "https://chat.example.com")])
    client.connect()
    ws = server.accept()
    assert ws.environ["HTTP_ORIGIN"] == "https://chat.example.com"
    client.close()
    client.wait_closed()
    client.run_forever()


def test_wsgi_application_without_origins_accepts_any_origin(server: Server) -> None:
    assert _handshake_status(server.port, f"Host: 127.0.0.1:{server.port}", "Origin: https://any.example") == 101


def test_wsgi_path_refuses_a_duplicate_host_header_with_400(server: Server) -> None:
    host = f"Host: 127.0.0.1:{server.port}"
    assert _handshake_status(server.port, host, host) == 400
    assert _handshake_status(server.port, host, "Host: other.example") == 400
    assert _handshake_status(server.port, host) == 101
