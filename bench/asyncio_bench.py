"""asyncio-server benchmark: ws4py.asyncio and ws4py's callback API against websockets, aiohttp, picows and tornado.

Side by side in one run, each peer in its own virtualenv and process, driven
over 127.0.0.1 by the load generator written in C (``bench/loadgen``), with
and without uvloop where the peer supports it:

1. ws4py (this repository), ``ws4py.asyncio.serve`` (coroutine handlers);
2. ws4py (this repository), the callback style: ``WebSocketProtocol(EchoWebSocket)``
   with ``loop.create_server``;
3. websockets (latest), ``websockets.asyncio.server.serve``;
4. aiohttp (latest), a ``web.Application`` with a ``WebSocketResponse`` handler;
5. picows (latest), ``ws_create_server`` with a ``WSListener``;
6. tornado (latest), a ``tornado.websocket.WebSocketHandler``, on the default
   loop (``--peers tornado-uvloop`` adds it on uvloop);

and, as a reference floor, the minimal echo server in C (``bench/servers/c_echo.c``).

Rows: echo messages/s at 16 B, 1 KiB, 64 KiB and 1 MiB, text and binary, for
1 connection in lockstep (with the round trip p50/p99) and for 50 connections
each keeping 16 messages in flight; memory per idle connection at 10,000
connections; broadcast of 100 messages of 64 B to 5,000 clients; handshakes/s.
The report has one table per event loop (default asyncio loop, uvloop), whose
ratio columns compare like with like, and checks the targets. Run it through
``bench/run_asyncio.sh``, which makes the virtualenvs and builds the load
generator; ``bench/README.md`` explains every row. ``--quick`` is a smoke run:
every row, tiny durations and counts, one repeat, nothing written.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from harness import (
    BENCH_DIR,
    C_ECHO,
    KIB,
    MIB,
    SETUP_CONCURRENCY,
    Bench,
    Cell,
    Peer,
    Row,
    Suite,
    broadcast_row,
    churn_row,
    cpu_line,
    dist_version,
    echo_row,
    failure_lines,
    fmt_size,
    idle_row,
    lockstep_repeats,
    pinned_lockstep_rows,
    ratio,
    round_trip_line,
    run_main,
    value_cell,
)

DEFAULT_OUTPUT = BENCH_DIR / "results" / "asyncio.md"


# -- peers -----------------------------------------------------------------------------

DEFAULT_LOOP = "asyncio"
UVLOOP = "uvloop"


@dataclass(frozen=True)
class LoopPeer(Peer):
    loop: str = DEFAULT_LOOP  # DEFAULT_LOOP or UVLOOP; "" for the C server (no loop: it is in every table)
    name: str = ""  # the column header within its loop's table
    default: bool = True  # run unless --peers says otherwise


def _variants(
    key: str,
    name: str,
    venv: str,
    script: str,
    probe: str,
    dist: str,
    uvloop_by_default: bool = True,
    max_echo_size: int | None = None,
) -> tuple[LoopPeer, LoopPeer]:
    """The peer on the default asyncio loop, and on uvloop (``--uvloop``)."""
    return (
        LoopPeer(key, name, venv, script, probe, dist, max_echo_size=max_echo_size, loop=DEFAULT_LOOP, name=name),
        LoopPeer(
            f"{key}-uvloop",
            f"{name} + uvloop",
            venv,
            script,
            f"{probe}, uvloop",
            dist,
            extra_args=("--uvloop",),
            max_echo_size=max_echo_size,
            loop=UVLOOP,
            name=name,
            default=uvloop_by_default,
        ),
    )


ASYNCIO, ASYNCIO_UV = _variants("asyncio", "ws4py.asyncio", "threaded", "ws4py_asyncio.py", "ws4py.asyncio", "ws4py")
CALLBACKS, CALLBACKS_UV = _variants(
    "callbacks", "ws4py callbacks", "threaded", "ws4py_callbacks.py", "ws4py.async_websocket", "ws4py"
)
WEBSOCKETS, WEBSOCKETS_UV = _variants(
    "websockets", "websockets", "websockets", "websockets_asyncio.py", "websockets.asyncio.server", "websockets"
)
AIOHTTP, AIOHTTP_UV = _variants("aiohttp", "aiohttp", "aiohttp", "aiohttp_server.py", "aiohttp.web", "aiohttp")
PICOWS, PICOWS_UV = _variants("picows", "picows", "picows", "picows_server.py", "picows", "picows")
# tornado runs on asyncio, so on uvloop too; the issue asks for its default loop only: uvloop on request.
TORNADO, TORNADO_UV = _variants(
    "tornado", "tornado", "tornado", "tornado_server.py", "tornado.websocket", "tornado", uvloop_by_default=False
)
# Not a competitor: the least any Python protocol spends per small message on that loop (python_floor.py).
FLOOR, FLOOR_UV = _variants(
    "floor", "Python floor (reference)", "threaded", "python_floor.py", "ws4py", "ws4py", max_echo_size=KIB
)
C_PEER = LoopPeer("c", "C echo (reference)", binary=C_ECHO, loop="", name="C echo (reference)")

# The order of the columns, and the order in which the servers take turns in every repeat.
PEERS: tuple[LoopPeer, ...] = (
    ASYNCIO,
    CALLBACKS,
    WEBSOCKETS,
    AIOHTTP,
    PICOWS,
    TORNADO,
    ASYNCIO_UV,
    CALLBACKS_UV,
    WEBSOCKETS_UV,
    AIOHTTP_UV,
    PICOWS_UV,
    TORNADO_UV,
    FLOOR,
    FLOOR_UV,
    C_PEER,
)
PEER_KEYS = [p.key for p in PEERS]
DEFAULT_PEERS = [p.key for p in PEERS if p.default]
LOOP_TITLES = {DEFAULT_LOOP: "Default asyncio loop", UVLOOP: "uvloop"}


def loop_key(base: str, loop: str) -> str:
    """The key of peer family ``base`` ("asyncio", "picows", ...) on ``loop``."""
    return base if loop == DEFAULT_LOOP else f"{base}-uvloop"


# -- rows ------------------------------------------------------------------------------

SIZES = (16, KIB, 64 * KIB, MIB)
IDLE_CONNS = 10_000
BROADCAST_CONNS = 5_000


def echo_rows(quick: bool, repeats: int) -> list[Row]:
    rows = []
    for conns, inflight in ((1, 1), (50, 16)):
        for size in SIZES:
            for text in (True, False):
                if quick:
                    warmup, duration, drain = 0.05, 0.15, 3.0
                elif size >= MIB:
                    warmup, duration, drain = 0.5, 2.0, 5.0
                else:
                    warmup, duration, drain = 0.3, 1.0, 5.0
                if conns > 1 and size >= MIB:
                    # 50 x 16 x 1 MiB = 800 MiB in flight: filling the pipe takes a while, and so does draining it
                    # (a server doing 300 msg/s needs about 3 s; one that does not catch up in time is restarted).
                    warmup, drain = (0.2 if quick else 1.0), 15.0
                runs = lockstep_repeats(repeats) if conns == 1 else repeats
                rows.append(echo_row(conns, inflight, size, text, warmup, duration, drain, runs))
    # 64 KiB on one CPU too: the server's CPU per large message, beside picows' and C's (issue 23).
    return rows + pinned_lockstep_rows(quick, lockstep_repeats(repeats), (16, KIB, 64 * KIB))


def heavy_rows(quick: bool, repeats: int) -> list[Row]:
    return [
        idle_row(400 if quick else IDLE_CONNS, 30 if quick else 120, repeats),
        broadcast_row(300 if quick else BROADCAST_CONNS, 0.3 if quick else 1.0, 20 if quick else 120, repeats),
        churn_row(0.1 if quick else 0.5, 0.3 if quick else 2.0, repeats),
    ]


def make_rows(quick: bool, echo_repeats: int, heavy_repeats: int) -> list[Row]:
    return echo_rows(quick, echo_repeats) + heavy_rows(quick, heavy_repeats)


# -- targets ---------------------------------------------------------------------------


def _small(row: Row) -> bool:
    return row.kind == "echo" and row.size <= KIB


def _large(row: Row) -> bool:
    return row.kind == "echo" and row.size >= 64 * KIB


def _every(row: Row) -> bool:
    return True


@dataclass(frozen=True)
class Target:
    """``subject`` against ``other`` (peer families), on the rows ``applies`` picks: the ratio of their medians
    must be at least ``bound`` (↑ rows) or at most ``bound`` (↓ rows)."""

    subject: str
    other: str
    applies: Callable[[Row], bool]
    bound: float
    what: str  # e.g. "≥ 2x in every 16 B and 1 KiB echo row"
    strict: bool = False  # the bound itself misses: above it (↑ rows), below it (↓ rows)

    def met(self, row: Row, value: float) -> bool:
        if self.strict:
            return value > self.bound if row.higher_is_better else value < self.bound
        return value >= self.bound if row.higher_is_better else value <= self.bound

    def margin(self, row: Row, value: float) -> float:
        """How far ``value`` is on the right side of the bound: above 1 met, below 1 missed."""
        return value / self.bound if row.higher_is_better else self.bound / value if value else float("inf")


# The ratio columns: subject / other, within one loop.
RATIOS = (
    ("asyncio", "websockets", "ws4py.asyncio / websockets"),
    ("asyncio", "picows", "ws4py.asyncio / picows"),
    ("callbacks", "picows", "ws4py callbacks / picows"),
)

TARGETS = (
    Target("asyncio", "websockets", _small, 2.0, "≥ 2x in every 16 B and 1 KiB echo row"),
    Target("asyncio", "picows", _large, 1.0, "≥ 1x in every 64 KiB and 1 MiB echo row"),
    Target("callbacks", "picows", _every, 1.0, "≥ 1x in every row (≤ 1x in the ↓ rows: at least as good)"),
    Target("asyncio", "websockets", lambda r: r.kind == "idle", 0.6, "≤ 0.6x in memory per idle connection"),
    Target("asyncio", "websockets", lambda r: r.kind == "broadcast", 0.5, "≤ 0.5x in broadcast time"),
    Target("asyncio", "picows", lambda r: r.kind == "churn", 1.0, "≥ 1x in handshakes/s"),
)
FAMILY_NAMES = {p.key: p.name for p in (ASYNCIO, CALLBACKS, WEBSOCKETS, PICOWS)}


def cpu_per_message_line(row: Row, peers: Sequence[Peer], cell: Callable[[Row, str], Cell | None]) -> str:
    """A row of the CPU-per-message table: per peer, the server's CPU µs per message (median over the runs)."""
    parts = []
    for p in peers:
        c = cell(row, p.key)
        value = (
            None
            if c is None
            else c.median(lambda s: s.server_share / s.value * 1e6 if s.server_share and s.value else None)
        )
        parts.append("-" if value is None else f"{value:.1f}")
    return f"| {row.label} | " + " | ".join(parts) + " |"


