"""Protocol-core benchmark: ws4py's sans-I/O core against websockets' and wsproto's.

Measures, in one run and side by side:

1. messages/s of a *server* core receiving masked client frames (16 B, 1 KiB,
   64 KiB and 1 MiB; text and binary; without and with permessage-deflate),
   for ws4py with its C codec, ws4py with its pure-Python codec,
   ``websockets.server.ServerProtocol`` and ``wsproto.WSConnection``;
2. unmasking throughput at 1 MiB (ws4py C and Python ``apply_mask``,
   websockets' ``apply_mask``) next to a plain copy of 1 MiB.

Run it through ``bench/run_core.sh`` (it makes the virtualenv with the peers);
``bench/README.md`` explains the method and every row. ``--quick`` is a smoke
run: tiny streams, one repeat, every row.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import datetime
import gc
import importlib.metadata
import io
import math
import os
import platform
import pstats
import random
import statistics
import string
import sys
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode as WsOpcode
from websockets.frames import apply_mask as websockets_apply_mask
from websockets.protocol import State as WsState
from websockets.server import ServerProtocol
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection, BytesMessage, Request, TextMessage
from wsproto.extensions import PerMessageDeflate as WsprotoDeflate

from ws4py.protocol import (
    BinaryReceived,
    ClientHandshake,
    DeflateOptions,
    ServerHandshake,
    State,
    TextReceived,
    _frames_py,
    frames,
)

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUTPUT = BENCH_DIR / "results" / "core.md"

CHUNK = 64 * 1024  # bytes per receive_data() call: a realistic socket read
MAX_MESSAGE = 2**25  # message size limit given to the cores that have one
UNIQUE_WIRE_BYTES = (
    4 * 2**20
)  # an uncompressed stream longer than this is replayed (stays cache-warm, as socket reads are)
TARGET_SECONDS = 0.3  # aimed duration of one measurement, per core
CALIBRATE_SECONDS = 0.08  # a calibration run shorter than this is redone longer
UNMASK_SIZE = 2**20

KIB = 1024
MIB = 1024 * 1024


@dataclass(frozen=True)
class Size:
    nbytes: int
    pilot: int  # messages in the first calibration and validation run
    quick: int  # messages per measurement with --quick

    @property
    def label(self) -> str:
        if self.nbytes >= MIB:
            return f"{self.nbytes // MIB} MiB"
        if self.nbytes >= KIB:
            return f"{self.nbytes // KIB} KiB"
        return f"{self.nbytes} B"


SIZES = (
    Size(16, pilot=20_000, quick=500),
    Size(1 * KIB, pilot=5_000, quick=200),
    Size(64 * KIB, pilot=200, quick=8),
    Size(1 * MIB, pilot=12, quick=2),
)


@dataclass(frozen=True)
class Row:
    size: Size
    text: bool
    deflate: bool

    @property
    def label(self) -> str:
        return f"{'text' if self.text else 'binary'} {self.size.label}"


# -- payloads and byte streams ----------------------------------------------------


def make_corpus(nbytes: int, seed: int = 6455) -> bytes:
    """Deterministic JSON-lines-like ASCII text, the payload of every message.

    It compresses about as well as typical JSON traffic, so the deflate rows
    inflate realistic data rather than random (incompressible) bytes.
    """
    rng = random.Random(seed)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 10))) for _ in range(3000)]
    actions = ["create", "update", "delete", "read", "subscribe", "publish"]
    out = io.StringIO()
    size = 0
    while size < nbytes:
        line = (
            f'{{"id":{rng.randrange(10**9)},"user":"{rng.choice(words)}","action":"{rng.choice(actions)}",'
            f'"score":{rng.random():.6f},"tags":["{rng.choice(words)}","{rng.choice(words)}"],'
            f'"text":"{" ".join(rng.choices(words, k=rng.randint(2, 12)))}"}}\n'
        )
        out.write(line)
        size += len(line)
    return out.getvalue().encode("ascii")[:nbytes]


class Stream:
    """Masked client frames, one message each, as produced by a ws4py client.

    The frames come from a real client :class:`Connection` whose handshake
    went through ws4py's server handshake, so with deflate they are compressed
    with the default settings (zlib level 6, 15-bit window, context takeover).
    Every message is a different slice of the corpus.
    """

    def __init__(self, row: Row, corpus: bytes, request: bytes, response: bytes, client: ClientHandshake) -> None:
        self.row = row
        self.corpus = corpus
        self.request = request  # the HTTP upgrade request each server core is opened with
        client.receive_data(response)
        self._client = client.connection(max_message_size=MAX_MESSAGE)
        if (self._client.deflate is not None) != row.deflate:
            raise AssertionError("ws4py client did not negotiate what was asked")
        self._rng = random.Random(row.size.nbytes * 4 + row.text * 2 + row.deflate)
        self._wire = bytearray()
        self.ends: list[int] = []  # ends[i]: offset just past message i's frame
        self.kept: list[bytes] = []  # the first messages' payloads, to validate the cores' events
        self._chunks: list[bytes] | None = None
        # Uncompressed frames are self-contained, so a long stream may be the
        # unique part replayed; compressed frames depend on all before them.
        self.replayable = not row.deflate
        frame_len = row.size.nbytes + 14
        self.unique_limit = max(1, UNIQUE_WIRE_BYTES // frame_len) if self.replayable else sys.maxsize

    @property
    def count(self) -> int:
        return len(self.ends)

    @property
    def payload_bytes(self) -> int:
        return self.count * self.row.size.nbytes

    @property
    def wire_bytes(self) -> int:
        return len(self._wire)

    def ensure(self, n: int, keep: int = 0) -> None:
        """Make sure the stream holds ``n`` messages (or its unique limit if replayable)."""
        n = min(n, self.unique_limit)
        size = self.row.size.nbytes
        span = len(self.corpus) - size
        send = self._client.send_text if self.row.text else self._client.send_binary
        wire, ends, kept, rng = self._wire, self.ends, self.kept, self._rng
        while len(ends) < n:
            offset = rng.randrange(span)
            payload = self.corpus[offset : offset + size]
            if len(kept) < keep:
                kept.append(payload)
            wire += send(payload)  # send_text takes bytes as UTF-8 already encoded
            ends.append(len(wire))
            self._chunks = None

    @property
    def chunks(self) -> list[bytes]:
        if self._chunks is None:
            wire = self._wire
            self._chunks = [bytes(wire[i : i + CHUNK]) for i in range(0, len(wire), CHUNK)]
        return self._chunks

    def plan(self, n: int) -> list[bytes]:
        """The chunks that carry exactly the first ``n`` messages of the (replayed) stream.

        Every core of a row gets a prefix of the same byte stream; the last
        chunk is cut at a frame boundary so the count of messages is exact.
        """
        passes, rem = divmod(n, self.count)
        if passes > (1 if rem == 0 else 0) and not self.replayable:
            raise AssertionError("a compressed stream cannot be replayed")
        chunks = self.chunks
        plan = chunks * passes
        if rem:
            end = self.ends[rem - 1]
            whole, cut = divmod(end, CHUNK)
            plan += chunks[:whole]
            if cut:
                plan.append(chunks[whole][:cut])
        return plan


# -- the cores ------------------------------------------------------------------------

# A session is one freshly opened server core: ``count(chunks)`` feeds the
# chunks and returns how many complete messages came out (the timed loop);
# ``collect(chunks)`` returns them as (is_text, payload bytes) to validate them;
# ``check()`` raises unless the core is still open and healthy.


class Session:
    def count(self, chunks: Sequence[bytes]) -> int:
        raise NotImplementedError

    def collect(self, chunks: Sequence[bytes]) -> list[tuple[bool, bytes]]:
        raise NotImplementedError

    def check(self) -> None:
        raise NotImplementedError


class Ws4pySession(Session):
    def __init__(self, codec: str, request: bytes, deflate: bool) -> None:
        frames.use(codec)  # process-wide; set again before every measurement
        handshake = ServerHandshake(compression=DeflateOptions() if deflate else None)
        if handshake.receive_data(request) is None:
            raise AssertionError("ws4py: incomplete handshake request")
        handshake.accept()
        self.conn = handshake.connection(max_message_size=MAX_MESSAGE)
        if (self.conn.deflate is not None) != deflate:
            raise AssertionError("ws4py: permessage-deflate negotiation went wrong")

    def count(self, chunks: Sequence[bytes]) -> int:
        receive = self.conn.receive_data
        n = 0
        for chunk in chunks:
            n += len(receive(chunk))
        return n

    def collect(self, chunks: Sequence[bytes]) -> list[tuple[bool, bytes]]:
        out: list[tuple[bool, bytes]] = []
        for chunk in chunks:
            for event in self.conn.receive_data(chunk):
                if isinstance(event, TextReceived):
                    out.append((True, event.data.encode()))
                elif isinstance(event, BinaryReceived):
                    out.append((False, event.data))
                else:
                    raise AssertionError(f"ws4py: unexpected event {event!r}")
        return out

    def check(self) -> None:
        if self.conn.state is not State.OPEN or self.conn.failure is not None:
            raise AssertionError(f"ws4py: connection {self.conn.state.name}, failure {self.conn.failure!r}")


class WebsocketsSession(Session):
    def __init__(self, request: bytes, deflate: bool) -> None:
        extensions = [ServerPerMessageDeflateFactory()] if deflate else None
        self.proto = ServerProtocol(extensions=extensions, max_size=MAX_MESSAGE)
        self.proto.receive_data(request)
        (handshake,) = self.proto.events_received()
        response = self.proto.accept(handshake)
        if response.status_code != 101:
            raise AssertionError(f"websockets refused the handshake: {response.status_code}")
        self.proto.send_response(response)
        self.proto.data_to_send()
        if self.proto.state is not WsState.OPEN:
            raise AssertionError("websockets: not OPEN after the handshake")
        if ("Sec-WebSocket-Extensions" in response.headers) != deflate:
            raise AssertionError("websockets: permessage-deflate negotiation went wrong")

    def count(self, chunks: Sequence[bytes]) -> int:
        receive = self.proto.receive_data
        drain = self.proto.events_received
        n = 0
        for chunk in chunks:
            receive(chunk)
            n += len(drain())
        return n

    def collect(self, chunks: Sequence[bytes]) -> list[tuple[bool, bytes]]:
        out: list[tuple[bool, bytes]] = []
        for chunk in chunks:
            self.proto.receive_data(chunk)
            for frame in self.proto.events_received():
                if (
                    not isinstance(frame, WsFrame)
                    or not frame.fin
                    or frame.opcode
                    not in (
                        WsOpcode.TEXT,
                        WsOpcode.BINARY,
                    )
                ):
                    raise AssertionError(f"websockets: unexpected event {frame!r}")
                out.append((frame.opcode is WsOpcode.TEXT, bytes(frame.data)))
        return out

    def check(self) -> None:
        if self.proto.state is not WsState.OPEN or self.proto.parser_exc is not None:
            raise AssertionError(f"websockets: state {self.proto.state.name}, error {self.proto.parser_exc!r}")


class WebsocketsPureSession(WebsocketsSession):
    """websockets' core with its C masking swapped for its own pure-Python twin."""

    def count(self, chunks: Sequence[bytes]) -> int:
        with websockets_pure_masking():
            return super().count(chunks)

    def collect(self, chunks: Sequence[bytes]) -> list[tuple[bool, bytes]]:
        with websockets_pure_masking():
            return super().collect(chunks)


