"""Client benchmark: ws4py's clients against websockets, aiohttp, picows, websocket-client, tornado and ws4py 0.6.

One C server that is never the bottleneck (``bench/clientbench/server.c``: one
thread, epoll; it checks the masking and every byte of what a client sends,
streams ready frames to a client that reads) and, per measurement, one client
process of one library and API, in its own virtualenv
(``bench/clientbench/*.py``, on ``bench/clientbench/_common.py``), with and
without uvloop where the client runs on asyncio; a C client
(``bench/clientbench/client.c``) as the machine's ceiling.

Rows: lockstep round trips/s (16 B and 1 KiB text), receive and send
messages/s (16 B and 1 KiB text, 64 KiB and 1 MiB binary), connect + close
cycles/s (sequential). Each run is a fresh client process; in every repeat the
rows come one after the other and in each row the clients take turns (their
order rotated from repeat to repeat); the report shows the medians, the client's
and the server's CPU, the ratios the issue's targets are about, and the targets
met or missed. Run it through ``bench/run_clients.sh``, which makes the
virtualenvs and builds the C parts; ``bench/README.md`` explains every row.
``--quick`` is a smoke run: every row, tiny durations, one repeat, nothing written.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    BENCH_DIR,
    KIB,
    MIB,
    ROOT,
    MeasureError,
    Peer,
    Server,
    dist_version,
    fmt_num,
    fmt_size,
    kill_all,
    machine_line,
    probe_peer,
    spawn,
    stop_process,
)

CLIENTBENCH = BENCH_DIR / "clientbench"
BUILD = CLIENTBENCH / "build"  # ignored by git; bench/run_clients.sh compiles into it
SERVER = BUILD / "server"
C_CLIENT = BUILD / "client"
DEFAULT_OUTPUT = BENCH_DIR / "results" / "clients.md"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# -- clients ---------------------------------------------------------------------------

DEFAULT_LOOP = "asyncio"
UVLOOP = "uvloop"


@dataclass(frozen=True)
class Client(Peer):
    loop: str = ""  # DEFAULT_LOOP or UVLOOP for the clients on asyncio; "" for the others
    default: bool = True  # run unless --peers says otherwise


def client(key: str, label: str, venv: str, script: str, probe: str, dist: str, loop: str = "") -> Client:
    return Client(key, label, venv, script, probe, dist, servers=CLIENTBENCH, loop=loop)


def on_loops(
    key: str, label: str, venv: str, script: str, probe: str, dist: str, uvloop_by_default: bool = True
) -> tuple[Client, Client]:
    """The client on the default asyncio loop, and on uvloop (``--uvloop``)."""
    return (
        client(key, label, venv, script, probe, dist, DEFAULT_LOOP),
        Client(
            f"{key}-uvloop",
            f"{label} + uvloop",
            venv,
            script,
            f"{probe}, uvloop",
            dist,
            extra_args=("--uvloop",),
            servers=CLIENTBENCH,
            loop=UVLOOP,
            default=uvloop_by_default,
        ),
    )


# The callbacks client of issue 22 (helper E1's branch h22-cbclient): ws4py_callbacks.py imports it by the
# name below; a checkout without it leaves the two columns out ("Not run").
# (the probe is spliced into "import importlib.metadata, PROBE"; uvloop's column appends ", uvloop")
CALLBACKS_PROBE = "ws4py; from ws4py.async_websocket import connect as _; import ws4py.async_websocket"
CALLBACKS, CALLBACKS_UV = on_loops(
    "callbacks", "ws4py callbacks", "threaded", "ws4py_callbacks.py", CALLBACKS_PROBE, "ws4py"
)
CONNECT, CONNECT_UV = on_loops(
    "connect", "ws4py.asyncio connect", "threaded", "ws4py_connect.py", "ws4py.asyncio", "ws4py"
)
THREADED = client("threaded", "ws4py threaded", "threaded", "ws4py_threaded.py", "ws4py.client.threadedclient", "ws4py")
GEVENT = client("gevent", "ws4py gevent", "integrations", "ws4py_gevent.py", "ws4py.client.geventclient", "ws4py")
ORIG = client("orig", "ws4py 0.6.0 threaded", "ws4py-orig", "ws4py_threaded.py", "ws4py.client.threadedclient", "ws4py")
PICOWS, PICOWS_UV = on_loops("picows", "picows", "picows", "picows_client.py", "picows", "picows")
WEBSOCKETS, WEBSOCKETS_UV = on_loops(
    "websockets", "websockets", "websockets", "websockets_asyncio.py", "websockets.asyncio.client", "websockets"
)
WEBSOCKETS_SYNC = client(
    "websockets-sync", "websockets sync", "websockets", "websockets_sync.py", "websockets.sync.client", "websockets"
)
AIOHTTP, AIOHTTP_UV = on_loops("aiohttp", "aiohttp", "aiohttp", "aiohttp_client.py", "aiohttp", "aiohttp")
WEBSOCKET_CLIENT = client(
    "websocket-client", "websocket-client", "websocket-client", "websocket_client.py", "websocket", "websocket-client"
)
# tornado runs on asyncio, so on uvloop too; the issue asks for its default loop: uvloop on request.
TORNADO, TORNADO_UV = on_loops(
    "tornado", "tornado", "tornado", "tornado_client.py", "tornado.websocket", "tornado", uvloop_by_default=False
)
C_PEER = Client("c", "C client (ceiling)", binary=C_CLIENT, servers=CLIENTBENCH)

# The order of the columns, and of the clients' turns in the first repeat.
CLIENTS: tuple[Client, ...] = (
    CALLBACKS,
    CONNECT,
    THREADED,
    GEVENT,
    ORIG,
    PICOWS,
    WEBSOCKETS,
    WEBSOCKETS_SYNC,
    AIOHTTP,
    WEBSOCKET_CLIENT,
    TORNADO,
    CALLBACKS_UV,
    CONNECT_UV,
    PICOWS_UV,
    WEBSOCKETS_UV,
    AIOHTTP_UV,
    TORNADO_UV,
    C_PEER,
)
BY_KEY = {c.key: c for c in CLIENTS}

# -- rows ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    mode: str  # lockstep | receive | send | connect (the runners' modes)
    text: bool
    size: int
    warmup: float
    duration: float

    @property
    def kind(self) -> str:
        return "text" if self.text else "binary"

    @property
    def label(self) -> str:
        if self.mode == "connect":
            return "connect + close, sequential"
        return f"{self.mode} {fmt_size(self.size)} {self.kind}"

    @property
    def unit(self) -> str:
        return {"lockstep": "round trips/s", "connect": "conn/s"}.get(self.mode, "msg/s")

    @property
    def timeout(self) -> float:
        """Seconds a run may take: the interpreter's start, connecting, the phases, the end of a send row."""
        return self.warmup + self.duration + 30.0


