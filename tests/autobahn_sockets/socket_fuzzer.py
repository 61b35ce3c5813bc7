"""Autobahn's fuzzing peer over a real TCP socket, for the case tables of ``tests/core``.

``tests/core/autobahn.py`` plays every case against a protocol core in
memory. :class:`SocketFuzzer` keeps all of it (the script verbs, the frame
encoder and decoder, the deflate peer and the grading) and only replaces the
delivery: queued writes go out on a socket, one ``send`` per chunk of the
script (``sync`` and ``chopsize`` cut chunks as Autobahn's writes do, and
the socket has ``TCP_NODELAY``, so each chunk leaves as its own segment),
while everything the testee sends back is read and decoded as it comes.

Time replaces the in-memory "the testee answers at once":

* ``wait()`` (Autobahn's ``continueLater``) returns once the testee answered
  everything sent so far (an echo per complete message, a pong per ping,
  its close once the fuzzer closed), or closed, or went :data:`IDLE`
  seconds without a byte either way.
* ``wait(label)`` gives the testee :data:`LABEL_WAIT` seconds of silence to
  fail the connection before ``("timeout", label)`` is recorded.
* At the end, like Autobahn's ``closeAfter``/``killAfter``: a case the
  fuzzer closes waits for the answers, then sends its close; a case the
  testee must fail waits for the testee's close. Then the closing handshake
  and the end of TCP (the server closes first: the testee when it is the
  server, the fuzzer when it is); a testee that does not get there within
  :data:`IDLE` seconds is dropped (``killed``).

The testee is a real ws4py websocket in this process: once its ``closed()``
callback ran, its core's final state (``state``, ``closed_cleanly``,
``failure``) fills the :class:`~autobahn.Outcome` that
:func:`autobahn.problems` grades.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import hashlib
import itertools
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from autobahn import (
    BINARY,
    CONT,
    PING,
    TEXT,
    Case,
    Fuzzer,
    Outcome,
    PeerDeflate,
    _format_extension,
    _parse_head,
    mirror_accept,
    parse_extension_header,
    timeout,
)

from ws4py.client import WebSocketBaseClient
from ws4py.client.threadedclient import WebSocketClient
from ws4py.manager import WebSocketManager
from ws4py.messaging import Message
from ws4py.protocol import ConnectionFailed, Role, State
from ws4py.websocket import EchoWebSocket, WebSocket

__all__ = [
    "IDLE",
    "LABEL_WAIT",
    "CaseEchoWebSocket",
    "EchoThreadedClient",
    "ManagedEchoClient",
    "SocketFuzzer",
    "play_against_client",
    "play_against_server",
]

#: Seconds without a byte either way after which a wait gives up (a testee
#: that answers never gets near it).
IDLE = 2.0
#: Seconds of silence a labelled ``wait`` gives the testee to fail the connection.
LABEL_WAIT = 0.5
#: Seconds for connecting and for each opening handshake.
OPEN_TIMEOUT = 5.0
#: Seconds the testee has to call ``closed()`` once its connection is over.
END_TIMEOUT = 5.0

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


# -- the testees ------------------------------------------------------------------------


class _Ending:
    """What a testee mixes in (before its websocket class): an event set by ``closed()``,
    with the code and reason."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ended = threading.Event()
        self.closed_with: tuple[int, str | None] | None = None

    def closed(self, code: int, reason: str | None = None) -> None:
        self.closed_with = (code, reason)
        self.ended.set()


_registry: dict[str, CaseEchoWebSocket] = {}
_registry_cond = threading.Condition()
_tokens = itertools.count(1)


class CaseEchoWebSocket(_Ending, EchoWebSocket):
    """The server-side testee: ws4py's echo websocket, found again by the ``token`` of its URL."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        query = (self.environ or {}).get("QUERY_STRING", "")
        token = dict(part.partition("=")[::2] for part in query.split("&")).get("token")
        if token:
            with _registry_cond:
                _registry[token] = self
                _registry_cond.notify_all()

    @staticmethod
    def lookup(token: str, wait: float) -> CaseEchoWebSocket | None:
        """The websocket the server made for ``token`` (and forget it)."""
        with _registry_cond:
            _registry_cond.wait_for(lambda: token in _registry, wait)
            return _registry.pop(token, None)


class EchoThreadedClient(_Ending, WebSocketClient):
    """The client-side testee on its own thread: ws4py's threaded client, echoing every message."""

    def received_message(self, message: Message) -> None:
        self.send(message.data, message.is_binary)


