"""Fuzz targets of the frame layer: the codec functions, a Connection fed frames, and permessage-deflate.

``check_codec``
    The codec functions (``parse_frames``, ``utf8_check``, ``apply_mask``,
    ``build_frame``) on the same input under both codecs: same result, same
    error, byte for byte; ``utf8_check`` agrees with CPython's UTF-8 decoder.
``check_frames``
    A server or client :class:`~ws4py.protocol.Connection` fed a stream of
    frames built from the input (valid and broken, with the fuzzer's own
    local sends and closes in between), in the input's chunking, through
    ``receive_data``, ``receive_messages`` or ``receive_buffer``/``received_into``.
    ``receive_data`` never raises (its contract), the events and the bytes
    the core sends back are the same under both codecs, every event is
    within the limits, and without local actions the events do not depend
    on the chunking.
``check_deflate``
    The same with permessage-deflate negotiated (window bits and context
    takeover from the input), the stream carrying messages compressed by a
    peer that honours or breaks the agreement, and bad deflate data.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass, field

from fuzz_common import CODECS, Finding, Input, outcome, same_on_each_codec, short

from ws4py.exc import InvalidState
from ws4py.protocol import (
    BinaryReceived,
    CloseReceived,
    Connection,
    ConnectionFailed,
    Event,
    PerMessageDeflate,
    PingReceived,
    PongReceived,
    Role,
    TextReceived,
    frames,
    is_valid_on_wire,
)
from ws4py.protocol import _frames_py as pyframes

__all__ = ["check_codec", "check_deflate", "check_frames"]

# -- the codec functions ------------------------------------------------------

_FRAME_LIMITS = (0, 1, 125, 126, 127, 65535, 65536, 2**31, 2**63 - 1)


def check_codec(data: bytes) -> None:
    inp = Input(data)
    flags = inp.byte()
    expect_mask = bool(flags & 1)
    allowed_rsv = (0, 0x40, 0x70, 0x10)[(flags >> 1) & 3]
    ascii_text_as_str = bool(flags & 8)
    wrap = (bytes, bytearray, memoryview)[(flags >> 4) % 3]
    max_frame_size = inp.pick(_FRAME_LIMITS)
    mask_key = inp.take(4).ljust(4, b"\0") if flags & 0x40 else None
    phase = inp.byte()
    split = inp.byte()
    buf = inp.rest()
    pos = split % (len(buf) + 1) if flags & 0x80 else 0

    same_on_each_codec(
        "parse_frames",
        lambda: outcome(
            lambda: frames.parse_frames(wrap(buf), pos, expect_mask, allowed_rsv, max_frame_size, ascii_text_as_str),
            (ValueError,),
        ),
    )
    if mask_key is not None:
        same_on_each_codec("apply_mask", lambda: frames.apply_mask(wrap(buf), mask_key))
    same_on_each_codec("build_frame", lambda: frames.build_frame(flags, wrap(buf), mask_key))

    # utf8_check resumes from a state an earlier call returned, never from any other number.
    head, tail = buf[:pos], buf[pos:]
    state = same_on_each_codec("utf8_check (start)", lambda: frames.utf8_check(head, 0))
    if state >= 0:
        same_on_each_codec("utf8_check (resumed)", lambda: frames.utf8_check(tail, state, mask_key, phase))
    whole = same_on_each_codec("utf8_check (whole)", lambda: frames.utf8_check(buf, 0))
    try:
        buf.decode()
        valid = True
    except UnicodeDecodeError:
        valid = False
    if (whole == 0) != valid:
        raise Finding(f"utf8_check({buf!r}, 0) is {whole}, but CPython says valid={valid}")


# -- a Connection fed frames --------------------------------------------------

#: (max_message_size, max_frame_size, max_queued_bytes): small limits reach the checks, None the unlimited case.
_LIMITS: tuple[tuple[int | None, int | None, int | None], ...] = (
    (1_000, None, None),
    (125, 125, None),
    (70_000, 66_000, None),
    (1 << 20, 4096, 200),
    (0, None, None),
    (16 << 20, None, None),
    (None, None, None),
    (1 << 20, None, 65_540),
)
_VALID_B0 = (0x81, 0x82, 0x01, 0x02, 0x00, 0x80, 0x88, 0x89, 0x8A, 0xC1, 0xC2, 0x41, 0x42)
_CHUNK_SIZES = (1, 2, 3, 5, 8, 13, 125, 1000, 4096, 70_000)
_DEFLATE_TAIL = b"\x00\x00\xff\xff"


@dataclass
class Peer:
    """How the fuzzed peer builds its frames: masked or not, and its compressor for permessage-deflate."""

    masks: bool
    deflate_bits: int = 15
    no_context_takeover: bool = False
    compressor: zlib._Compress | None = field(default=None, repr=False)

    def compress(self, payload: bytes, finish: bool) -> bytes:
        """One message's payload compressed as RFC 7692 says (or, ``finish``, ending in a final block)."""
        if self.compressor is None or self.no_context_takeover:
            self.compressor = zlib.compressobj(6, zlib.DEFLATED, -self.deflate_bits)
        if finish:
            out = self.compressor.compress(payload) + self.compressor.flush(zlib.Z_FINISH)
            self.compressor = None
            return out
        out = self.compressor.compress(payload) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
        return out[:-4] if out.endswith(_DEFLATE_TAIL) else out