@contextlib.contextmanager
def websockets_pure_masking() -> Iterator[None]:
    import websockets.frames
    import websockets.utils

    saved = websockets.frames.apply_mask
    websockets.frames.apply_mask = websockets.utils.apply_mask
    try:
        yield
    finally:
        websockets.frames.apply_mask = saved


class WsprotoSession(Session):
    def __init__(self, request: bytes, deflate: bool) -> None:
        self.ws = WSConnection(ConnectionType.SERVER)
        self.ws.receive_data(request)
        events = list(self.ws.events())
        if len(events) != 1 or not isinstance(events[0], Request):
            raise AssertionError(f"wsproto: unexpected handshake events {events!r}")
        response = self.ws.send(AcceptConnection(extensions=[WsprotoDeflate()] if deflate else []))
        if self.ws.state is not ConnectionState.OPEN:
            raise AssertionError("wsproto: not OPEN after the handshake")
        if (b"permessage-deflate" in response.lower()) != deflate:
            raise AssertionError("wsproto: permessage-deflate negotiation went wrong")

    def count(self, chunks: Sequence[bytes]) -> int:
        # wsproto hands a large frame over in pieces as its bytes arrive;
        # a message counts once, on its piece with message_finished.
        receive = self.ws.receive_data
        events = self.ws.events
        n = 0
        for chunk in chunks:
            receive(chunk)
            for event in events():
                if event.message_finished:  # type: ignore[attr-defined]
                    n += 1
        return n

    def collect(self, chunks: Sequence[bytes]) -> list[tuple[bool, bytes]]:
        out: list[tuple[bool, bytes]] = []
        parts: list[bytes] = []
        for chunk in chunks:
            self.ws.receive_data(chunk)
            for event in self.ws.events():
                if isinstance(event, TextMessage):
                    parts.append(event.data.encode())
                elif isinstance(event, BytesMessage):
                    parts.append(bytes(event.data))
                else:
                    raise AssertionError(f"wsproto: unexpected event {event!r}")
                if event.message_finished:
                    out.append((isinstance(event, TextMessage), b"".join(parts)))
                    parts = []
        return out

    def check(self) -> None:
        if self.ws.state is not ConnectionState.OPEN:
            raise AssertionError(f"wsproto: state {self.ws.state.name}")