def short_row(row: Row) -> str:
    """A row's label, shorter: "text 16 B, lockstep", "binary 1 MiB, 50 conns x 16"."""
    if row.kind != "echo":
        return row.label
    kind = row.label.split()[1]
    where = "lockstep" if row.conns == 1 and row.inflight == 1 else f"{row.conns} conns x {row.inflight}"
    if row.pin_cpu is not None:
        where += ", one CPU"
    return f"{kind} {fmt_size(row.size)}, {where}"


# -- reporting -------------------------------------------------------------------------


@dataclass(frozen=True)
class LoopReport:
    """What a report of one section per event loop is made of (this benchmark's, bench/uvicorn_bench.py's)."""

    title: str  # the first line, less "# "
    script: str  # the command that makes it, e.g. "bench/run_asyncio.sh"
    notes: Callable[[Collection[str]], str]  # what the "How to read it" paragraph says of the peers run (their keys)
    ratios: tuple[tuple[str, str, str], ...]  # the ratio columns: (subject family, other family, title)
    targets: tuple[Target, ...]  # each one of the ratio columns
    family_names: Mapping[str, str]  # the peer families of the targets, by key: their names in the target lines
    # In a missed target, what these families reach against the same peer (family key, name); a loop-less peer
    # (the C server) by its key.
    references: tuple[tuple[str, str], ...]