SIZES = ((16, True), (KIB, True), (64 * KIB, False), (MIB, False))


def make_rows(quick: bool) -> list[Row]:
    def timing(size: int) -> tuple[float, float]:
        if quick:
            return 0.05, 0.15
        return (0.5, 2.0) if size >= MIB else (0.3, 1.0)

    rows = [Row("lockstep", True, size, *timing(size)) for size in (16, KIB)]
    for mode in ("receive", "send"):
        rows += [Row(mode, text, size, *timing(size)) for size, text in SIZES]
    return [*rows, Row("connect", True, 16, *timing(16))]


# -- measuring -------------------------------------------------------------------------


@dataclass
class Sample:
    value: float
    client_share: float  # the client's CPU seconds per second of the measured interval
    server_share: float | None  # the server's


@dataclass
class Cell:
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def median(self, key: Callable[[Sample], float | None]) -> float | None:
        values = [v for v in (key(s) for s in self.samples) if v is not None]
        return statistics.median(values) if values else None

    @property
    def value(self) -> float | None:
        return self.median(lambda s: s.value)


def process_cpu(pid: int) -> float:
    """utime + stime of every thread of ``pid``, in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class ServerLog:
    """The server's reports (a JSON line per connection that carried data): the errors since the last look."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.offset = 0

    def errors(self) -> list[str]:
        try:
            with open(self.server.log_path, "rb") as f:
                f.seek(self.offset)
                new = f.read()
        except OSError:
            return []
        self.offset += len(new)
        found = []
        for line in new.decode("utf-8", "replace").splitlines():
            try:
                report = json.loads(line)
            except json.JSONDecodeError:
                found.append(line.strip())
                continue
            if report.get("error"):
                found.append(f"{report['mode']}: {report['error']}")
        return found


