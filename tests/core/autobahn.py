"""A sans-I/O re-creation of the Autobahn|Testsuite fuzzing peer.

Autobahn's ``fuzzingclient`` connects to a server under test, sends it
scripted frames (often malformed, often cut into odd pieces) and grades what
comes back; its ``fuzzingserver`` does the same to a client under test. Here
the peer under test (the *testee*) is a :class:`ws4py.protocol.Connection`
driven like an echo endpoint, and :class:`Fuzzer` plays Autobahn's side with
its own frame encoder and decoder, so that the codec under test never grades
itself.

A :class:`Case` is Autobahn's case: a ``script`` that talks to the fuzzer
with Autobahn's verbs (``send_frame``, ``send_message``, ``send_close``,
``wait`` for ``continueLater``...), the event lists ``expected`` for each
behaviour (``OK``, ``NON-STRICT``) and the expected close. Bytes reach the
testee the way Autobahn's writes reach the wire: frames written back to back
arrive in one ``receive_data`` call, ``sync=True`` ends a read after the
frame, ``chopsize=n`` delivers the frame ``n`` bytes per read, and ``wait``
lets the testee answer everything sent so far before the script goes on.
:func:`run_case` plays a case against a testee in either role and returns an
:class:`Outcome`; :func:`problems` grades it like Autobahn's
``Case.onConnectionLost`` and lists what is wrong (empty when the case
passes).
"""

from __future__ import annotations

import base64
import hashlib
import random
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ws4py.exc import StreamClosed
from ws4py.protocol import (
    BinaryReceived,
    ClientHandshake,
    Connection,
    ConnectionFailed,
    DeflateOptions,
    Event,
    Role,
    ServerHandshake,
    State,
    TextReceived,
)

__all__ = [
    "OK",
    "NON_STRICT",
    "FAILED",
    "CONT",
    "TEXT",
    "BINARY",
    "CLOSE",
    "PING",
    "PONG",
    "Case",
    "DeflateSetup",
    "Fuzzer",
    "Outcome",
    "PeerDeflate",
    "encode_frame",
    "grade",
    "message",
    "mirror_accept",
    "parse_extension_header",
    "pong",
    "problems",
    "run_case",
    "timeout",
    "xor_mask",
]

OK = "OK"
NON_STRICT = "NON-STRICT"
FAILED = "FAILED"

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_TAIL = b"\x00\x00\xff\xff"
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

Observed = tuple  # ("message", payload, binary) | ("pong", payload) | ("ping", payload) | ("timeout", label)
Expected = dict[str, list[Observed]]


def _b(data: bytes | str) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


def message(payload: bytes | str, binary: bool = False) -> Observed:
    """An echoed message, as Autobahn records it."""
    return ("message", _b(payload), binary)


def pong(payload: bytes | str = b"") -> Observed:
    return ("pong", _b(payload))


def timeout(label: str) -> Observed:
    """Autobahn's ``("timeout", label)``: the testee was still open when the script went on."""
    return ("timeout", label)


# -- frames, independent of the codec under test ------------------------------