def render_loops(
    report: LoopReport, bench: Bench, machine: str, missing: dict[str, str], quick: bool, argv: Sequence[str]
) -> str:
    """The report: targets per loop, then per loop the results with the ratio columns, round trips and CPU."""
    peers = [p for p in bench.peers if isinstance(p, LoopPeer)]
    by_key = {p.key: p for p in peers}
    loopless = {p.key for p in peers if p.loop == ""}

    def cell(row: Row, key: str) -> Cell | None:
        return bench.cells.get((row.label, key)) if key in by_key else None

    def ratio_value(row: Row, subject: str, other: str) -> float | None:
        a, b = cell(row, subject), cell(row, other)
        va = a.value if a is not None else None
        vb = b.value if b is not None else None
        return None if va is None or vb is None or vb == 0 else va / vb

    def reference_ratios(row: Row, other: str, loop: str) -> str:
        """What the references reach against the same peer in a missed cell: "; Python floor 1.41x, C 1.82x"."""
        parts = []
        for family, name in report.references:
            value = ratio_value(row, family if family in loopless else loop_key(family, loop), other)
            if value is not None:
                parts.append(f"{name} {value:.2f}x")
        return "; " + ", ".join(parts) if parts else ""

    out: list[str] = [f"# {report.title}", ""]
    out += [f"Machine: {machine}", ""]
    command = shlex.join([report.script, *argv])
    repeats = sorted({r.repeats for r in bench.rows}, reverse=True)
    out += [
        f"Command: `{command}` (medians of {' or '.join(map(str, repeats))} interleaved runs per server and row"
        + ("; a smoke run, not a measurement" if quick else "")
        + ").",
        "",
    ]
    for key, reason in missing.items():
        out += [f"**Not run: {key}** ({reason}).", ""]
    out += [
        "How to read it: one section per event loop. In each, every server runs on that loop, and the ratio "
        "columns compare like with like: ws4py on the default loop with the others on the default loop, ws4py on "
        "uvloop with the others on uvloop. A ratio divides the first server's median by the second's: above 1 is "
        "better for the first in the rows marked ↑ (msg/s, conn/s), below 1 in the rows marked ↓ (KiB/conn, s). "
        "✓ / ✗ beside a ratio: a target applies to that cell, met / missed. "
        + (
            "C echo (reference), in both sections (the same measurements): a minimal single-threaded C server, "
            "the floor of this machine, not a competitor and not in any ratio. "
            if "c" in by_key
            else ""
        )
        + report.notes(by_key)
        + "The method and every row: `bench/README.md`.",
        "",
    ]

    loops = [loop for loop in (DEFAULT_LOOP, UVLOOP) if any(p.loop == loop for p in peers)]

    # -- targets
    out += ["## Targets", ""]
    for loop in loops:
        out += [f"{LOOP_TITLES[loop]}:", ""]
        for target in report.targets:
            subject, other = loop_key(target.subject, loop), loop_key(target.other, loop)
            rows = [r for r in bench.rows if target.applies(r)]
            values = [(r, ratio_value(r, subject, other)) for r in rows]
            measured = [(r, v) for r, v in values if v is not None]
            absent = [r for r, v in values if v is None]
            line = f"- {report.family_names[target.subject]} / {report.family_names[target.other]} {target.what}: "
            if not rows:
                line += "not evaluated (none of its rows was run)."
            elif not measured:
                line += "not evaluated (no measurement of both servers)."
            else:
                missed = [(r, v) for r, v in measured if not target.met(r, v)]
                if missed:
                    line += "**MISSED** in " + ", ".join(
                        f"{short_row(r)} ({v:.2f}x{reference_ratios(r, other, loop)})" for r, v in missed
                    )
                else:
                    worst = min(measured, key=lambda rv: target.margin(rv[0], rv[1]))
                    line += f"**met** (closest: {worst[1]:.2f}x, {short_row(worst[0])})"
                if absent:
                    line += f"; not measured in {len(absent)} of its {len(rows)} rows"
                line += "."
            out.append(line)
        out.append("")

    # -- per loop: results, round trip, CPU
    lockstep = [r for r in bench.rows if r.kind == "echo" and r.inflight == 1]
    for loop in loops:
        cols = [p for p in peers if p.loop in (loop, "")]
        names = [p.name for p in cols]
        out += [f"## {LOOP_TITLES[loop]}", "", "### Results", ""]
        out += [
            "| Measurement | Unit | " + " | ".join(names) + " | " + " | ".join(t for _s, _o, t in report.ratios) + " |",
            "|---|---|" + "---:|" * (len(cols) + len(report.ratios)),
        ]
        for row in bench.rows:
            cells = [value_cell(row, cell(row, p.key)) for p in cols]
            rendered = []
            for base_s, base_o, _title in report.ratios:
                subject, other = loop_key(base_s, loop), loop_key(base_o, loop)
                text = ratio(row, cell(row, subject), cell(row, other))
                value = ratio_value(row, subject, other)
                applying = [t for t in report.targets if (t.subject, t.other) == (base_s, base_o) and t.applies(row)]
                if applying and value is not None:
                    text += " ✓" if applying[0].met(row, value) else " ✗"
                rendered.append(text)
            out.append(f"| {row.label} | {row.unit} | " + " | ".join(cells) + " | " + " | ".join(rendered) + " |")

        if lockstep:
            out += [
                "",
                "### Round trip, lockstep rows (µs, p50 / p99)",
                "",
                "Median over the runs of each run's percentiles; one connection, one message in flight.",
                "",
                "| Measurement | " + " | ".join(names) + " |",
                "|---|" + "---:|" * len(cols),
            ]
            out += [round_trip_line(row, cols, cell) for row in lockstep]

        out += [
            "",
            "### CPU during the measurement (% of one core: server / load generator)",
            "",
            "Server: utime + stime of the server process from `/proc/<pid>/stat`; load generator: its `getrusage`; "
            "both over the measured interval (echo, churn: the timed window; idle: the connection setup; broadcast: "
            'from "go" to the last delivery). A server near 100% is bound by its own speed; a load generator well '
            "below the server is not the bottleneck.",
            "",
            "| Measurement | " + " | ".join(names) + " |",
            "|---|" + "---:|" * len(cols),
        ]
        out += [cpu_line(row, cols, cell) for row in bench.rows]
        out.append("")
        pinned = [r for r in bench.rows if r.kind == "echo" and r.pin_cpu is not None]
        if pinned:
            out += [
                "### Server CPU per message, one-CPU rows (µs)",
                "",
                "The server's CPU time per echoed message (its share of the CPU over the measured interval "
                "divided by the messages per second), median over the runs.",
                "",
                "| Measurement | " + " | ".join(names) + " |",
                "|---|" + "---:|" * len(cols),
            ]
            out += [cpu_per_message_line(row, cols, cell) for row in pinned]
            out.append("")

    # -- details
    details = [r for r in bench.rows if r.kind in ("broadcast", "idle")]
    if details:
        out += [
            "## Connections and broadcast, details",
            "",
            "broadcast: messages delivered per second (connections x 100 / time) and when the first client had all "
            "100; idle: the time the load generator took to open the connections "
            f"({SETUP_CONCURRENCY} handshakes in flight).",
            "",
            "| Server | " + " | ".join(r.label for r in details) + " |",
            "|---|" + "---:|" * len(details),
        ]
        for p in peers:
            parts = []
            for row in details:
                c = cell(row, p.key)
                if c is None or c.value is None:
                    parts.append("-")
                elif row.kind == "broadcast":
                    rate = c.data_median("deliveries_per_s") or 0
                    parts.append(f"{rate:,.0f}/s, first {c.data_median('first_conn_s') or 0:.3f} s")
                else:
                    parts.append(f"opened in {c.data_median('connect_s') or 0:.2f} s")
            out.append(f"| {p.label} | " + " | ".join(parts) + " |")
        out.append("")

    out += [
        "## Listen backlogs",
        "",
        "The backlog each server passed to `listen()` (`ss -ltn`, Send-Q). No row here depends on it: every row "
        f"opens its connections {SETUP_CONCURRENCY} at a time.",
        "",
    ]
    for p in peers:
        backlog = bench.backlogs.get(p.key)
        out.append(f"- {p.label}: {'?' if backlog is None else backlog}")

    failures = failure_lines(bench, peers)
    if failures:
        out += ["", "## Failures and rows not measured", "", *failures]
    out.append("")
    return "\n".join(out)