@dataclass(frozen=True)
class Core:
    key: str
    label: str
    open: Callable[[bytes, bool], Session]


CORES = (
    Core("c", "ws4py C", lambda request, deflate: Ws4pySession("c", request, deflate)),
    Core("python", "ws4py Python", lambda request, deflate: Ws4pySession("python", request, deflate)),
    Core("websockets", "websockets", WebsocketsSession),
    Core("websockets-py", "websockets pure Python", WebsocketsPureSession),
    Core("wsproto", "wsproto", WsprotoSession),
)


# -- measuring ------------------------------------------------------------------------


def timed_run(core: Core, stream: Stream, n: int) -> float:
    """Seconds for a fresh ``core`` to turn the first ``n`` messages' bytes into ``n`` events."""
    plan = stream.plan(n)
    session = core.open(stream.request, stream.row.deflate)
    gc.collect()
    start = time.perf_counter()
    got = session.count(plan)
    elapsed = time.perf_counter() - start
    if got != n:
        raise AssertionError(f"{core.label}, {stream.row.label}: {got} message events, expected {n}")
    session.check()
    return elapsed


def validate(core: Core, stream: Stream, n: int) -> None:
    """Check that ``core`` delivers the first ``n`` messages intact, untimed."""
    session = core.open(stream.request, stream.row.deflate)
    got = session.collect(stream.plan(n))
    session.check()
    expected = [(stream.row.text, payload) for payload in stream.kept[:n]]
    if got != expected:
        pairs = zip(got, expected, strict=False)
        bad = next((i for i, (a, b) in enumerate(pairs) if a != b), min(len(got), len(expected)))
        raise AssertionError(f"{core.label}, {stream.row.label}: message {bad} differs ({len(got)} of {n} received)")


