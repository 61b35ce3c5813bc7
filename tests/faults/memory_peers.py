"""Hostile peers against a ws4py server in a subprocess, and the server's memory they cost (issue 20).

The server runs in a process of its own (``python memory_peers.py SERVER APP
LIMITS``) so that its resident set (``VmRSS`` in ``/proc/<pid>/status``)
holds nothing of the peers: one of :data:`SERVERS` (the wsgiref server with the
threaded manager, :func:`ws4py.asyncio.serve`, the callbacks API's
:class:`~ws4py.async_websocket.WebSocketProtocol`), running one of
:data:`APPS`, with the :class:`Limits` given. It prints ``PORT <n>`` and
then obeys lines on its standard input (``broadcast COUNT SIZE``); it exits when
its standard input closes, so it never outlives the test.

The peers (:data:`PEERS`) are raw sockets that do the opening handshake
and then what an attacker would, one per memory item of the issue. :func:`measure`
opens ``k`` of them at once and gives the server's RSS growth; each peer's
``bound`` is what the limits allow one such connection to cost (docs/memory.md
derives it). ``bench/memory_worst_case.py`` prints every peer's row.
"""

from __future__ import annotations

import json
import os
import platform
import select
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from typing import Any

HOST = "127.0.0.1"
KiB = 1024
MiB = 1024 * KiB

SERVERS = ("threaded", "asyncio", "callbacks")
APPS = ("echo", "sink", "fragments")

#: What an idle open connection may cost the server (measured well under this on
#: each server; see docs/memory.md): sockets, the connection's objects, kernel-side
#: nothing (RSS only counts the process's own pages).
IDLE_ALLOWANCE = 48 * KiB
#: Read size: the threaded loop's one buffer and asyncio's per-thread buffer (not per connection),
#: but the answers to one read's worth of requests may be written before reading stops.
READ_SIZE = 256 * KiB
#: ws4py.protocol.http11.MAX_SIZE: the largest request head a server reads.
HEAD_SIZE = 16 * KiB
#: Slack for the whole process: allocator arenas, the interpreter's own growth.
SLACK = 4 * MiB


def spare_pool(limits: Limits) -> int:
    """What ``ws4py.protocol.buffers.spare_buffers`` may keep for the whole process once large
    frames have completed: 64 buffers and 64 MiB at most, each at most twice its frame (and
    16 MiB)."""
    return min(64 * MiB, 64 * min(16 * MiB, 2 * (limits.max_message_size + 14)))


@dataclass(frozen=True)
class Limits:
    """The limits a test server runs with (small, so the bounds are tight and the tests fast)."""

    max_message_size: int = 1 * MiB
    #: Threaded: senders wait above it, the loop stops reading above it.
    write_high_water: int = 64 * KiB
    #: Threaded: a peer whose write buffer is over it when more comes is closed (1008).
    max_write_buffer: int = 1 * MiB
    #: asyncio (both APIs): the transport's high-water mark.
    write_limit: int = 32 * KiB
    #: ws4py.asyncio: the received messages and bytes waiting for recv().
    max_queue: int = 16
    max_queue_bytes: int = 64 * KiB

    def out_limit(self, server: str) -> int:
        """The write buffer level above which the server stops reading from the peer."""
        return self.write_high_water if server == "threaded" else self.write_limit

    def to_json(self) -> str:
        return json.dumps(asdict(self))


# -- frames a client sends (masked with a zero key: the payload goes as it is) --------

FIN = 0x80
RSV1 = 0x40
CONT, TEXT, BINARY, CLOSE, PING = 0x0, 0x1, 0x2, 0x8, 0x9


def frame_header(first_byte: int, length: int) -> bytes:
    """A client frame's header for a ``length``-byte payload, with its (zero) masking key."""
    if length < 126:
        head = bytes((first_byte, 0x80 | length))
    elif length < 65536:
        head = bytes((first_byte, 0x80 | 126)) + length.to_bytes(2, "big")
    else:
        head = bytes((first_byte, 0x80 | 127)) + length.to_bytes(8, "big")
    return head + b"\0\0\0\0"