def measure(peer: Client, row: Row, server: Server, log: ServerLog, logdir: Path) -> Sample:
    argv = [
        *peer.argv(server.port),
        row.mode,
        row.kind,
        str(row.size),
        f"{row.warmup:g}",
        f"{row.duration:g}",
    ]
    stderr_path = logdir / f"{peer.key}-{row.mode}-{row.size}.stderr"
    with open(stderr_path, "wb") as stderr:
        proc = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, cwd=CLIENTBENCH)
    assert proc.stdout is not None
    deadline = time.monotonic() + row.timeout
    lines: list[str] = []
    pending = b""
    server_cpu = [0.0, 0.0]
    stamps = [0.0, 0.0]
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise MeasureError(f"no result within {row.timeout:g} s (output so far: {lines[-3:]})")
            ready, _, _ = select.select([proc.stdout], [], [], left)
            if not ready:
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                raise MeasureError(f"the client exited without a result (status {proc.wait()}): {tail(stderr_path)}")
            pending += chunk
            while b"\n" in pending:
                raw, pending = pending.split(b"\n", 1)
                line = raw.decode("utf-8", "replace").strip()
                lines.append(line)
                if line == "start":
                    server_cpu[0], stamps[0] = process_cpu(server.pid), time.monotonic()
                elif line.startswith("{"):
                    server_cpu[1], stamps[1] = process_cpu(server.pid), time.monotonic()
                    return result(json.loads(line), server_cpu, stamps, stderr_path)
    finally:
        stop_process(proc)
        errors = log.errors()
        if errors:
            raise MeasureError("the server found: " + "; ".join(errors[:3]))


def result(data: dict[str, Any], server_cpu: list[float], stamps: list[float], stderr_path: Path) -> Sample:
    if not data.get("ok"):
        raise MeasureError(f"{data.get('error', '?')} | {tail(stderr_path)}")
    wall = data["wall_s"]
    if data["count"] <= 0 or wall <= 0:
        raise MeasureError(f"nothing measured: {data}")
    server_wall = stamps[1] - stamps[0]
    server_share = (server_cpu[1] - server_cpu[0]) / server_wall if stamps[0] and server_wall > 0 else None
    return Sample(data["count"] / wall, data["cpu_s"] / wall, server_share)


def tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "(no stderr)"
    return " | ".join(text[-lines:]) if text else "(empty stderr)"


@dataclass
class Bench:
    clients: list[Client]
    rows: list[Row]
    repeats: int
    logdir: Path
    log: Callable[[str], None]
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)

    def cell(self, row: Row, key: str) -> Cell | None:
        return self.cells.get((row.label, key))

    def run(self) -> None:
        """For each repeat, each row; in each row every client once, their order rotated by one per repeat."""
        server_peer = Peer("server", "C server", binary=SERVER)
        server = Server(server_peer, self.logdir)
        server.start()
        log = ServerLog(server)
        width = max(len(c.label) for c in self.clients)
        try:
            for repeat in range(self.repeats):
                turn = repeat % len(self.clients)
                order = self.clients[turn:] + self.clients[:turn]
                for row in self.rows:
                    self.log(f"[repeat {repeat + 1}/{self.repeats}] {row.label}")
                    for peer in order:
                        if not server.alive():
                            self.log(f"  the server died ({server.log_tail()}); a new one")
                            server.stop()
                            server = Server(server_peer, self.logdir)
                            server.start()
                            log = ServerLog(server)
                        cell = self.cells.setdefault((row.label, peer.key), Cell())
                        try:
                            sample = measure(peer, row, server, log, self.logdir)
                        except (MeasureError, OSError, ValueError, KeyError) as exc:
                            cell.errors.append(f"repeat {repeat + 1}: {exc}")
                            self.log(f"  {peer.label:<{width}} FAILED: {exc}")
                            continue
                        cell.samples.append(sample)
                        server_share = "-" if sample.server_share is None else f"{sample.server_share:.0%}"
                        self.log(
                            f"  {peer.label:<{width}} {fmt_num(sample.value)} {row.unit} "
                            f"(CPU client {sample.client_share:.0%}, server {server_share})"
                        )
        finally:
            server.stop()


# -- targets ---------------------------------------------------------------------------


def _io(row: Row) -> bool:
    return row.mode in ("receive", "send")


def _every(row: Row) -> bool:
    return True


@dataclass(frozen=True)
class Target:
    """``numerator / denominator >= at_least`` in the rows ``applies`` picks."""

    text: str
    numerator: str
    denominator: str
    at_least: float
    applies: Callable[[Row], bool]