@dataclass
class RowResult:
    row: Row
    n: dict[str, int] = field(default_factory=dict)
    times: dict[str, list[float]] = field(default_factory=dict)
    wire_per_message: float = 0.0
    replayed: bool = False

    def rate(self, key: str) -> float:
        return self.n[key] / statistics.median(self.times[key])

    def ratio(self, a: str, b: str) -> float:
        return self.rate(a) / self.rate(b)


def calibrate(core: Core, stream: Stream, first: int) -> int:
    """Messages for ``core`` to take about TARGET_SECONDS on this stream."""
    n = first
    while True:
        stream.ensure(n)
        elapsed = timed_run(core, stream, n)
        if elapsed >= CALIBRATE_SECONDS:
            break
        n = max(n + 1, math.ceil(n * 1.5 * CALIBRATE_SECONDS / max(elapsed, 1e-6)))
    return max(1, round(n * TARGET_SECONDS / elapsed))


def bench_row(row: Row, corpus: bytes, repeats: int, quick: bool, log: Callable[[str], None]) -> RowResult:
    client = ClientHandshake("localhost", compression=DeflateOptions() if row.deflate else None)
    request = client.request_bytes()
    server = ServerHandshake(compression=DeflateOptions() if row.deflate else None)
    server.receive_data(request)
    stream = Stream(row, corpus, request, server.accept(), client)

    first = row.size.quick if quick else row.size.pilot
    stream.ensure(first, keep=first)
    result = RowResult(row)
    for core in CORES:  # also the warm-up
        validate(core, stream, min(first, stream.count))
    for core in CORES:
        result.n[core.key] = first if quick else calibrate(core, stream, first)
        result.times[core.key] = []
    stream.ensure(max(result.n.values()))
    if not stream.replayable:
        for key, n in result.n.items():
            result.n[key] = min(n, stream.count)
    result.replayed = max(result.n.values()) > stream.count
    result.wire_per_message = stream.wire_bytes / stream.count

    order = list(CORES)
    for rep in range(repeats):
        # Interleave the cores and rotate their order, so that the machine's
        # noise and any drift spread over all of them alike.
        shift = rep % len(order)
        for core in order[shift:] + order[:shift]:
            result.times[core.key].append(timed_run(core, stream, result.n[core.key]))
    log(
        f"{row.label:>13} {'deflate' if row.deflate else '':7} "
        + "  ".join(f"{core.label} {result.rate(core.key):>12,.0f}/s" for core in CORES)
    )
    return result