def frame(first_byte: int, payload: bytes = b"") -> bytes:
    return frame_header(first_byte, len(payload)) + payload


def ucs4_text(size: int) -> bytes:
    """``size`` bytes of UTF-8 whose ``str`` takes 4 bytes a character: ASCII and one emoji."""
    return b"a" * (size - 4) + "\N{GRINNING FACE}".encode()


# -- the client side ----------------------------------------------------------------


def tcp_connect(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        # Before connect(): the window it advertises is then small from the start.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(10.0)
    sock.connect((HOST, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def ws_connect(port: int, rcvbuf: int | None = None, deflate: bool = False) -> socket.socket:
    """A socket past the opening handshake (permessage-deflate if ``deflate``, with the
    defaults of RFC 7692): what follows is frames."""
    sock = tcp_connect(port, rcvbuf)
    offer = b"Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else b""
    sock.sendall(
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + offer + b"\r\n"
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: nothing of what follows the head is taken
        if not chunk:
            raise ConnectionError("the server closed the connection during the handshake")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"handshake refused: {head[:40]!r}")
    if deflate and b"permessage-deflate" not in head:
        raise ConnectionError("the server did not accept permessage-deflate")
    return sock


def send_until_blocked(sock: socket.socket, block: bytes, total: int, stall: float = 0.5) -> None:
    """Send ``block`` again and again, ``total`` bytes at most, until the server stops reading
    (a write waits ``stall`` seconds)."""
    sock.settimeout(stall)
    with suppress(OSError):  # TimeoutError included: the server stopped reading
        for _ in range(max(1, total // len(block))):
            sock.sendall(block)
    sock.settimeout(10.0)


@dataclass
class Peer:
    """One kind of hostile peer: what it does on each of its connections."""

    name: str
    #: The memory item of issue 20 it pins ("baseline", "1" to "6", or what else it checks).
    item: str
    #: What it does, for the table.
    what: str
    #: ``act(sock, limits)``: the hostile bytes on a connection past the handshake.
    act: Callable[[socket.socket, Limits], None]
    #: What one such connection may cost the server under ``limits`` (the bound the test asserts).
    bound: Callable[[str, Limits], int]
    #: The server's app: one of :data:`APPS`.
    app: str = "echo"
    #: Whether the connection does the opening handshake before ``act``.
    handshake: bool = True
    #: Whether it negotiates permessage-deflate.
    deflate: bool = False
    #: The peer socket's SO_RCVBUF (small: a peer that does not read fills it soon).
    rcvbuf: int | None = None
    #: The servers it applies to.
    servers: tuple[str, ...] = SERVERS
    #: Connections at once.
    k: int = 8
    #: Whether large frames complete: the process then keeps :func:`spare_pool` besides.
    completes_large_frames: bool = False
    #: Whether the bound is on the peak (``VmHWM``), for what the server holds only for a moment.
    peak: bool = False
    limits: Limits = field(default_factory=Limits)


def _idle(sock: socket.socket, limits: Limits) -> None:
    pass


def _big_header(sock: socket.socket, limits: Limits) -> None:
    # Item 1: 14 bytes that promise max_message_size, then nothing.
    sock.sendall(frame_header(FIN | BINARY, limits.max_message_size))


def _frame_but_last_byte(sock: socket.socket, limits: Limits) -> None:
    # The honest worst case of item 1: the whole payload but its last byte.
    n = limits.max_message_size
    sock.sendall(frame_header(FIN | BINARY, n) + bytes(n - 1))


EMPTY_CONTINUATIONS = 300_000
#: 16 pings a burst, 2 KiB of pongs: the first 4 MiB fill the kernel's send buffer (tcp_wmem).
PING_BURSTS = 4000


def _empty_continuations(sock: socket.socket, limits: Limits) -> None:
    # Item 2: a message begun, then continuation frames with nothing in them.
    sock.sendall(frame(BINARY, b"x"))
    block = frame(CONT) * 10_000
    for _ in range(EMPTY_CONTINUATIONS // 10_000):
        sock.sendall(block)


def _small_fragments(sock: socket.socket, limits: Limits) -> None:
    # Item 2: 2-byte fragments up to (not over) max_message_size, the last frame never sent.
    count = limits.max_message_size // 2 - 1
    sock.sendall(frame(BINARY, b"xy"))
    block = frame(CONT, b"xy") * 8192
    for _ in range(count // 8192):
        sock.sendall(block)


def _ping_flood(sock: socket.socket, limits: Limits) -> None:
    # Item 3: pings, each owed a pong; never reads. The server answers only the latest 16
    # pings of one read, so the peer sends 16 at a time, each time once the server has read
    # the last ones (its socket's receive queue is empty), and stops when it does not.
    burst = frame(FIN | PING, b"p" * 125) * 16
    server_port, client_port = sock.getpeername()[1], sock.getsockname()[1]
    for _ in range(PING_BURSTS):
        sock.sendall(burst)
        deadline = time.monotonic() + 0.5
        while unread_by_server(server_port, client_port):
            if time.monotonic() > deadline:
                return  # the server stopped reading
            time.sleep(0.0005)


def _echo_flood(sock: socket.socket, limits: Limits) -> None:
    # Item 3: messages the echo app answers; the peer never reads.
    send_until_blocked(sock, frame(FIN | BINARY, bytes(4 * KiB)) * 16, 64 * MiB)


def _hold_fragmented_send(sock: socket.socket, limits: Limits) -> None:
    # Item 4: nothing: the server's app starts a fragmented send to this peer, which never
    # reads; the test then has the server broadcast behind it (``broadcast`` command).
    pass


def _unreceived_texts(sock: socket.socket, limits: Limits) -> None:
    # Item 5: large texts (their str 4 bytes a character) to an app that never calls recv().
    message = frame(FIN | TEXT, ucs4_text(limits.max_message_size))
    send_until_blocked(sock, message, 8 * len(message))


def _tiny_messages(sock: socket.socket, limits: Limits) -> None:
    # One read's worth of empty messages (6 bytes each on the wire, an object of about 56
    # bytes each once received) to an app that takes none of them (ws4py.asyncio: no recv()).
    sock.sendall(frame(FIN | BINARY) * (READ_SIZE // 6))


def _wide_text_fragments(sock: socket.socket, limits: Limits) -> None:
    # The receiving side's worst case: a text of max_message_size bytes in 16 fragments,
    # each with one emoji, so that each part decodes to a str of 4 bytes a character.
    part = ucs4_text(limits.max_message_size // 16)
    frames = [frame(TEXT, part)] + [frame(CONT, part)] * 14 + [frame(FIN | CONT, part)]
    sock.sendall(b"".join(frames))


def _compressed_message(sock: socket.socket, limits: Limits) -> None:
    # permessage-deflate's state: a compressed message each way (the echo app answers it
    # compressed) makes the server's inflater and deflater, kept for the next messages.
    compressor = zlib.compressobj(wbits=-15)
    payload = compressor.compress(os.urandom(16 * KiB)) + compressor.flush(zlib.Z_SYNC_FLUSH)
    sock.sendall(frame(FIN | RSV1 | BINARY, payload[:-4]))  # RFC 7692: without the 00 00 ff ff tail


def _partial_head(sock: socket.socket, limits: Limits) -> None:
    # Item 6: a request head that never ends, just under the size the server refuses.
    sock.sendall(b"GET / HTTP/1.1\r\nX-Pad: " + b"a" * (HEAD_SIZE - 200))


def _idle_bound(server: str, limits: Limits) -> int:
    return IDLE_ALLOWANCE


def _arrived_bound(server: str, limits: Limits) -> int:
    # What arrived (14 bytes) costs its bytes; nothing for what was only promised.
    return IDLE_ALLOWANCE + 64 * KiB


def _frame_bound(server: str, limits: Limits) -> int:
    # One incomplete frame: its payload's bytes once (a reused spare buffer may be twice as big).
    return IDLE_ALLOWANCE + 2 * (limits.max_message_size + 14)


def _fragments_bound(server: str, limits: Limits) -> int:
    # A message's fragments are bounded by max_message_size, with what each fragment
    # costs beyond its payload counted (a small multiple of the limit at most).
    return IDLE_ALLOWANCE + 4 * limits.max_message_size


def _pong_bound(server: str, limits: Limits) -> int:
    # Reading stops once the write buffer is over its limit; the pongs owed for one read
    # (16 at most) may cross it.
    return IDLE_ALLOWANCE + limits.out_limit(server) + 16 * KiB


def _flood_bound(server: str, limits: Limits) -> int:
    # Reading stops once the write buffer is over its limit; one read's answers may cross
    # it, and ws4py.asyncio's queue may hold max_queue_bytes (and one message) meanwhile.
    return IDLE_ALLOWANCE + limits.out_limit(server) + 2 * READ_SIZE + limits.max_queue_bytes


def _deferred_bound(server: str, limits: Limits) -> int:
    # What waits to be sent, deferred behind a fragmented send included, is bounded by
    # max_write_buffer (plus the frames over write_high_water in flight).
    return IDLE_ALLOWANCE + limits.max_write_buffer + limits.write_high_water + 2 * BROADCAST_SIZE


def _queue_bound(server: str, limits: Limits) -> int:
    # The queue (docs/memory.md): under max(max_queue_bytes, 1 MiB), then the message that
    # crosses it, held once (as a str of 4 bytes a character at worst); one frame arriving.
    n = limits.max_message_size
    return IDLE_ALLOWANCE + max(limits.max_queue_bytes, MiB) + 4 * n + n + 14


def _text_recv_bound(server: str, limits: Limits) -> int:
    # recv(N) of docs/memory.md for a text: the frame arriving, the fragments so far, the
    # message copied out of them, and its str (4 bytes a character).
    n = limits.max_message_size
    return IDLE_ALLOWANCE + (n + 14) + n + n + 4 * n


def _deflate_bound(server: str, limits: Limits) -> int:
    # D of docs/memory.md at 15 window bits and memLevel 8: inflate 2^15 + 7 KiB, deflate
    # 2^17 + 2^17 + 6 KiB; and the message (16 KiB) each way.
    return IDLE_ALLOWANCE + (32 + 7 + 256 + 6) * KiB + 2 * 16 * KiB


def _read_messages_bound(server: str, limits: Limits) -> int:
    # The messages one read completes are all taken before the queue's limits are checked
    # (ws4py.asyncio), or handed to the callbacks (the others): at most READ_SIZE / 6 of them,
    # about 9 times their wire size.
    return IDLE_ALLOWANCE + limits.max_queue_bytes + 12 * READ_SIZE


def _head_bound(server: str, limits: Limits) -> int:
    # A pending head: the bytes read, kept and in the parser, up to the head size limit
    # and one read (16 KiB) more.
    return IDLE_ALLOWANCE + 2 * (HEAD_SIZE + 16 * KiB)


#: The broadcasts of item 4: this many distinct messages of this size.
BROADCAST_COUNT = 512
BROADCAST_SIZE = 64 * KiB


PEERS: dict[str, Peer] = {
    peer.name: peer
    for peer in (
        Peer("idle", "baseline", "an open connection that sends nothing", _idle, _idle_bound, k=100),
        Peer(
            "big_header",
            "1",
            "a header claiming max_message_size, then silence",
            _big_header,
            _arrived_bound,
            k=16,
            limits=Limits(max_message_size=4 * MiB),
        ),
        Peer(
            "frame_but_last_byte",
            "1 (worst case)",
            "a max_message_size frame but its last byte",
            _frame_but_last_byte,
            _frame_bound,
        ),
        Peer(
            "wide_text_fragments",
            "recv (worst case)",
            "a max_message_size text in 16 fragments, each a str of 4 bytes a character (peak)",
            _wide_text_fragments,
            _text_recv_bound,
            app="sink",
            k=1,
            peak=True,
        ),
        Peer(
            "empty_continuations",
            "2",
            f"a message begun, then {EMPTY_CONTINUATIONS} empty continuation frames",
            _empty_continuations,
            _fragments_bound,
            k=6,
            limits=Limits(max_message_size=128 * KiB),
        ),
        Peer(
            "small_fragments",
            "2",
            "2-byte fragments up to max_message_size, the last one never sent",
            _small_fragments,
            _fragments_bound,
            k=6,
            limits=Limits(max_message_size=256 * KiB),
        ),
        Peer(
            "ping_flood",
            "3",
            f"{PING_BURSTS} x 16 pings, each once the last were read; never reads (SO_RCVBUF 4 KiB)",
            _ping_flood,
            _pong_bound,
            rcvbuf=4 * KiB,
            k=4,
        ),
        Peer(
            "echo_flood",
            "3",
            "4 KiB messages to an echo app; never reads (SO_RCVBUF 4 KiB)",
            _echo_flood,
            _flood_bound,
            rcvbuf=4 * KiB,
        ),
        Peer(
            "fragmented_send_and_broadcasts",
            "4",
            f"never reads while the app sends a fragmented message to it and {BROADCAST_COUNT} broadcasts "
            f"of {BROADCAST_SIZE // KiB} KiB queue behind it",
            _hold_fragmented_send,
            _deferred_bound,
            app="fragments",
            rcvbuf=4 * KiB,
            servers=("threaded",),
        ),
        Peer(
            "unreceived_texts",
            "5",
            "max_message_size texts (a str of 4 bytes a character) the app never recv()s",
            _unreceived_texts,
            _queue_bound,
            app="sink",
            completes_large_frames=True,
            servers=("asyncio",),
        ),
        Peer(
            "tiny_messages",
            "queue",
            f"{READ_SIZE // KiB} KiB of empty messages in one write to an app that takes none",
            _tiny_messages,
            _read_messages_bound,
            app="sink",
        ),
        Peer(
            "deflate",
            "deflate",
            "permessage-deflate: one compressed 16 KiB message each way",
            _compressed_message,
            _deflate_bound,
            deflate=True,
            rcvbuf=4 * KiB,
            k=20,
        ),
        Peer(
            "no_handshake",
            "6",
            "TCP connections that never send a request head",
            _idle,
            _head_bound,
            handshake=False,
            k=200,
        ),
        Peer(
            "partial_head",
            "6",
            "a request head that never ends, just under the head size limit",
            _partial_head,
            _head_bound,
            handshake=False,
            k=100,
        ),
    )
}


# -- the server, in a subprocess ------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """``VmRSS``, ``VmHWM`` (bytes) and ``Threads`` of process ``pid``."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) * KiB
            elif name == "Threads":
                values[name] = int(rest)
    return values


def _tcp_table() -> Iterator[tuple[int, int, int, int]]:
    """Local port, remote port, send queue, receive queue of each IPv4 TCP socket."""
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            tx, rx = fields[4].split(":")
            yield int(fields[1].rsplit(":", 1)[1], 16), int(fields[2].rsplit(":", 1)[1], 16), int(tx, 16), int(rx, 16)


_SOCK_DIAG_BY_FAMILY = 20
_LOOPBACK = socket.inet_aton(HOST) + bytes(12)


def unread_by_server(server_port: int, client_port: int) -> int:
    """The bytes of one connection on 127.0.0.1 waiting in the server's socket for the server to
    read them (asked of the kernel by sock_diag: what ``ss`` shows as Recv-Q)."""
    sock_id = struct.pack("!HH", server_port, client_port) + _LOOPBACK + _LOOPBACK
    sock_id += struct.pack("=III", 0, 0xFFFFFFFF, 0xFFFFFFFF)  # any interface, no cookie
    request = struct.pack("=BBBxI", socket.AF_INET, socket.IPPROTO_TCP, 0, 0xFFFFFFFF) + sock_id
    header = struct.pack("=IHHII", 16 + len(request), _SOCK_DIAG_BY_FAMILY, 1, 1, 0)  # NLM_F_REQUEST
    try:
        with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, 4) as diag:  # NETLINK_SOCK_DIAG
            diag.send(header + request)
            answer = diag.recv(8192)
    except OSError:  # no sock_diag here: the same from /proc (slower with many sockets)
        return sum(rx for local, remote, _, rx in _tcp_table() if (local, remote) == (server_port, client_port))
    if struct.unpack_from("=H", answer, 4)[0] != _SOCK_DIAG_BY_FAMILY:
        return 0  # an error: no such socket (the connection is gone)
    # nlmsghdr (16), then inet_diag_msg: 4 bytes, the socket id (48), expires, rqueue.
    return int(struct.unpack_from("=I", answer, 16 + 4 + 48 + 4)[0])


def tcp_queued(port: int) -> int:
    """The bytes the kernel holds, unsent or unread, on the IPv4 TCP sockets to or from ``port``."""
    return sum(tx + rx for local, remote, tx, rx in _tcp_table() if port in (local, remote))


class ServerProcess:
    """A ws4py server in a subprocess (see the module docstring)."""

    def __init__(self, server: str, app: str, limits: Limits) -> None:
        # The server's log (peers it drops, resets) goes to a file, shown if it does not start.
        self.stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by close()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, server, app, limits.to_json()],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.close()
            self.stderr.seek(0)
            raise RuntimeError(f"the {server} server did not start: {line!r}\n{self.stderr.read()}")
        self.port = int(line.split()[1])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def status(self) -> dict[str, int]:
        return proc_status(self.proc.pid)

    def command(self, line: str, timeout: float = 30.0) -> str:
        """Send a command line; its one-line answer."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            raise TimeoutError(f"the server did not answer {line!r} within {timeout} s")
        return self.proc.stdout.readline().strip()

    def settled_rss(self, timeout: float = 30.0) -> int:
        """VmRSS once the server is done with what the peers sent: five samples 0.1 s apart
        within 64 KiB, with the bytes queued in the kernel on its connections unchanged
        (all read, or stuck because it stopped reading); else the last sample."""
        samples = [(self.status()["VmRSS"], tcp_queued(self.port))]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.1)
            samples.append((self.status()["VmRSS"], tcp_queued(self.port)))
            rss = [sample[0] for sample in samples[-5:]]
            queued = {sample[1] for sample in samples[-5:]}
            if len(rss) == 5 and max(rss) - min(rss) <= 64 * KiB and len(queued) == 1:
                break
        return samples[-1][0]

    def close(self) -> None:
        with suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        try:
            self.proc.wait(10.0)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.stderr.close()


@dataclass
class Measurement:
    """What ``k`` connections of one peer cost one server."""

    server: str
    peer: str
    k: int
    rss_before: int
    rss_after: int
    #: VmHWM, the peak resident set since the server started (transient copies show here).
    hwm_before: int
    hwm_after: int
    threads_before: int
    threads_after: int
    bound_per_connection: int
    #: What the whole process may grow by besides the connections: :data:`SLACK`, and
    #: :func:`spare_pool` when large frames complete.
    process_allowance: int = SLACK
    #: Whether the bound is on the peak resident set rather than the settled one.
    peak: bool = False

    @property
    def growth(self) -> int:
        """What the bound is on: the settled resident set's growth, or the peak's."""
        if self.peak:
            return max(0, self.hwm_after - self.hwm_before)
        return max(0, self.rss_after - self.rss_before)

    @property
    def peak_per_connection(self) -> int:
        """How much the peak resident set rose, per connection."""
        return max(0, self.hwm_after - self.hwm_before) // self.k

    @property
    def per_connection(self) -> int:
        return self.growth // self.k

    @property
    def allowed(self) -> int:
        """What the limits allow the whole process to grow by."""
        return self.k * self.bound_per_connection + self.process_allowance

    @property
    def within_bound(self) -> bool:
        return self.growth <= self.allowed

    def describe(self) -> str:
        return (
            f"{self.server} server, {self.k} x {self.peer}: {'peak ' if self.peak else ''}"
            f"RSS grew {self.growth / MiB:.1f} MiB "
            f"({self.per_connection / KiB:.0f} KiB a connection), the limits allow "
            f"{self.allowed / MiB:.1f} MiB ({self.bound_per_connection / KiB:.0f} KiB a connection "
            f"+ {self.process_allowance / MiB:.0f} MiB); threads {self.threads_before} -> {self.threads_after}"
        )


@contextmanager
def running(server: str, app: str, limits: Limits) -> Iterator[ServerProcess]:
    proc = ServerProcess(server, app, limits)
    try:
        yield proc
    finally:
        proc.close()


def _warm_up(port: int, app: str) -> None:
    """A connection and a message (an echo round trip): what the server imports or allocates
    once is not counted."""
    sock = ws_connect(port)
    with sock:
        sock.sendall(frame(FIN | BINARY, b"warm"))
        if app == "echo":
            sock.recv(64)
        sock.sendall(frame(FIN | CLOSE, (1000).to_bytes(2, "big")))
        with suppress(OSError):
            sock.recv(64)


def measure(server: str, peer: Peer, k: int | None = None, limits: Limits | None = None) -> Measurement:
    """Start ``server`` with ``peer``'s app, open ``k`` of ``peer``'s connections at once and
    measure the server's settled RSS before and while they are open."""
    k = peer.k if k is None else k
    limits = peer.limits if limits is None else limits
    with running(server, peer.app, limits) as proc:
        _warm_up(proc.port, peer.app)
        rss_before = proc.settled_rss()
        status_before = proc.status()
        socks: list[socket.socket] = []
        try:
            for _ in range(k):
                if peer.handshake:
                    socks.append(ws_connect(proc.port, peer.rcvbuf, peer.deflate))
                else:
                    socks.append(tcp_connect(proc.port, peer.rcvbuf))
            errors: list[BaseException] = []

            def act(sock: socket.socket) -> None:
                try:
                    peer.act(sock, limits)
                except OSError as exc:  # the server may close a peer it refuses: that is fine
                    errors.append(exc)

            threads = [threading.Thread(target=act, args=(sock,), daemon=True) for sock in socks]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60.0)
            if peer.app == "fragments":
                proc.command(f"broadcast {BROADCAST_COUNT} {BROADCAST_SIZE}")
            rss_after = proc.settled_rss()
            status_after = proc.status()
        finally:
            for sock in socks:
                sock.close()
    return Measurement(
        server,
        peer.name,
        k,
        rss_before,
        rss_after,
        status_before["VmHWM"],
        status_after["VmHWM"],
        status_before["Threads"],
        status_after["Threads"],
        peer.bound(server, limits),
        SLACK + (spare_pool(limits) if peer.completes_large_frames else 0),
        peer.peak,
    )


def machine() -> str:
    """One line about where the numbers were measured."""
    cpu = "?"
    with suppress(OSError), open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{platform.python_implementation()} {platform.python_version()}, {platform.system()} "
        f"{platform.release()}, {cpu}, {os.cpu_count()} CPUs"
    )


# -- the server side (this file run as a script) ------------------------------------


def _threaded(app: str, limits: Limits) -> None:
    from wsgiref.simple_server import make_server

    from ws4py.exc import StreamClosed
    from ws4py.server.wsgirefserver import WebSocketWSGIRequestHandler, WSGIServer
    from ws4py.server.wsgiutils import WebSocketWSGIApplication
    from ws4py.websocket import WebSocket

    class Handler(WebSocket):
        max_message_size = limits.max_message_size
        write_high_water = limits.write_high_water
        max_write_buffer = limits.max_write_buffer

        def opened(self) -> None:
            if app == "fragments":
                threading.Thread(target=self._send_fragments_forever, daemon=True).start()

        def _send_fragments_forever(self) -> None:
            chunk = bytes(16 * KiB)
            with suppress(StreamClosed, OSError, RuntimeError):
                self.send((chunk for _ in range(1_000_000)), binary=True)

        def received_message(self, message: Any) -> None:
            if app == "echo":
                with suppress(StreamClosed):
                    self.send(message.data, message.is_binary)

    server = make_server(
        HOST,
        0,
        server_class=WSGIServer,
        handler_class=WebSocketWSGIRequestHandler,
        app=WebSocketWSGIApplication(handler_cls=Handler, extensions=["permessage-deflate"]),
    )
    server.initialize_websockets_manager()
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def broadcast(count: int, size: int) -> None:
        assert server.manager is not None
        for i in range(count):
            # Distinct messages: each one is held until every connection sent it.
            server.manager.broadcast(i.to_bytes(4, "big") + bytes(size - 4), binary=True)

    _serve_commands(server.server_address[1], broadcast)


def _asyncio(server_kind: str, app: str, limits: Limits) -> None:
    import asyncio

    from ws4py.async_websocket import WebSocket, WebSocketProtocol
    from ws4py.asyncio import serve
    from ws4py.asyncio.endpoint import Options

    class Handler(WebSocket):
        def received_message(self, message: Any) -> None:
            if app == "echo":
                self.send(message)

    async def handler(ws: Any) -> None:
        if app == "echo":
            async for message in ws:
                await ws.send(message)
        else:  # never recv()
            await ws.wait_closed()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        if server_kind == "asyncio":
            server: Any = await serve(
                handler,
                HOST,
                0,
                ping_interval=None,
                max_size=limits.max_message_size,
                max_queue=limits.max_queue,
                max_queue_bytes=limits.max_queue_bytes,
                write_limit=limits.write_limit,
            )
        else:
            options = Options(max_size=limits.max_message_size, write_limit=limits.write_limit, ping_interval=None)
            server = await loop.create_server(lambda: WebSocketProtocol(Handler, options=options), HOST, 0)
        port = server.sockets[0].getsockname()[1]
        await loop.run_in_executor(None, _serve_commands, port, None)

    asyncio.run(main())


def _serve_commands(port: int, broadcast: Callable[[int, int], None] | None) -> None:
    """Say the port, then obey the lines of standard input until it closes; then exit at once."""
    print(f"PORT {port}", flush=True)
    for line in sys.stdin:
        words = line.split()
        if words and words[0] == "broadcast" and broadcast is not None:
            broadcast(int(words[1]), int(words[2]))
            print("done", flush=True)
        else:
            print(f"unknown command {line.strip()!r}", flush=True)
    os._exit(0)  # the parent is done: no closing handshakes with peers that are gone


def main(argv: list[str]) -> None:
    server, app, limits_json = argv
    limits = replace(Limits(), **json.loads(limits_json))
    if server == "threaded":
        _threaded(app, limits)
    else:
        _asyncio(server, app, limits)


if __name__ == "__main__":
    main(sys.argv[1:])