TARGETS: tuple[Target, ...] = (
    Target("ws4py callbacks >= 1.0x picows, every row", "callbacks", "picows", 1.0, _every),
    Target("ws4py callbacks >= 1.0x picows, every row (uvloop)", "callbacks-uvloop", "picows-uvloop", 1.0, _every),
    Target("ws4py.asyncio connect >= 0.8x picows, receive and send rows", "connect", "picows", 0.8, _io),
    Target(
        "ws4py.asyncio connect >= 0.8x picows, receive and send rows (uvloop)",
        "connect-uvloop",
        "picows-uvloop",
        0.8,
        _io,
    ),
    Target("ws4py.asyncio connect >= 2x websockets, every row", "connect", "websockets", 2.0, _every),
    Target(
        "ws4py.asyncio connect >= 2x websockets, every row (uvloop)", "connect-uvloop", "websockets-uvloop", 2.0, _every
    ),
    Target("ws4py threaded >= 1.0x ws4py 0.6.0, every row", "threaded", "orig", 1.0, _every),
    Target("ws4py threaded >= 0.8x picows, receive and send rows", "threaded", "picows", 0.8, _io),
)


def ratio_of(bench: Bench, row: Row, numerator: str, denominator: str) -> float | None:
    a, b = bench.cell(row, numerator), bench.cell(row, denominator)
    va = a.value if a is not None else None
    vb = b.value if b is not None else None
    return None if va is None or vb is None or vb == 0 else va / vb


def target_lines(bench: Bench) -> list[str]:
    out = []
    for target in TARGETS:
        rows = [r for r in bench.rows if target.applies(r)]
        ratios = [(r, ratio_of(bench, r, target.numerator, target.denominator)) for r in rows]
        known = [(r, x) for r, x in ratios if x is not None]
        if not known:
            out.append(f"- {target.text}: not measured")
            continue
        missed = [(r, x) for r, x in known if x < target.at_least]
        unknown = len(ratios) - len(known)
        gaps = f" ({unknown} of {len(ratios)} rows not measured)" if unknown else ""
        if missed:
            listed = ", ".join(f"{r.label} {x:.2f}x" for r, x in missed)
            out.append(f"- **missed** {target.text}: {listed}{gaps}")
        else:
            closest, value = min(known, key=lambda rx: rx[1])
            out.append(f"- met: {target.text} (closest: {closest.label}, {value:.2f}x){gaps}")
    return out


# -- report ----------------------------------------------------------------------------