@dataclass
class UnmaskResult:
    label: str
    gbps: float
    is_copy: bool


def bench_unmask(repeats: int, quick: bool) -> list[UnmaskResult]:
    data = os.urandom(UNMASK_SIZE)
    key = os.urandom(4)
    from ws4py._speedups import apply_mask as c_apply_mask

    try:
        from websockets.speedups import apply_mask as ws_speedups_apply_mask
    except ImportError:
        ws_speedups_apply_mask = None
    ws_origin = "speedups, C" if websockets_apply_mask is ws_speedups_apply_mask else "utils, Python"
    view = memoryview(data)
    candidates: list[tuple[str, Callable[[], object], bool]] = [
        ("ws4py C `apply_mask`", lambda: c_apply_mask(data, key), False),
        ("ws4py Python `apply_mask`", lambda: _frames_py.apply_mask(data, key), False),
        (f"websockets `apply_mask` ({ws_origin})", lambda: websockets_apply_mask(data, key), False),
        ("copy: `bytearray(data)`", lambda: bytearray(data), True),
        ("copy: `bytes(memoryview(data))`", lambda: bytes(view), True),
    ]
    reference = c_apply_mask(data, key)
    if _frames_py.apply_mask(data, key) != reference or websockets_apply_mask(data, key) != reference:
        raise AssertionError("the apply_mask implementations disagree")

    loops: list[int] = []
    for _, fn, _ in candidates:  # calibrate each to about TARGET_SECONDS
        n = 1
        while True:
            start = time.perf_counter()
            for _ in range(n):
                fn()
            elapsed = time.perf_counter() - start
            if quick or elapsed >= CALIBRATE_SECONDS:
                break
            n *= 2
        loops.append(n if quick else max(1, round(n * TARGET_SECONDS / elapsed)))
    times: list[list[float]] = [[] for _ in candidates]
    for rep in range(repeats):
        shift = rep % len(candidates)
        for i in list(range(shift, len(candidates))) + list(range(shift)):
            fn = candidates[i][1]
            n = loops[i]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            times[i].append(time.perf_counter() - start)
    return [
        UnmaskResult(label, loops[i] * UNMASK_SIZE / statistics.median(times[i]) / 1e9, is_copy)
        for i, (label, _, is_copy) in enumerate(candidates)
    ]