class ManagedEchoClient(_Ending, WebSocketBaseClient):
    """The client-side testee on a shared :class:`WebSocketManager`, echoing every message."""

    def __init__(self, url: str, manager: WebSocketManager, **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self.manager = manager

    def handshake_ok(self) -> None:
        self.manager.add(self)

    def received_message(self, message: Message) -> None:
        self.send(message.data, message.is_binary)


# -- the fuzzer ---------------------------------------------------------------------------


class RemoteTestee:
    """The fuzzer's view of a testee at the other end of a socket.

    ``role`` is all the fuzzer needs while the case runs; ``state`` and
    ``closed_cleanly`` are filled from the real testee once it is over.
    """

    def __init__(self, role: Role) -> None:
        self.role = role
        self.state = State.OPEN
        self.closed_cleanly = False


class SocketFuzzer(Fuzzer):
    """:class:`autobahn.Fuzzer` writing to and reading from a connected socket (see the module docstring)."""

    def __init__(
        self, sock: socket.socket, testee_role: Role, *, deflate: PeerDeflate | None = None, octet_wise: bool = False
    ) -> None:
        super().__init__(RemoteTestee(testee_role), deflate=deflate)  # type: ignore[arg-type]
        self.octet_wise = octet_wise
        self._chunks: collections.deque[bytearray] = collections.deque()  # type: ignore[assignment]
        self.sock = sock
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ)
        self._interest = selectors.EVENT_READ
        self._out: memoryview | None = None
        self.eof = False  # the testee ended TCP (FIN or RST)
        self.write_failed = False  # the testee was gone before all was written
        self.dropped = False  # the fuzzer closed its socket
        self._expected = 0  # answers owed by the testee: an echo per message, a pong per ping
        self._answers = 0
        self._scanned = 0

    def write(self, data: bytes, *, sync: bool = False, chopsize: int | None = None) -> None:
        """Queue raw bytes; ``octet_wise`` sends every octet on its own."""
        if self.octet_wise:
            for i in range(len(data)):
                super().write(data[i : i + 1], sync=True)
            return
        super().write(data, sync=sync, chopsize=chopsize)

    # -- what the testee owes -------------------------------------------------------------

    def send_frame(self, opcode: int, payload: bytes | str = b"", *, fin: bool = True, **how: Any) -> None:
        if self.close_sent is None and (opcode == PING or (fin and opcode in (TEXT, BINARY, CONT))):
            self._expected += 1
        super().send_frame(opcode, payload, fin=fin, **how)

    def send_message(self, payload: bytes | str, binary: bool = False, **how: Any) -> None:
        if self.close_sent is None:
            self._expected += 1
        super().send_message(payload, binary, **how)

    def begin_frame(self, opcode: int, length: int, *, fin: bool = True) -> None:
        if self.close_sent is None and fin and opcode in (TEXT, BINARY, CONT):
            self._expected += 1
        super().begin_frame(opcode, length, fin=fin)

    def _answered(self) -> bool:
        """Whether the testee answered all it owes (or closed: it owes nothing more)."""
        if self.close_received is not None:
            return True
        if self.close_sent is not None:
            return False  # its close is what it owes now
        received = self.received
        while self._scanned < len(received):
            if received[self._scanned][0] in ("message", "pong"):
                self._answers += 1
            self._scanned += 1
        return self._answers >= self._expected

    # -- the socket -------------------------------------------------------------------------

    def _write_some(self) -> bool:
        """Write queued chunks, one ``send`` each, until the socket is full; True if anything went."""
        progressed = False
        sock = self.sock
        while True:
            out = self._out
            if out is None:
                if not self._chunks:
                    return progressed
                chunk = self._chunks.popleft()
                if not self._chunks:
                    self._chunk_open = False
                if not chunk:
                    continue
                out = self._out = memoryview(bytes(chunk))
            try:
                sent = sock.send(out)
            except (BlockingIOError, InterruptedError):
                return progressed
            except OSError:
                # The testee is gone (it closed after failing the connection): the rest is lost.
                self._chunks.clear()
                self._chunk_open = False
                self._out = None
                self.write_failed = True
                return True
            progressed = True
            self._out = out[sent:] if sent < len(out) else None

    def _read(self) -> bool:
        try:
            data = self.sock.recv(1 << 18)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:  # reset: the testee closed with our bytes unread
            data = b""
        if not data:
            self.eof = True
            return True
        self._receive(data)
        return True

    def _pump(self, done: Callable[[], bool], idle: float) -> bool:
        """Write what is queued and read what comes until ``done()``, the end of TCP, or ``idle`` seconds of silence.

        ``done`` is asked once everything queued is written (replies the
        fuzzer owes, a pong or the close echo, are queued as frames are
        decoded). Returns False on the idle timeout.
        """
        if self.dropped:
            return True
        last = time.monotonic()
        while True:
            if self.eof and (self._out is not None or self._chunks):
                self._chunks.clear()
                self._chunk_open = False
                self._out = None
            progressed = self._write_some()
            writing = self._out is not None or bool(self._chunks)
            if not writing and (self.eof or done()):
                return True
            now = time.monotonic()
            if progressed:
                last = now
            remaining = last + idle - now
            if remaining <= 0:
                return False
            interest = selectors.EVENT_READ | (selectors.EVENT_WRITE if writing else 0)
            if interest != self._interest:
                self._selector.modify(self.sock, interest)
                self._interest = interest
            for _, events in self._selector.select(remaining):
                if events & selectors.EVENT_READ and self._read():
                    last = time.monotonic()

    # -- Autobahn's verbs on a socket -------------------------------------------------------

    def flush(self) -> None:
        """Write everything queued (reading meanwhile), without waiting for answers."""
        self._pump(lambda: True, IDLE)

    def wait(self, label: str | None = None) -> bool:
        if label is None:
            self._pump(self._answered, IDLE)
            return True
        self._pump(lambda: not self.is_open, LABEL_WAIT)
        if not self.is_open:
            return False
        self.received.append(timeout(label))
        return True

    def note(self, label: str) -> None:
        self.wait()
        self.received.append(("note", label))

    def kill(self) -> None:
        """Drop the TCP connection (Autobahn's ``killAfter``)."""
        self.killed = True
        self.drop()

    def drop(self) -> None:
        if not self.dropped:
            self.dropped = True
            self._selector.close()
            with contextlib.suppress(OSError):
                self.sock.close()

    def finish(self, case: Case) -> None:
        if case.closed_by_fuzzer:
            self._pump(self._answered, IDLE)
            if self.is_open:
                self.send_close(1000)
        else:
            self._pump(lambda: self.close_received is not None, IDLE)
        handshake_done = self._pump(lambda: self.close_sent is not None and self.close_received is not None, IDLE)
        if self.testee_is_client:
            # The fuzzer is the server: it closes TCP first once the close frames crossed.
            if handshake_done and self.close_sent is not None and self.close_received is not None:
                self.drop()
            else:
                self.kill()
        elif not self._pump(lambda: False, IDLE):
            self.kill()  # the server under test never closed TCP
        else:
            self.drop()

    def settle(self, testee: WebSocket | None, ended: threading.Event | None) -> list[str]:
        """Wait for the testee's ``closed()``, then take its final state; return what went wrong."""
        found = []
        remote: RemoteTestee = self.testee  # type: ignore[assignment]
        if testee is None or ended is None:
            return ["the testee websocket was never created"]
        if not ended.wait(END_TIMEOUT):
            found.append(f"the testee's closed() was not called within {END_TIMEOUT}s of the end of the case")
        protocol = testee.protocol
        remote.state = protocol.state
        remote.closed_cleanly = protocol.closed_cleanly
        if protocol.failure is not None:
            self.failures.append(ConnectionFailed(protocol.failure.code, protocol.failure.reason))
        closed_with = getattr(testee, "closed_with", None)
        if closed_with is not None and protocol.close_code is not None and closed_with[0] != protocol.close_code:
            found.append(f"closed({closed_with[0]}) but the core's close code is {protocol.close_code}")
        return found