def _header(b0: int, length: int, mask_key: bytes | None, long_form: bool) -> bytes:
    mask_bit = 0x80 if mask_key is not None else 0
    if length < 126 and not long_form:
        head = bytes((b0, mask_bit | length))
    elif length < 65536 and not long_form:
        head = bytes((b0, mask_bit | 126)) + length.to_bytes(2, "big")
    else:
        head = bytes((b0, mask_bit | 127)) + length.to_bytes(8, "big")
    return head + (mask_key or b"")


def _frame(inp: Input, peer: Peer, b0: int, payload: bytes, broken_mask: bool = False) -> bytes:
    masks = peer.masks != broken_mask
    mask_key = inp.take(4).ljust(4, b"\0") if masks else None
    body = pyframes.apply_mask(payload, mask_key) if mask_key is not None and payload else payload
    return _header(b0, len(payload), mask_key, long_form=False) + body


def _payload(inp: Input) -> bytes:
    n = inp.byte()
    if n < 0xF0:
        return inp.take(n)
    # A large payload from a few input bytes: a pattern repeated, over 64 KiB past some sizes.
    pattern = inp.take(1 + inp.byte() % 16) or b"x"
    length = 126 + inp.uint(2) * (1 + (n & 0x0F))
    return (pattern * (length // len(pattern) + 1))[:length]


Op = tuple[str, object]


def _ops(inp: Input, peer: Peer, deflate: bool) -> list[Op]:
    """The input's stream: ``("data", bytes)`` from the peer and local ``("act", n)`` actions."""
    ops: list[Op] = []
    while len(inp) and len(ops) < 64:
        kind = inp.byte()
        choice = kind & 7
        if choice == 0:  # any first byte and payload, framed right
            b0 = inp.byte()
            ops.append(("data", _frame(inp, peer, b0, _payload(inp))))
        elif choice == 1:  # a plausible frame
            b0 = inp.pick(_VALID_B0)
            ops.append(("data", _frame(inp, peer, b0, _payload(inp))))
        elif choice == 2:  # a frame masked the wrong way, or with a needlessly long length
            b0 = inp.pick(_VALID_B0)
            payload = _payload(inp)
            if kind & 8:
                ops.append(("data", _frame(inp, peer, b0, payload, broken_mask=True)))
            else:
                mask_key = inp.take(4).ljust(4, b"\0") if peer.masks else None
                body = pyframes.apply_mask(payload, mask_key) if mask_key and payload else payload
                ops.append(("data", _header(b0, len(payload), mask_key, long_form=True) + body))
        elif choice == 3:  # a header alone, claiming any length
            b0 = inp.pick(_VALID_B0)
            length = inp.uint(8) >> (inp.byte() % 64)
            mask_key = inp.take(4).ljust(4, b"\0") if peer.masks else None
            ops.append(("data", _header(b0, length, mask_key, long_form=bool(kind & 8))))
        elif choice == 4:  # raw bytes
            ops.append(("data", inp.take(inp.byte() % 64)))
        elif choice == 5:  # a local action between two reads
            ops.append(("act", inp.byte()))
        elif choice == 6 and deflate:  # a compressed message, maybe fragmented
            payload = _payload(inp)
            compressed = peer.compress(payload, finish=bool(kind & 8))
            opcode = 0x1 if kind & 16 else 0x2
            count = 1 + (inp.byte() % 4)
            step = max(1, len(compressed) // count + 1)
            parts = [compressed[i : i + step] for i in range(0, len(compressed), step)] or [b""]
            for i, part in enumerate(parts):
                b0 = (opcode | 0x40 if i == 0 else 0) | (0x80 if i == len(parts) - 1 else 0)
                ops.append(("data", _frame(inp, peer, b0, part)))
        elif choice == 6:  # a fragmented message
            opcode = 0x1 if kind & 16 else 0x2
            count = 1 + (inp.byte() % 6)
            for i in range(count):
                b0 = (opcode if i == 0 else 0) | (0x80 if i == count - 1 else 0)
                ops.append(("data", _frame(inp, peer, b0, _payload(inp))))
        else:  # RSV1 on any frame, with bytes that may or may not be deflate data
            b0 = inp.pick(_VALID_B0) | 0x40
            ops.append(("data", _frame(inp, peer, b0, _payload(inp))))
    return ops


def _chunks(ops: list[Op], how: int) -> list[Op]:
    """``ops`` with the peer's bytes cut per record (0), in seeded random sizes (1), or byte by byte (2)."""
    mode = how % 3
    if mode == 0:
        return ops
    out: list[Op] = []
    pending = bytearray()
    rng = random.Random(how)

    def flush() -> None:
        data = bytes(pending)
        pending.clear()
        i = 0
        while i < len(data):
            size = 1 if mode == 2 and len(data) <= 4096 else rng.choice(_CHUNK_SIZES)
            out.append(("data", data[i : i + size]))
            i += size

    for op in ops:
        if op[0] == "data":
            pending += op[1]  # type: ignore[arg-type]
        else:
            flush()
            out.append(op)
    flush()
    return out


def _norm(event: Event) -> tuple[object, ...]:
    if isinstance(event, TextReceived):
        return ("text", event.data)  # .data decodes a raw text: invalid UTF-8 would raise here
    if isinstance(event, BinaryReceived):
        return ("binary", bytes(event.data))
    if isinstance(event, PingReceived):
        return ("ping", bytes(event.payload))
    if isinstance(event, PongReceived):
        return ("pong", bytes(event.payload), event.acknowledged)
    if isinstance(event, CloseReceived):
        return ("close", event.code, event.reason)
    if isinstance(event, ConnectionFailed):
        return ("failed", event.code, event.reason)
    raise Finding(f"unknown event {event!r}")


def _check_event(conn: Connection, event: tuple[object, ...]) -> None:
    kind = event[0]
    if kind in ("text", "binary"):
        size = len(event[1].encode() if kind == "text" else event[1])  # type: ignore[union-attr,arg-type]
        if size > conn.max_message_size:
            raise Finding(f"a message of {size} bytes passed max_message_size={conn.max_message_size}")
    elif kind in ("ping", "pong") and len(event[1]) > 125:  # type: ignore[arg-type]
        raise Finding(f"a control payload of {len(event[1])} bytes")  # type: ignore[arg-type]
    elif kind == "close" and event[1] != 1005 and not is_valid_on_wire(event[1]):  # type: ignore[arg-type]
        raise Finding(f"CloseReceived with the invalid code {event[1]}")
    elif kind == "failed" and event[1] not in (1002, 1007, 1009):
        raise Finding(f"ConnectionFailed with the code {event[1]}")


def _sent(conn: Connection, out: bytes) -> list[tuple[int, bytes | str]]:
    """The frames of what the core wrote, unmasked: a client's masking keys are random."""
    parsed, pos, error = pyframes.parse_frames(out, 0, conn.is_client, 0x40, 2**63 - 1)
    if error is not None or pos != len(out):
        raise Finding(f"the core wrote broken frames {out!r}: {error}")
    for b0, payload in parsed:
        if b0 == 0x88 and payload:
            code = int.from_bytes(payload[:2], "big")  # type: ignore[arg-type]
            if len(payload) == 1 or not is_valid_on_wire(code):
                raise Finding(f"the core sent a close frame with payload {payload!r}")
    return parsed


def _feed(conn: Connection, data: bytes, api: int) -> list[tuple[object, ...]]:
    """``data`` into ``conn`` through the API ``api`` picks; the events, normalised."""
    if api == 1:
        messages, events = conn.receive_messages(data)
        out: list[tuple[object, ...]] = []
        for b0, payload in messages:
            if b0 == 0x81:
                text = payload if isinstance(payload, str) else payload.decode()  # must be valid UTF-8
                out.append(("text", text))
            elif b0 == 0x82 and isinstance(payload, bytes):
                out.append(("binary", payload))
            else:
                raise Finding(f"receive_messages gave the pair {(b0, payload)!r}")
        return out + [_norm(e) for e in events]
    if api == 2:
        out = []
        view = conn.receive_buffer()
        while view is not None and data:
            n = min(len(view), len(data))
            view[:n] = data[:n]
            view.release()  # as an adapter does: the core may resize the buffer once it is full
            out += [_norm(e) for e in conn.received_into(n)]
            data = data[n:]
            view = conn.receive_buffer()
        return out + [_norm(e) for e in conn.receive_data(data)] if data else out
    return [_norm(e) for e in conn.receive_data(data)]


def _act(conn: Connection, action: int) -> tuple[str, object]:
    """A local action of the fuzzed application; only the documented refusals may come of it."""
    choice = action % 7
    if choice == 0:
        return outcome(lambda: conn.send_close(1000 if action & 8 else 4000, "bye"), (InvalidState,))
    if choice == 1:
        return outcome(lambda: conn.send_text("héllo" * (action >> 3)), (InvalidState,))
    if choice == 2:
        return outcome(lambda: conn.send_ping(bytes((action,))), (InvalidState, ValueError))
    if choice == 3:
        return outcome(lambda: conn.send_binary(b"\0" * action, fin=bool(action & 8)), (InvalidState,))
    if choice == 4:
        return outcome(lambda: conn.send_continuation(b"more", fin=bool(action & 8)), (InvalidState,))
    if choice == 5:
        return "ok", conn.pongs_to_send()
    conn.receive_eof()
    return "eof", None


@dataclass
class Setup:
    """One fuzzed connection's configuration (its limits, API, extension) and stream."""

    role: Role
    limits: tuple[int | None, int | None, int | None]
    decode_text: bool
    api: int
    ops: list[Op]
    eof: bool
    deflate: tuple[bool, bool, int, int] | None = None

    def connection(self) -> Connection:
        max_message_size, max_frame_size, max_queued_bytes = self.limits
        extensions = []
        if self.deflate is not None:
            local_nct, remote_nct, local_bits, remote_bits = self.deflate
            extensions.append(
                PerMessageDeflate(
                    local_no_context_takeover=local_nct,
                    remote_no_context_takeover=remote_nct,
                    local_max_window_bits=local_bits,
                    remote_max_window_bits=remote_bits,
                )
            )
        conn = Connection(
            self.role,
            extensions=extensions,
            max_message_size=max_message_size,
            max_frame_size=max_frame_size,
            max_queued_bytes=max_queued_bytes,
        )
        conn.decode_text = self.decode_text
        return conn


def _run(setup: Setup, ops: list[Op]) -> tuple[list[object], list[tuple[object, ...]]]:
    """Play ``ops`` on a fresh connection: the full log (events, what was sent, results) and the events alone."""
    conn = setup.connection()
    log: list[object] = []
    events: list[tuple[object, ...]] = []
    for i, (kind, arg) in enumerate(ops):
        if kind == "data":
            api = setup.api if setup.api < 3 else i % 3
            got = _feed(conn, arg, api)  # type: ignore[arg-type]
            for event in got:
                _check_event(conn, event)
            events += got
            log.append(("events", got))
        else:
            result = _act(conn, arg)  # type: ignore[arg-type]
            log.append(("act", result[0], result[1] if result[0] == "raise" else None))
            if result[0] == "ok" and result[1]:
                log.append(("wrote", _sent(conn, result[1])))  # type: ignore[arg-type]
        log.append(("sent", _sent(conn, conn.data_to_send())))
    if setup.eof:
        conn.receive_eof()
    failure = type(conn.failure).__name__ if conn.failure is not None else None
    log.append(
        (
            "end",
            conn.state,
            conn.close_code,
            conn.close_reason,
            failure,
            conn.close_sent,
            conn.close_received,
            conn.transport_action,
            conn.closed_cleanly,
        )
    )
    return log, events


def _check_connection(setup: Setup, how: int) -> None:
    chunked = _chunks(setup.ops, how)
    log, events = same_on_each_codec("Connection", lambda: _run(setup, chunked))
    if any(kind != "data" for kind, _ in setup.ops) or setup.limits[2] is not None:
        return
    # Without local actions, what the peer's bytes make of the connection does not depend
    # on how they were cut: compare with the whole stream in one read. Not with a
    # max_queued_bytes below the frame limit: it bounds what waits between reads, so a
    # frame over it fails in pieces and passes whole, as documented.
    whole = b"".join(arg for _, arg in setup.ops)  # type: ignore[misc]
    with frames.using(CODECS[0]):
        ref_log, ref_events = _run(
            Setup(setup.role, setup.limits, setup.decode_text, 0, [], setup.eof, setup.deflate), [("data", whole)]
        )
    if ref_events != events or ref_log[-1] != log[-1]:
        raise Finding(
            f"the chunking changed the outcome\n  in one read: {short(ref_events)} {ref_log[-1]!r}\n"
            f"  in chunks:   {short(events)} {log[-1]!r}"
        )


def _setup(flags: int) -> Setup:
    """The connection's settings from the input's first byte (no operations yet)."""
    role = Role.CLIENT if flags & 1 else Role.SERVER
    return Setup(role, _LIMITS[(flags >> 1) & 7], bool(flags & 16), (flags >> 5) & 3, [], bool(flags & 128))


def check_frames(data: bytes) -> None:
    inp = Input(data)
    setup = _setup(inp.byte())
    how = inp.byte()
    setup.ops = _ops(inp, Peer(masks=setup.role is Role.SERVER), deflate=False)
    _check_connection(setup, how)


def check_deflate(data: bytes) -> None:
    inp = Input(data)
    setup = _setup(inp.byte())
    role = setup.role
    params = inp.byte()
    bits = inp.byte()
    local_bits, remote_bits = 8 + (bits & 7), 8 + ((bits >> 3) & 7)
    # The peer compresses within the agreed window, or (bit 6) with a larger one than agreed,
    # and resets its context as agreed, or (bit 7) whenever it likes.
    peer_bits = remote_bits if not bits & 64 else min(15, remote_bits + 1 + (params >> 4) % 7)
    peer_nct = bool(params & 2) if not bits & 128 else not params & 2
    how = inp.byte()
    peer = Peer(masks=role is Role.SERVER, deflate_bits=max(9, peer_bits), no_context_takeover=peer_nct)
    setup.ops = _ops(inp, peer, deflate=True)
    setup.deflate = (bool(params & 1), bool(params & 2), local_bits, remote_bits)
    _check_connection(setup, how)