# -- reporting ------------------------------------------------------------------------


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line() -> str:
    def version(dist: str) -> str:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{cpu_model()}, {cores} logical cores ({usable} usable), "
        f"{platform.python_implementation()} {platform.python_version()}, zlib {zlib.ZLIB_RUNTIME_VERSION}; "
        f"ws4py {version('ws4py')}, websockets {version('websockets')}, wsproto {version('wsproto')}; {date}"
    )


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}x"


def render(results: list[RowResult], unmask: list[UnmaskResult], repeats: int, quick: bool, argv: Sequence[str]) -> str:
    out: list[str] = []
    w = out.append
    w("# ws4py protocol-core benchmark")
    w("")
    w(f"Machine: {machine_line()}")
    w("")
    command = "bench/run_core.sh" + "".join(f" {arg}" for arg in argv)
    kind = "QUICK SMOKE RUN, numbers meaningless" if quick else "median of each core's measurements"
    w(f"Command: `{command}` ({kind}; {repeats} interleaved measurement(s) per core and row).")
    w("")
    w("## Receiving: messages/s of a server core")
    w("")
    w("Masked client frames, one message per frame, fed in 64 KiB chunks; higher is better.")
    w("")
    w(
        "| Message | deflate | ws4py C | ws4py Python | websockets | websockets pure Python | wsproto "
        "| C / websockets | C / wsproto | Python / websockets | Python / websockets pure Python |"
    )
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        w(
            f"| {r.row.label} | {'yes' if r.row.deflate else 'no'} "
            f"| {fmt_rate(r.rate('c'))} | {fmt_rate(r.rate('python'))} "
            f"| {fmt_rate(r.rate('websockets'))} | {fmt_rate(r.rate('websockets-py'))} "
            f"| {fmt_rate(r.rate('wsproto'))} "
            f"| {fmt_ratio(r.ratio('c', 'websockets'))} | {fmt_ratio(r.ratio('c', 'wsproto'))} "
            f"| {fmt_ratio(r.ratio('python', 'websockets'))} | {fmt_ratio(r.ratio('python', 'websockets-py'))} |"
        )
    w("")
    w(f"## Unmasking {UNMASK_SIZE // MIB} MiB")
    w("")
    copy_ref = max((u for u in unmask if u.is_copy), key=lambda u: u.gbps)
    w(f"GB/s = 10^9 bytes/s of input; the ratio is against the faster copy ({copy_ref.label}).")
    w("")
    w("| Operation | GB/s | vs copy |")
    w("|---|---:|---:|")
    for u in unmask:
        w(f"| {u.label} | {u.gbps:.2f} | {u.gbps / copy_ref.gbps:.2f}x |")
    w("")
    w("## Targets")
    w("")
    for line in targets(results, unmask, copy_ref):
        w(f"- {line}")
    w("")
    w("## Details")
    w("")
    w(
        "N = messages per measurement (each core gets its own prefix of the same byte stream, "
        "sized to take about 0.3 s); time = median seconds per measurement; spread = (max - min) / median "
        "of the core's measurements."
    )
    w("")
    w("| Message | deflate | wire bytes/msg | " + " | ".join(f"{c.label} N, time, spread" for c in CORES) + " |")
    w("|---|---|---:|" + "---:|" * len(CORES))
    for r in results:
        cells = []
        for c in CORES:
            ts = r.times[c.key]
            med = statistics.median(ts)
            cells.append(f"{r.n[c.key]:,}, {med:.3f} s, {(max(ts) - min(ts)) / med:.0%}")
        replay = " (replayed)" if r.replayed else ""
        w(
            f"| {r.row.label} | {'yes' if r.row.deflate else 'no'} | {r.wire_per_message:,.1f}{replay} | "
            + " | ".join(cells)
            + " |"
        )
    w("")
    w("Notes (see bench/README.md):")
    w("")
    w(
        "- websockets' sans-I/O core hands a text message over as UTF-8 bytes and leaves the decoding to its "
        "connection layer; ws4py and wsproto decode (and so validate) it into `str` inside the core. Text rows "
        "therefore include a UTF-8 decode for ws4py and wsproto but not for websockets; binary rows are like for like."
    )
    w(
        "- wsproto hands a large frame over in pieces as its bytes arrive (one event per 64 KiB chunk) and "
        "leaves the reassembly to the application; ws4py and websockets deliver whole messages."
    )
    w(
        "- Payloads are JSON-lines-like ASCII, a different slice for every message. Deflate streams come from a "
        "ws4py client with the default settings (zlib level 6, 15-bit window, context takeover)."
    )
    w("")
    return "\n".join(out)