# -- permessage-deflate agreed on the wire ------------------------------------------------


def peer_deflate(agreed: dict[str, str | None] | None, testee_role: Role) -> PeerDeflate | None:
    """The fuzzer's deflate from the agreed parameters (as ``autobahn._handshake`` computes it)."""
    if agreed is None:
        return None
    server_bits = int(agreed.get("server_max_window_bits") or 15)
    client_bits = int(agreed.get("client_max_window_bits") or 15)
    server_nct = "server_no_context_takeover" in agreed
    client_nct = "client_no_context_takeover" in agreed
    if testee_role is Role.SERVER:  # the fuzzer is the client
        return PeerDeflate(
            send_bits=client_bits,
            send_no_context_takeover=client_nct,
            recv_bits=server_bits,
            recv_no_context_takeover=server_nct,
        )
    return PeerDeflate(
        send_bits=server_bits,
        send_no_context_takeover=server_nct,
        recv_bits=client_bits,
        recv_no_context_takeover=client_nct,
    )


def _read_head(sock: socket.socket, deadline: float) -> tuple[bytes, bytes]:
    """An HTTP head from a blocking socket, and the bytes read past it."""
    data = b""
    while b"\r\n\r\n" not in data:
        sock.settimeout(max(0.001, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"the testee closed during the opening handshake after {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


@dataclass
class Played:
    """A case played over a socket: the outcome to grade, and what the harness itself saw wrong."""

    outcome: Outcome
    harness: list[str] = field(default_factory=list)
    testee: WebSocket | None = None


def _play(fuzzer: SocketFuzzer, case: Case, leftover: bytes) -> None:
    if leftover:
        fuzzer._receive(leftover)
    try:
        case.script(fuzzer)
        fuzzer.finish(case)
    finally:
        fuzzer.drop()


def play_against_server(case: Case, port: int, *, octet_wise: bool = False) -> Played:
    """Play ``case`` as Autobahn's fuzzingclient against the ws4py server on ``port``.

    ``octet_wise`` sends every octet of the case in a write of its own.
    """
    assert not case.limits, "a server under test has its own limits"
    token = str(next(_tokens))
    deadline = time.monotonic() + OPEN_TIMEOUT
    sock = socket.create_connection(("127.0.0.1", port), timeout=OPEN_TIMEOUT)
    try:
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET /runCase?case={case.id}&agent=ws4py&token={token} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if case.deflate is not None and case.deflate.fuzzer_offers:
            lines.append("Sec-WebSocket-Extensions: " + ", ".join(case.deflate.fuzzer_offers))
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head, leftover = _read_head(sock, deadline)
        status, headers = _parse_head(head)
        assert status.startswith("HTTP/1.1 101 "), status
        assert headers["sec-websocket-accept"] == [_accept_key(key)], headers
        extensions = [e for value in headers.get("sec-websocket-extensions", []) for e in parse_extension_header(value)]
        assert len(extensions) <= 1 and all(name == "permessage-deflate" for name, _ in extensions), extensions
        assert case.deflate is not None or not extensions, f"deflate agreed without an offer: {extensions}"
    except BaseException:
        sock.close()
        raise
    agreed = extensions[0][1] if extensions else None
    fuzzer = SocketFuzzer(sock, Role.SERVER, deflate=peer_deflate(agreed, Role.SERVER), octet_wise=octet_wise)
    testee = CaseEchoWebSocket.lookup(token, OPEN_TIMEOUT)
    _play(fuzzer, case, leftover)
    harness = fuzzer.settle(testee, getattr(testee, "ended", None))
    outcome = fuzzer.outcome(case)
    outcome.agreed = agreed or {}
    return Played(outcome, harness, testee)


def play_cases_against_server(
    cases: list[Case],
    port: int,
    grade: Callable[[Case, Outcome], list[str]],
    through: str,
    *,
    octet_wise: bool = False,
) -> None:
    """Play every case against the server on ``port`` and grade each; one assertion listing
    every case that failed (``through`` names the server in its message)."""
    failures = []
    for case in cases:
        played = play_against_server(case, port, octet_wise=octet_wise)
        found = played.harness + grade(case, played.outcome)
        if found:
            failures.append(f"{case.id}: {case.description}\n  " + "\n  ".join(found))
    assert not failures, f"{len(failures)} of {len(cases)} cases failed through {through}:\n" + "\n".join(failures)


def _volunteer(case: Case, answer: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    """Add to the fuzzer's answer the server parameters the case's client options ask for.

    ws4py's client offers permessage-deflate with its default options only,
    so a case whose client options ask the server for
    ``server_no_context_takeover`` or a ``server_max_window_bits`` has the
    fuzzer volunteer them (RFC 7692 7.1.1.1 and 7.1.2.1 let a server do so
    unasked), which agrees on what the in-memory case agrees on.
    """
    assert case.deflate is not None
    options = case.deflate.client_options
    names = {name for name, _ in answer}
    answer = list(answer)
    if options.server_no_context_takeover and "server_no_context_takeover" not in names:
        answer.insert(0, ("server_no_context_takeover", None))
    if options.server_max_window_bits is not None and "server_max_window_bits" not in names:
        answer.append(("server_max_window_bits", str(options.server_max_window_bits)))
    return answer


def play_against_client(
    case: Case,
    listener: socket.socket,
    make_client: Callable[[str, list[str] | None], WebSocketBaseClient],
    *,
    octet_wise: bool = False,
) -> Played:
    """Play ``case`` as Autobahn's fuzzingserver against a ws4py client connecting to ``listener``.

    ``make_client(url, extensions)`` makes the (echoing) client; it offers
    permessage-deflate in the deflate cases only. ``octet_wise`` sends every
    octet of the case in a write of its own.
    """
    assert not case.limits, "a client under test has its own limits"
    port = listener.getsockname()[1]
    url = f"ws://127.0.0.1:{port}/runCase?case={case.id}&agent=ws4py"
    client = make_client(url, ["permessage-deflate"] if case.deflate is not None else None)
    connect_error: list[BaseException] = []

    def connect() -> None:
        try:
            client.connect()
        except BaseException as exc:
            connect_error.append(exc)

    connector = threading.Thread(target=connect, name=f"connect {case.id}", daemon=True)
    connector.start()
    deadline = time.monotonic() + OPEN_TIMEOUT
    listener.settimeout(OPEN_TIMEOUT)
    sock, _ = listener.accept()
    try:
        head, leftover = _read_head(sock, deadline)
        assert not leftover, f"the client sent {leftover!r} before the handshake's response"
        _, request = _parse_head(head)
        key = request["sec-websocket-key"][0]
        offers = [
            params
            for value in request.get("sec-websocket-extensions", [])
            for name, params in parse_extension_header(value)
            if name == "permessage-deflate"
        ]
        answer = None
        if case.deflate is not None and offers:
            answer = (case.deflate.fuzzer_accept or mirror_accept)(offers)
            if answer is not None:
                answer = _volunteer(case, answer)
        lines = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {_accept_key(key)}",
        ]
        if answer is not None:
            lines.append("Sec-WebSocket-Extensions: " + _format_extension(answer))
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    except BaseException:
        sock.close()
        raise
    agreed = None if answer is None else dict(answer)
    fuzzer = SocketFuzzer(sock, Role.CLIENT, deflate=peer_deflate(agreed, Role.CLIENT), octet_wise=octet_wise)
    harness: list[str] = []
    try:
        _play(fuzzer, case, b"")
    finally:
        connector.join(OPEN_TIMEOUT)
    if connector.is_alive():
        harness.append("the client's connect() did not return")
    elif connect_error:
        harness.append(f"the client's connect() failed: {connect_error[0]!r}")
    harness += fuzzer.settle(client, client.ended)  # type: ignore[attr-defined]
    outcome = fuzzer.outcome(case)
    outcome.agreed = agreed or {}
    return Played(outcome, harness, client)