def python_floor_note(keys: Collection[str]) -> str:
    """The "How to read it" words on this benchmark's references beyond the C server."""
    if not any(key.startswith("floor") for key in keys):
        return ""
    return (
        "Python floor (reference), in the 16 B and 1 KiB echo rows: ws4py's handshake, then every frame echoed "
        "with C parsing and framing and the two Python calls per read of a buffered protocol, nothing else; "
        "what no Python server on that loop can beat, not a competitor and not in any ratio column. "
        "A missed target shows, in brackets, what the Python floor and C reach against the same peer. "
    )


REPORT = LoopReport(
    title="asyncio servers: ws4py against websockets, aiohttp, picows and tornado",
    script="bench/run_asyncio.sh",
    notes=python_floor_note,
    ratios=RATIOS,
    targets=TARGETS,
    family_names=FAMILY_NAMES,
    references=(("floor", "Python floor"), ("c", "C")),
)


def render(bench: Bench, machine: str, missing: dict[str, str], quick: bool, argv: Sequence[str]) -> str:
    return render_loops(REPORT, bench, machine, missing, quick, argv)


# -- main ------------------------------------------------------------------------------


def versions(probed: list[tuple[Peer, str]]) -> dict[str, str]:
    """One entry per distribution (the uvloop variants share their peer's virtualenv), then uvloop's."""
    found: dict[str, str] = {}
    uvloops: dict[str, str] = {}
    for peer, version in probed:
        if peer.binary is not None:
            found[peer.label] = version
            continue
        found.setdefault(peer.dist, version)
        if peer.dist == "picows":
            fastnet = dist_version(peer, "aiofastnet")
            if fastnet is not None:
                found["aiofastnet"] = fastnet
        if isinstance(peer, LoopPeer) and peer.loop == UVLOOP and peer.venv not in uvloops:
            uvloops[peer.venv] = dist_version(peer, "uvloop") or "?"
    if uvloops:
        distinct = sorted(set(uvloops.values()))
        found["uvloop"] = (
            distinct[0]
            if len(distinct) == 1
            else " / ".join(f"{v} ({venv})" for venv, v in sorted(uvloops.items(), key=lambda kv: kv[0]))
        )
    return found


SUITE = Suite(
    description=__doc__ or "",
    tmp_prefix="ws4py-asyncio-bench-",
    peers=PEERS,
    default_peers=DEFAULT_PEERS,
    default_output=DEFAULT_OUTPUT,
    default_repeats=3,
    heavy_repeats=2,
    make_rows=make_rows,
    render=render,
    versions=versions,
    label_width=26,
)


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(SUITE, argv)


if __name__ == "__main__":
    sys.exit(main())