def targets(results: list[RowResult], unmask: list[UnmaskResult], copy_ref: UnmaskResult) -> list[str]:
    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**MISSED**"

    def worst(rows: list[RowResult], a: str, b: str) -> tuple[float, RowResult]:
        row = min(rows, key=lambda r: r.ratio(a, b))
        return row.ratio(a, b), row

    small = [r for r in results if r.row.size.nbytes <= KIB and not r.row.deflate]
    small_deflate = [r for r in results if r.row.size.nbytes <= KIB and r.row.deflate]
    lines = []
    for peer, goal in (("websockets", 3.0), ("wsproto", 10.0)):
        ratio, row = worst(small, "c", peer)
        misses = [r.row.label for r in small if r.ratio("c", peer) < goal]
        line = (
            f"ws4py C >= {goal:g}x {peer} at 16 B and 1 KiB: {verdict(not misses)} "
            f"(lowest {ratio:.2f}x, {row.row.label}" + (f"; under target: {', '.join(misses)}" if misses else "") + ")."
        )
        d_ratio, d_row = worst(small_deflate, "c", peer)
        line += f" With permessage-deflate (for information): lowest {d_ratio:.2f}x, {d_row.row.label}."
        lines.append(line)
    c_mask = next(u for u in unmask if u.label.startswith("ws4py C"))
    ratio = c_mask.gbps / copy_ref.gbps
    lines.append(
        f"ws4py C unmasking >= 0.5x a plain copy at 1 MiB: {verdict(ratio >= 0.5)} "
        f"({c_mask.gbps:.2f} GB/s vs {copy_ref.gbps:.2f} GB/s, {ratio:.2f}x)."
    )
    ratio, row = worst(results, "python", "websockets")
    misses = [
        f"{r.row.label}{' deflate' if r.row.deflate else ''} ({r.ratio('python', 'websockets'):.2f}x)"
        for r in results
        if r.ratio("python", "websockets") < 1.0
    ]
    lines.append(
        f"ws4py pure Python no slower than websockets (with its C masking), every row: {verdict(not misses)}"
        + (f"; slower in: {', '.join(misses)}." if misses else f" (lowest {ratio:.2f}x, {row.row.label}).")
    )
    ratio, row = worst(results, "python", "websockets-py")
    misses = [
        f"{r.row.label}{' deflate' if r.row.deflate else ''} ({r.ratio('python', 'websockets-py'):.2f}x)"
        for r in results
        if r.ratio("python", "websockets-py") < 1.0
    ]
    lines.append(
        f"For information, pure Python against pure Python (websockets with its own Python masking): "
        f"{'no slower in every row' if not misses else 'slower in: ' + ', '.join(misses)}"
        + (f" (lowest {ratio:.2f}x, {row.row.label})." if not misses else ".")
    )
    return lines


# -- profiling (--profile) ----------------------------------------------------------