def value_text(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    value = cell.value
    text = "failed" if value is None else fmt_num(value)
    if cell.errors and value is not None:
        text += f" ({len(cell.errors)} failed)"
    return text


def render(bench: Bench, machine: str, missing: dict[str, str], quick: bool, argv: Sequence[str]) -> str:
    clients = bench.clients
    keys = {c.key for c in clients}
    command = " ".join(["bench/run_clients.sh", *map(shlex.quote, argv)])
    out = [
        "# Client benchmark" + (" (quick smoke run: not a measurement)" if quick else ""),
        "",
        f"Machine: {machine}",
        "",
        f"Command: `{command}`; medians of {bench.repeats} interleaved run(s) per cell. "
        'See bench/README.md ("Clients") for what each row and column is.',
        "",
        "## Targets (issue 22)",
        "",
        *target_lines(bench),
        "",
        "## Results",
        "",
        "| Row | Unit | " + " | ".join(c.label for c in clients) + " |",
        "|---|---|" + "--:|" * len(clients),
    ]
    for row in bench.rows:
        cells = [value_text(bench.cell(row, c.key)) for c in clients]
        out.append(f"| {row.label} | {row.unit} | " + " | ".join(cells) + " |")
    pairs = [(t.numerator, t.denominator) for t in TARGETS]
    pairs = list(dict.fromkeys(p for p in pairs if p[0] in keys and p[1] in keys))
    if pairs:
        out += ["", "## Ratios", "", "✓ / ✗: a target applies to the cell.", ""]
        out.append("| Row | " + " | ".join(f"{BY_KEY[a].label} / {BY_KEY[b].label}" for a, b in pairs) + " |")
        out.append("|---|" + "--:|" * len(pairs))
        for row in bench.rows:
            parts = []
            for a, b in pairs:
                x = ratio_of(bench, row, a, b)
                mark = ""
                for t in TARGETS:
                    if (t.numerator, t.denominator) == (a, b) and t.applies(row) and x is not None:
                        mark = " ✓" if x >= t.at_least else " ✗"
                parts.append("-" if x is None else f"{x:.2f}x{mark}")
            out.append(f"| {row.label} | " + " | ".join(parts) + " |")
    out += [
        "",
        "## CPU",
        "",
        "Client / server, % of one core over the measured interval (a client above 100% uses more than one thread).",
        "",
        "| Row | " + " | ".join(c.label for c in clients) + " |",
        "|---|" + "--:|" * len(clients),
    ]
    for row in bench.rows:
        parts = []
        for c in clients:
            cell = bench.cell(row, c.key)
            if cell is None or not cell.samples:
                parts.append("-")
                continue
            client_share = cell.median(lambda s: s.client_share)
            server_share = cell.median(lambda s: s.server_share)
            parts.append(
                f"{100 * (client_share or 0):.0f}% / " + ("-" if server_share is None else f"{100 * server_share:.0f}%")
            )
        out.append(f"| {row.label} | " + " | ".join(parts) + " |")
    failures = [
        f"- {c.label}, {row.label}, {error}"
        for row in bench.rows
        for c in clients
        for error in (bench.cell(row, c.key) or Cell()).errors
    ]
    if missing:
        out += ["", "## Not run", ""] + [f"- {label}: {reason}" for label, reason in missing.items()]
    if failures:
        out += ["", "## Failures", "", *failures]
    return "\n".join(out) + "\n"


def versions(probed: list[tuple[Client, str]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for peer, version in probed:
        name = "C parts" if peer.binary is not None else (peer.dist if peer.venv != "ws4py-orig" else "ws4py 0.6")
        if peer.venv == "ws4py-orig":
            name = "ws4py (orig)"
        found.setdefault(name, version)
        if peer.loop == UVLOOP and "uvloop" not in found:
            uv = dist_version(peer, "uvloop")
            if uv:
                found["uvloop"] = uv
        if peer.key == "gevent":
            gevent = dist_version(peer, "gevent")
            if gevent:
                found["gevent"] = gevent
    return found


# -- main ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: every row, tiny durations, one repeat")
    parser.add_argument("--repeats", type=int, default=None, help="runs per cell (default 3; --quick: 1)")
    defaults = [c.key for c in CLIENTS if c.default]
    parser.add_argument(
        "--peers",
        default=",".join(defaults),
        help=f"comma-separated clients, of {', '.join(BY_KEY)} (default: all but "
        + ", ".join(c.key for c in CLIENTS if not c.default)
        + ")",
    )
    parser.add_argument(
        "--only",
        "--rows",
        dest="only",
        action="append",
        default=None,
        metavar="TEXT",
        help="only the rows whose label contains TEXT (repeatable)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"markdown file to write (default {DEFAULT_OUTPUT.relative_to(ROOT)}; --quick writes only this)",
    )
    args = parser.parse_args(argv)
    raw_argv = list(sys.argv[1:] if argv is None else argv)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    wanted = [k.strip() for k in args.peers.split(",") if k.strip()]
    unknown = set(wanted) - set(BY_KEY)
    if unknown:
        parser.error(f"unknown client(s): {', '.join(sorted(unknown))}")
    if not SERVER.exists():
        raise SystemExit(f"{SERVER.relative_to(ROOT)} is not built: run bench/run_clients.sh")
    clients: list[Client] = []
    probed: list[tuple[Client, str]] = []
    missing: dict[str, str] = {}
    for peer in CLIENTS:
        if peer.key not in wanted:
            continue
        reason, version = probe_peer(peer)
        if reason is None:
            clients.append(peer)
            probed.append((peer, version))
        else:
            missing[peer.label] = reason
            log(f"warning: {peer.label} is not run: {reason}")
    if not clients:
        raise SystemExit("no client to run")
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)
    rows = make_rows(args.quick)
    if args.only:
        rows = [r for r in rows if any(text in r.label for text in args.only)]
        if not rows:
            parser.error(f"no row label contains {' or '.join(map(repr, args.only))}")

    machine = machine_line(versions(probed))
    log(f"machine: {machine}")
    started = time.monotonic()

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    logdir = Path(tempfile.mkdtemp(prefix="ws4py-clientbench-"))
    bench = Bench(clients, rows, repeats, logdir, log)
    try:
        bench.run()
    finally:
        kill_all()
        shutil.rmtree(logdir, ignore_errors=True)
    log(f"done in {time.monotonic() - started:.0f} s")
    report = render(bench, machine, missing, args.quick, raw_argv)
    print(report)
    output = args.output if args.output is not None else (None if args.quick else DEFAULT_OUTPUT)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report, encoding="utf-8")
        log(f"wrote {output}")
    failed = any(cell.errors or not cell.samples for cell in bench.cells.values())
    return 1 if failed else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    sys.exit(130)