def xor_mask(data: bytes, key: bytes, offset: int = 0) -> bytes:
    """``data`` XORed with ``key`` repeated, starting at key byte ``offset``."""
    n = len(data)
    if not n:
        return b""
    key = key[offset % 4 :] + key[: offset % 4]
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def encode_frame(
    opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bytes | None = None, length: int | None = None
) -> bytes:
    """One frame as Autobahn builds it: ``rsv`` is the 3-bit RSV1-RSV3 field (4 = RSV1).

    ``length`` overrides the announced payload length (for a frame whose
    payload is sent in pieces, see :meth:`Fuzzer.begin_frame`).
    """
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv & 7) << 4 | opcode
    mask_bit = 0x80 if mask is not None else 0
    if n < 126:
        header = bytes((b0, mask_bit | n))
    elif n < 1 << 16:
        header = bytes((b0, mask_bit | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((b0, mask_bit | 127)) + n.to_bytes(8, "big")
    if mask is None:
        return header + payload
    return header + mask + xor_mask(payload, mask)


# -- permessage-deflate on the fuzzer's side --------------------------------------


class PeerDeflate:
    """The fuzzer's permessage-deflate, from the parameters the handshake agreed.

    ``send_*`` govern what the fuzzer compresses, ``recv_*`` what the testee
    compresses. The fuzzer inflates with exactly the testee's agreed window
    and, under ``recv_no_context_takeover``, with a fresh inflater for every
    message, so a testee that breaks either agreement produces data the
    fuzzer cannot inflate. zlib cannot deflate with an 8-bit window, so with
    ``send_bits == 8`` the fuzzer deflates with run-length matches only,
    which any window holds.
    """

    def __init__(
        self, *, send_bits: int, send_no_context_takeover: bool, recv_bits: int, recv_no_context_takeover: bool
    ):
        self.send_bits = send_bits
        self.send_no_context_takeover = send_no_context_takeover
        self.recv_bits = recv_bits
        self.recv_no_context_takeover = recv_no_context_takeover
        self._compressor: Any = None
        self._decompressor: Any = None

    def __repr__(self) -> str:
        return (
            f"PeerDeflate(send_bits={self.send_bits}, send_nct={self.send_no_context_takeover}, "
            f"recv_bits={self.recv_bits}, recv_nct={self.recv_no_context_takeover})"
        )

    def compress(self, data: bytes) -> bytes:
        """The compressed payload of one message."""
        if self._compressor is None:
            if self.send_bits > 8:
                self._compressor = zlib.compressobj(6, zlib.DEFLATED, -self.send_bits)
            else:
                # zlib cannot deflate with an 8-bit window, but run-length
                # matches (distance 1) fit in any window.
                self._compressor = zlib.compressobj(6, zlib.DEFLATED, -9, 8, zlib.Z_RLE)
        out = self._compressor.compress(data) + self._compressor.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(_TAIL)
        if self.send_no_context_takeover:
            self._compressor = None
        return out[:-4]

    def decompress(self, data: bytes) -> bytes:
        if self._decompressor is None:
            self._decompressor = zlib.decompressobj(-self.recv_bits)
        out = self._decompressor.decompress(data + _TAIL)
        if self.recv_no_context_takeover:
            self._decompressor = None
        return out


def parse_extension_header(value: str) -> list[tuple[str, dict[str, str | None]]]:
    """``permessage-deflate; a; b=9, x`` -> ``[("permessage-deflate", {"a": None, "b": "9"}), ("x", {})]``."""
    result = []
    for element in value.split(","):
        parts = [p.strip() for p in element.split(";")]
        if not parts[0]:
            continue
        params: dict[str, str | None] = {}
        for part in parts[1:]:
            name, eq, val = part.partition("=")
            params[name.strip()] = val.strip().strip('"') if eq else None
        result.append((parts[0], params))
    return result


def _format_extension(params: Sequence[tuple[str, str | None]]) -> str:
    return "; ".join(["permessage-deflate"] + [name if val is None else f"{name}={val}" for name, val in params])


def _parse_head(data: bytes) -> tuple[str, dict[str, list[str]]]:
    head, sep, _ = data.partition(b"\r\n\r\n")
    assert sep, "incomplete HTTP head"
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return lines[0], headers


def _accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


ServerAccept = Callable[[list[dict[str, "str | None"]]], "list[tuple[str, str | None]] | None"]


@dataclass(frozen=True)
class DeflateSetup:
    """How a permessage-deflate case negotiates.

    Testee as server: the fuzzer offers ``fuzzer_offers`` (``Sec-WebSocket-Extensions``
    values, as Autobahn's client writes them) to a ``ServerHandshake(compression=server_options)``.
    Testee as client: ``ClientHandshake(compression=client_options)`` offers and
    the fuzzer answers with ``fuzzer_accept(offers)`` (the parameters of its
    response, or ``None`` to decline), like Autobahn's server accept functions.
    """

    fuzzer_offers: tuple[str, ...] = ("permessage-deflate; client_no_context_takeover; client_max_window_bits",)
    server_options: DeflateOptions = field(default_factory=DeflateOptions)
    client_options: DeflateOptions = field(default_factory=DeflateOptions)
    fuzzer_accept: ServerAccept | None = None


def mirror_accept(offers: list[dict[str, str | None]]) -> list[tuple[str, str | None]] | None:
    """Accept the first offer as it is (Autobahn's ``PerMessageDeflateOfferAccept(offer)``)."""
    offer = offers[0]
    response: list[tuple[str, str | None]] = []
    for name in ("server_no_context_takeover", "client_no_context_takeover"):
        if name in offer:
            response.append((name, None))
    for name in ("server_max_window_bits", "client_max_window_bits"):
        if offer.get(name) is not None:
            response.append((name, offer[name]))
    return response


def _handshake(setup: DeflateSetup, role: Role, limits: dict[str, Any]) -> tuple[Connection, PeerDeflate | None, dict]:
    """Run the opening handshake; return the testee, the fuzzer's deflate and the agreed parameters."""
    if role is Role.SERVER:
        key = base64.b64encode(bytes(range(16))).decode()
        lines = [
            "GET /runCase?case=1&agent=ws4py HTTP/1.1",
            "Host: 127.0.0.1:9001",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if setup.fuzzer_offers:
            lines.append("Sec-WebSocket-Extensions: " + ", ".join(setup.fuzzer_offers))
        server = ServerHandshake(compression=setup.server_options)
        assert server.receive_data(("\r\n".join(lines) + "\r\n\r\n").encode()) is not None
        status, headers = _parse_head(server.accept())
        assert status.startswith("HTTP/1.1 101 "), status
        assert headers["sec-websocket-accept"] == [_accept_key(key)]
        extensions = [
            ext for value in headers.get("sec-websocket-extensions", []) for ext in parse_extension_header(value)
        ]
        assert len(extensions) <= 1, extensions
        assert all(name == "permessage-deflate" for name, _ in extensions), extensions
        agreed = extensions[0][1] if extensions else None
        testee = server.connection(**limits)
    else:
        client = ClientHandshake("127.0.0.1", port=9001, compression=setup.client_options)
        _, request = _parse_head(client.request_bytes())
        key = request["sec-websocket-key"][0]
        offers = [
            params
            for value in request.get("sec-websocket-extensions", [])
            for name, params in parse_extension_header(value)
            if name == "permessage-deflate"
        ]
        answer = (setup.fuzzer_accept or mirror_accept)(offers) if offers else None
        lines = [
            "HTTP/1.1 101 Switching Protocols",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Accept: {_accept_key(key)}",
        ]
        if answer is not None:
            lines.append("Sec-WebSocket-Extensions: " + _format_extension(answer))
        assert client.receive_data(("\r\n".join(lines) + "\r\n\r\n").encode()) is not None
        agreed = None if answer is None else dict(answer)
        testee = client.connection(**limits)
    if agreed is None:
        return testee, None, {}
    server_bits = int(agreed.get("server_max_window_bits") or 15)
    client_bits = int(agreed.get("client_max_window_bits") or 15)
    server_nct = "server_no_context_takeover" in agreed
    client_nct = "client_no_context_takeover" in agreed
    if role is Role.SERVER:  # the fuzzer is the client
        peer = PeerDeflate(
            send_bits=client_bits,
            send_no_context_takeover=client_nct,
            recv_bits=server_bits,
            recv_no_context_takeover=server_nct,
        )
    else:
        peer = PeerDeflate(
            send_bits=server_bits,
            send_no_context_takeover=server_nct,
            recv_bits=client_bits,
            recv_no_context_takeover=client_nct,
        )
    return testee, peer, agreed


# -- cases ----------------------------------------------------------------------


@dataclass
class Case:
    """One Autobahn case.

    ``expected`` maps a behaviour (``OK``, then ``NON_STRICT``) to the exact
    list of events the fuzzer must observe; it may be a callable returning
    that mapping, for cases whose payloads are too big to build at import.
    ``closed_by_fuzzer``, ``close_codes`` and ``require_clean`` are
    Autobahn's ``expectedClose``; ``None`` in ``close_codes`` admits a close
    frame without a code. Only ``OK`` passes (Autobahn's ``NON-STRICT`` is
    recorded, so a failure says which grade it got); ``informational``
    accepts any behaviour (Autobahn's INFORMATIONAL cases), the close is
    still checked.
    """

    id: str
    description: str
    script: Callable[[Fuzzer], None]
    expected: Expected | Callable[[], Expected]
    closed_by_fuzzer: bool = True
    close_codes: tuple[int | None, ...] = (1000,)
    require_clean: bool = True
    informational: bool = False
    deflate: DeflateSetup | None = None
    limits: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.id

    def expectations(self) -> Expected:
        return self.expected() if callable(self.expected) else self.expected


@dataclass
class Outcome:
    """What the fuzzer saw of one run of a case."""

    case_id: str
    role: Role
    received: list[Observed]
    behavior: str
    closed_by_fuzzer: bool | None
    close_received: tuple[int | None, bytes] | None
    testee_state: State
    testee_closed_cleanly: bool
    failures: list[ConnectionFailed]
    violations: list[str]
    killed: bool
    compressed: list[bool] = field(default_factory=list)
    deflate: PeerDeflate | None = None
    agreed: dict = field(default_factory=dict)

    @property
    def close_code(self) -> int | None:
        return None if self.close_received is None else self.close_received[0]


def _short(item: Observed) -> str:
    if item[0] == "message":
        payload = item[1]
        head = payload[:24]
        more = (
            f"...+{len(payload) - 24} bytes, sha1 {hashlib.sha1(payload).hexdigest()[:10]}" if len(payload) > 24 else ""
        )
        return f"({item[0]!r}, {head!r}{more}, {item[2]})"
    return repr(item)


def _shorts(items: Sequence[Observed]) -> str:
    if len(items) > 12:
        return (
            "["
            + ", ".join(map(_short, items[:5]))
            + f", ... {len(items) - 10} more ..., "
            + ", ".join(map(_short, items[-5:]))
            + "]"
        )
    return "[" + ", ".join(map(_short, items)) + "]"


def problems(case: Case, outcome: Outcome) -> list[str]:
    """Grade ``outcome`` like Autobahn; an empty list means the case passed."""
    found = [f"protocol violation by the testee: {v}" for v in outcome.violations]
    expected = case.expectations()
    accepted = {OK}
    if not case.informational and outcome.behavior not in accepted:
        wanted = "; ".join(f"{grade}: {_shorts(events)}" for grade, events in expected.items())
        found.append(f"behavior {outcome.behavior}: observed {_shorts(outcome.received)}, expected {wanted}")
    if outcome.killed:
        found.append("the testee never closed: the fuzzer had to drop the connection")
    elif outcome.close_received is None:
        found.append("the testee sent no close frame")
    else:
        if outcome.closed_by_fuzzer != case.closed_by_fuzzer:
            closer = "the fuzzer" if outcome.closed_by_fuzzer else "the testee"
            found.append(f"the connection was closed by the wrong endpoint ({closer})")
        if outcome.close_code not in case.close_codes:
            found.append(
                f"WRONG CODE: the testee closed with {outcome.close_received}, expected one of {case.close_codes}"
            )
    if case.require_clean and not (outcome.testee_closed_cleanly and outcome.close_received is not None):
        found.append("UNCLEAN: the closing handshake did not complete")
    if outcome.testee_state is not State.CLOSED:
        found.append(f"the testee ended in state {outcome.testee_state.name}")
    if outcome.failures and outcome.close_received is not None and outcome.close_code != outcome.failures[0].code:
        found.append(f"ConnectionFailed({outcome.failures[0].code}) but the close frame said {outcome.close_code}")
    if not case.require_clean and not outcome.failures:
        found.append("the testee reported no ConnectionFailed event")
    return found


def grade(received: list[Observed], expected: Expected) -> str:
    for behavior, events in expected.items():
        if received == events:
            return behavior
    return FAILED


# -- the fuzzer -----------------------------------------------------------------


class Fuzzer:
    """Autobahn's side of one connection, talking to a testee :class:`Connection`.

    The testee runs as Autobahn's echo endpoint: every text or binary
    message is sent back, and ``data_to_send()`` (pongs, close frames) is
    written after each event and after each read, in order.
    """

    def __init__(
        self,
        testee: Connection,
        *,
        deflate: PeerDeflate | None = None,
        read_size: int | None = None,
        seed: int = 0x5EED,
    ) -> None:
        self.testee = testee
        self.read_size = read_size
        self.testee_is_client = testee.role is Role.CLIENT
        self.masks = not self.testee_is_client  # the fuzzer masks when it plays the client
        self.deflate = deflate
        self.rng = random.Random(seed)
        self.received: list[Observed] = []
        self.compressed: list[bool] = []
        self.violations: list[str] = []
        self.failures: list[ConnectionFailed] = []
        self.close_sent: bytes | None = None
        self.close_received: tuple[int | None, bytes] | None = None
        self.closed_by_me: bool | None = None
        self.killed = False
        self._chunks: list[bytearray] = []
        self._chunk_open = False
        self._inbuf = bytearray()
        self._msg_opcode = 0
        self._msg_parts: list[bytes] = []
        self._msg_compressed = False
        self._frame_key: bytes | None = None
        self._frame_offset = 0

    # -- writing (Autobahn's sendFrame, sendMessage, sendClose...) -------------

    def _mask_key(self) -> bytes | None:
        return self.rng.randbytes(4) if self.masks else None

    def write(self, data: bytes, *, sync: bool = False, chopsize: int | None = None) -> None:
        """Queue raw bytes. ``sync`` ends a read after them; ``chopsize`` delivers them in reads of that size."""
        if chopsize:
            for i in range(0, len(data), chopsize):
                self.write(data[i : i + chopsize], sync=True)
            return
        if not self._chunk_open:
            self._chunks.append(bytearray())
        self._chunks[-1] += data
        self._chunk_open = not sync

    def send_frame(
        self,
        opcode: int,
        payload: bytes | str = b"",
        *,
        fin: bool = True,
        rsv: int = 0,
        payload_len: int | None = None,
        chopsize: int | None = None,
        sync: bool = False,
    ) -> None:
        """Autobahn's ``sendFrame``: ``payload_len`` repeats ``payload`` up to that length.

        A raw frame, even a close: only :meth:`send_close` starts the closing handshake.
        """
        data = _b(payload)
        if payload_len is not None:
            data = (data * (payload_len // len(data) + 1))[:payload_len]
        self.write(encode_frame(opcode, data, fin=fin, rsv=rsv, mask=self._mask_key()), sync=sync, chopsize=chopsize)

    def send_message(
        self,
        payload: bytes | str,
        binary: bool = False,
        *,
        fragment_size: int | None = None,
        sync: bool = False,
        chopsize: int | None = None,
    ) -> None:
        """Autobahn's ``sendMessage``: compressed when deflate was agreed, cut into frames of ``fragment_size``."""
        data = _b(payload)
        rsv = 0
        if self.deflate is not None:
            data, rsv = self.deflate.compress(data), 4
        opcode = BINARY if binary else TEXT
        if not fragment_size or len(data) <= fragment_size:
            pieces = [data]
        else:
            pieces = [data[i : i + fragment_size] for i in range(0, len(data), fragment_size)]
        frames = []
        for i, piece in enumerate(pieces):
            frames.append(
                encode_frame(
                    opcode if i == 0 else CONT,
                    piece,
                    fin=i == len(pieces) - 1,
                    rsv=rsv if i == 0 else 0,
                    mask=self._mask_key(),
                )
            )
        self.write(b"".join(frames), sync=sync, chopsize=chopsize)

    def begin_frame(self, opcode: int, length: int, *, fin: bool = True) -> None:
        """Autobahn's ``beginMessageFrame``: a frame header, its payload to follow with :meth:`send_frame_data`."""
        self._frame_key = self._mask_key()
        self._frame_offset = 0
        header = encode_frame(opcode, b"", fin=fin, mask=self._frame_key, length=length)
        self.write(header)

    def send_frame_data(self, data: bytes | str, *, sync: bool = False) -> None:
        data = _b(data)
        if self._frame_key is not None:
            data = xor_mask(data, self._frame_key, self._frame_offset)
        self._frame_offset += len(data)
        self.write(data, sync=sync)

    def send_close(self, code: int | None = None, reason: bytes | str = b"", *, sync: bool = False) -> None:
        """Autobahn's ``sendCloseFrame``: any code (even invalid), any reason bytes."""
        payload = (b"" if code is None else code.to_bytes(2, "big")) + _b(reason)
        if self.close_sent is None:
            self._note_close_sent(payload)
        self.send_frame(CLOSE, payload, sync=sync)

    def _note_close_sent(self, payload: bytes) -> None:
        self.close_sent = payload
        if self.closed_by_me is None:
            self.closed_by_me = True

    # -- delivery and time ---------------------------------------------------------

    @property
    def is_open(self) -> bool:
        """Autobahn's ``state == STATE_OPEN``: no close frame went either way yet."""
        return self.close_sent is None and self.close_received is None

    def flush(self) -> None:
        """Deliver every queued read to the testee; the testee answers each one at once.

        With ``read_size`` every read is cut further into reads of that many
        bytes, whatever the script asked for.
        """
        while self._chunks:
            chunk = bytes(self._chunks.pop(0))
            if not self._chunks:
                self._chunk_open = False
            step = self.read_size or len(chunk) or 1
            for i in range(0, max(len(chunk), 1), step):
                self._drive(self.testee.receive_data(chunk[i : i + step]))

    def wait(self, label: str | None = None) -> bool:
        """Autobahn's ``continueLater``: let the testee answer everything sent so far.

        With a ``label`` the script only goes on while the connection is
        open, and ``("timeout", label)`` is recorded when it does (the
        testee did not fail the connection in the meantime).
        """
        self.flush()
        if label is None:
            return True
        if not self.is_open:
            return False
        self.received.append(timeout(label))
        return True

    def note(self, label: str) -> None:
        """Record a marker among the observed events (to pin when something was answered)."""
        self.flush()
        self.received.append(("note", label))

    def kill(self) -> None:
        """Drop the TCP connection (Autobahn's ``killAfter``)."""
        self.killed = True
        self.testee.receive_eof()

    # -- the testee as an echo endpoint ---------------------------------------------

    def _drive(self, events: list[Event]) -> None:
        testee = self.testee
        for event in events:
            out = b""
            try:
                if isinstance(event, TextReceived):
                    out = testee.send_text(event.data)
                elif isinstance(event, BinaryReceived):
                    out = testee.send_binary(event.data)
            except StreamClosed:
                pass  # the message came with, or after, the end of the connection: nothing to echo
            if isinstance(event, ConnectionFailed):
                self.failures.append(event)
            self._receive(out + testee.data_to_send())
        self._receive(testee.data_to_send())

    # -- reading what the testee wrote ------------------------------------------------

    def _violation(self, what: str) -> None:
        self.violations.append(what)

    def _receive(self, data: bytes) -> None:
        if not data:
            return
        buf = self._inbuf
        buf += data
        pos = 0
        end = len(buf)
        while end - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length = b1 & 0x7F
            header = 2
            if length == 126:
                if end - pos < 4:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                header = 4
                if length < 126:
                    self._violation(f"non-minimal 16-bit length {length}")
            elif length == 127:
                if end - pos < 10:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                header = 10
                if length < 1 << 16:
                    self._violation(f"non-minimal 64-bit length {length}")
            masked = bool(b1 & 0x80)
            key = b""
            if masked:
                key = bytes(buf[pos + header : pos + header + 4])
                header += 4
            if end - pos - header < length:
                break
            payload = bytes(buf[pos + header : pos + header + length])
            if masked:
                payload = xor_mask(payload, key)
            pos += header + length
            self._on_frame(b0, masked, payload)
        del buf[:pos]

    def _on_frame(self, b0: int, masked: bool, payload: bytes) -> None:
        fin = bool(b0 & 0x80)
        rsv = b0 & 0x70
        opcode = b0 & 0x0F
        name = f"frame opcode {opcode:#x} fin={fin} rsv={rsv >> 4} len={len(payload)}"
        if self.close_received is not None:
            self._violation(f"{name} after the testee's close frame")
            return
        if masked != self.testee_is_client:
            self._violation(f"{name}: {'masked' if masked else 'unmasked'} from a {self.testee.role.value}")
        if opcode in (TEXT, BINARY) and rsv == 0x40 and self.deflate is not None:
            pass
        elif rsv:
            self._violation(f"{name}: reserved bits set")
        if opcode >= 8:
            if not fin or len(payload) > 125:
                self._violation(f"{name}: bad control frame")
            if opcode == PING:
                self.received.append(("ping", payload))
                if self.is_open:
                    self.send_frame(PONG, payload, sync=True)
            elif opcode == PONG:
                self.received.append(pong(payload))
            elif opcode == CLOSE:
                self._on_close(payload)
            else:
                self._violation(f"{name}: reserved opcode")
            return
        if opcode in (TEXT, BINARY):
            if self._msg_opcode:
                self._violation(f"{name}: new message inside a fragmented one")
            self._msg_opcode = opcode
            self._msg_parts = []
            self._msg_compressed = bool(rsv)
        elif opcode == CONT:
            if not self._msg_opcode:
                self._violation(f"{name}: continuation without a message")
                return
        else:
            self._violation(f"{name}: reserved opcode")
            return
        self._msg_parts.append(payload)
        if fin:
            data = b"".join(self._msg_parts)
            binary = self._msg_opcode == BINARY
            self._msg_opcode = 0
            if self._msg_compressed:
                assert self.deflate is not None
                try:
                    data = self.deflate.decompress(data)
                except zlib.error as exc:
                    self._violation(f"cannot inflate an echoed message with the agreed parameters: {exc}")
                    return
            if not binary:
                try:
                    data.decode("utf-8")
                except UnicodeDecodeError:
                    self._violation("text message with invalid UTF-8")
            self.compressed.append(self._msg_compressed)
            self.received.append(message(data, binary))

    def _on_close(self, payload: bytes) -> None:
        if len(payload) == 1:
            self._violation("close frame with a 1-byte payload")
        code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
        self.close_received = (code, payload[2:])
        if self.closed_by_me is None:
            self.closed_by_me = False
        if self.close_sent is None:
            # Autobahn echoes the testee's close (its code, no reason).
            self.send_close(code, sync=True)

    # -- end of the case --------------------------------------------------------------

    def finish(self, case: Case) -> None:
        """Close as Autobahn does once the script is done (``closeAfter``/``killAfter``)."""
        self.flush()
        if self.is_open and case.closed_by_fuzzer:
            self.send_close(1000)
            self.flush()
        if self.testee.state is not State.CLOSED:
            self.kill()

    def outcome(self, case: Case) -> Outcome:
        return Outcome(
            case_id=case.id,
            role=self.testee.role,
            received=self.received,
            behavior=grade(self.received, case.expectations()),
            closed_by_fuzzer=self.closed_by_me,
            close_received=self.close_received,
            testee_state=self.testee.state,
            testee_closed_cleanly=self.testee.closed_cleanly,
            failures=self.failures,
            violations=self.violations,
            killed=self.killed,
            compressed=self.compressed,
            deflate=self.deflate,
        )


def run_case(case: Case, role: Role, *, read_size: int | None = None) -> Outcome:
    """Play ``case`` against a fresh testee :class:`Connection` in ``role``.

    ``read_size`` cuts every read the testee gets into reads of that size.
    """
    agreed: dict = {}
    if case.deflate is not None:
        testee, deflate, agreed = _handshake(case.deflate, role, case.limits)
    else:
        testee, deflate = Connection(role, **case.limits), None
    fuzzer = Fuzzer(testee, deflate=deflate, read_size=read_size)
    case.script(fuzzer)
    fuzzer.finish(case)
    outcome = fuzzer.outcome(case)
    outcome.agreed = agreed
    return outcome