def codec_share(codec: str, plan: Sequence[bytes], n: int) -> tuple[float, float]:
    """Seconds for the whole core, and for the codec's ``parse_frames`` alone, on ``plan``.

    Both uninstrumented (cProfile inflates Python-level calls). The codec
    alone is fed the way ``Connection.receive_data`` feeds it: a buffer that
    keeps the partial frame left at the end of each chunk.
    """
    frames.use(codec)
    parse = frames.parse_frames
    best_total = best_codec = math.inf
    for _ in range(5):
        session = Ws4pySession(codec, ClientHandshake("localhost").request_bytes(), False)
        gc.collect()
        start = time.perf_counter()
        if session.count(plan) != n:
            raise AssertionError("profile: wrong message count")
        best_total = min(best_total, time.perf_counter() - start)
        gc.collect()
        start = time.perf_counter()
        buf = bytearray()
        got = 0
        for chunk in plan:
            buf += chunk
            parsed, pos, _ = parse(buf, 0, True, 0, MAX_MESSAGE)
            del buf[:pos]
            got += len(parsed)
        best_codec = min(best_codec, time.perf_counter() - start)
        if got != n:
            raise AssertionError("profile: wrong frame count")
    return best_total, best_codec


def profile(corpus: bytes, top: int) -> str:
    """Where ws4py's core spends its time on the 16 B and 1 KiB rows, both codecs."""
    out = io.StringIO()
    for codec in ("c", "python"):
        core = next(c for c in CORES if c.key == codec)
        for size in SIZES[:2]:
            for text in (True, False):
                row = Row(size, text, deflate=False)
                client = ClientHandshake("localhost")
                request = client.request_bytes()
                server = ServerHandshake()
                server.receive_data(request)
                stream = Stream(row, corpus, request, server.accept(), client)
                n = 200_000 if size.nbytes <= 16 else 100_000
                stream.ensure(n)
                plan = stream.plan(n)
                session = core.open(request, False)  # sets the codec
                profiler = cProfile.Profile()
                profiler.enable()
                got = session.count(plan)
                profiler.disable()
                if got != n:
                    raise AssertionError(f"profile: {got} messages, expected {n}")
                total, codec_alone = codec_share(codec, plan, n)
                out.write(f"\n=== ws4py {codec} codec, {row.label}, {n:,} messages in {len(plan):,} chunks ===\n")
                out.write(
                    f"uninstrumented, best of 5: {n / total:,.0f} messages/s, {total * 1e9 / n:.0f} ns/message; "
                    f"parse_frames alone {codec_alone * 1e9 / n:.0f} ns/message ({codec_alone / total:.0%}), "
                    f"the rest of the core (receive_data, _process, events, UTF-8) "
                    f"{(total - codec_alone) * 1e9 / n:.0f} ns/message\n"
                )
                stats = pstats.Stats(profiler, stream=out)
                stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


# -- main -------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny N, one repeat, every row")
    parser.add_argument("--repeats", type=int, default=None, help="measurements per core and row (default 7)")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"markdown file to write (default {DEFAULT_OUTPUT.relative_to(BENCH_DIR.parent)}; "
        "with --quick nothing is written unless given)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="print a cProfile of ws4py's core (16 B and 1 KiB) and exit"
    )
    args = parser.parse_args(argv)
    raw_argv = list(sys.argv[1:] if argv is None else argv)

    if "c" not in frames.available_implementations():
        raise SystemExit("ws4py's C codec is not built: pip install -e . must compile src/ws4py/_speedups.c")
    if os.environ.get("WS4PY_PURE_PYTHON") == "1":
        print("note: WS4PY_PURE_PYTHON=1 is ignored; the benchmark switches codecs itself", file=sys.stderr)

    corpus = make_corpus(4 * MIB + 2 * max(s.nbytes for s in SIZES))
    if args.profile:
        print(profile(corpus, top=15))
        return 0

    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 7)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    log(f"machine: {machine_line()}")
    started = time.perf_counter()
    results = [
        bench_row(Row(size, text, deflate), corpus, repeats, args.quick, log)
        for deflate in (False, True)
        for size in SIZES
        for text in (True, False)
    ]
    unmask = bench_unmask(repeats, args.quick)
    log(f"done in {time.perf_counter() - started:.0f} s")

    report = render(results, unmask, repeats, args.quick, raw_argv)
    print(report)
    output = args.output if args.output is not None else (None if args.quick else DEFAULT_OUTPUT)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report, encoding="utf-8")
        log(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
