"""Integrations benchmark: ws4py's CherryPy and gevent servers against ws4py 0.6.0's and websockets asyncio.

Five WebSocket servers, side by side in one run, each in its own virtualenv
and process, driven over 127.0.0.1 by the load generator of the threaded
benchmark (``bench/loadgen``), on the same machinery (``bench/harness.py``):

1. ws4py (this repository) inside CherryPy: the Server page's snippet
   (``WebSocketPlugin`` + ``WebSocketTool``), ``bench/servers/ws4py_cherrypy.py``;
2. the original ws4py 0.6.0 from PyPI, the same file, on the same CherryPy and cheroot;
3. ws4py on gevent: ``geventserver.WSGIServer`` + ``WebSocketWSGIApplication``
   after ``monkey.patch_all()``, ``bench/servers/ws4py_gevent.py``;
4. ws4py 0.6.0, the same file, on the same gevent;
5. websockets (latest), ``websockets.asyncio.server.serve``;

and, as references, the gevent floor (``bench/servers/gevent_floor.py``: ws4py's handshake,
then C parsing and framing per read and nothing else, in the 16 B and 1 KiB echo rows)
and the minimal C echo server (``bench/servers/c_echo.c``).

Rows: echo messages/s (16 B, 1 KiB, 64 KiB; one connection in lockstep, also
with server and load generator on one CPU, and 50 connections x 16 in flight),
memory per idle connection at 5,000 connections, broadcast of 100 x 64 B to
1,000 clients, handshakes/s. The report gives ws4py / ws4py 0.6.0 per
integration and ws4py gevent / websockets asyncio, with issue 17's targets
met or missed. Run it through ``bench/run_integrations.sh``, which makes the
virtualenvs and builds the load generator; ``bench/README.md`` explains it.
``--quick`` is a smoke run: every row, tiny durations and counts, one
repeat, nothing written.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness import (
    BENCH_DIR,
    C_ECHO,
    KIB,
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
    pinned_lockstep_rows,
    ratio,
    round_trip_line,
    run_main,
    value_cell,
)

DEFAULT_OUTPUT = BENCH_DIR / "results" / "integrations.md"

# -- peers -----------------------------------------------------------------------------

OURS = "integrations"  # bench/.venvs/integrations: this repository, editable, with CherryPy and gevent
ORIG = "orig-integrations"  # bench/.venvs/orig-integrations: ws4py 0.6.0 with the same CherryPy, cheroot, gevent
CHERRYPY = "ws4py.server.cherrypyserver, cherrypy"
GEVENT = "ws4py.server.geventserver, gevent"
WS = "websockets"
PEERS = (
    Peer("cherrypy", "ws4py CherryPy", OURS, "ws4py_cherrypy.py", CHERRYPY, "ws4py", path="/ws"),
    Peer("orig-cherrypy", "ws4py 0.6.0 CherryPy", ORIG, "ws4py_cherrypy.py", CHERRYPY, "ws4py", path="/ws"),
    Peer("gevent", "ws4py gevent", OURS, "ws4py_gevent.py", GEVENT, "ws4py"),
    Peer("orig-gevent", "ws4py 0.6.0 gevent", ORIG, "ws4py_gevent.py", GEVENT, "ws4py"),
    # What busy polling buys (and costs, in the CPU table): ws4py with it off, in the 16 B and 1 KiB echo rows.
    Peer(
        "cherrypy-nobusy",
        "ws4py CherryPy, busy_poll 0 (reference)",
        OURS,
        "ws4py_cherrypy.py",
        CHERRYPY,
        "ws4py",
        path="/ws",
        extra_args=("--busy-poll", "0"),
        max_echo_size=KIB,
    ),
    Peer(
        "gevent-nobusy",
        "ws4py gevent, busy_poll 0 (reference)",
        OURS,
        "ws4py_gevent.py",
        GEVENT,
        "ws4py",
        extra_args=("--busy-poll", "0"),
        max_echo_size=KIB,
    ),
    Peer("asyncio", "websockets asyncio", WS, "websockets_asyncio.py", "websockets.asyncio.server", WS),
    # Not a competitor: the least any gevent server written in Python spends per small message (gevent_floor.py).
    Peer(
        "gevent-floor", "gevent floor (reference)", OURS, "gevent_floor.py", "ws4py, gevent", "ws4py", max_echo_size=KIB
    ),
    # The same floor on plain threads (thread_floor.py): the reference of the CherryPy targets.
    Peer("thread-floor", "thread floor (reference)", OURS, "thread_floor.py", "ws4py", "ws4py", max_echo_size=KIB),
    # The least the manager's design (one epoll thread, CherryPy's websockets run on it) spends (epoll_floor.py).
    Peer("epoll-floor", "epoll floor (reference)", OURS, "epoll_floor.py", "ws4py", "ws4py", max_echo_size=KIB),
    # The least any WebSocket server inside CherryPy spends per handshake and close (cherrypy_floor.py).
    Peer(
        "cherrypy-floor",
        "CherryPy floor (reference)",
        OURS,
        "cherrypy_floor.py",
        CHERRYPY,
        "ws4py",
        path="/ws",
        only_kind="churn",
    ),
    Peer("c", "C echo (reference)", binary=C_ECHO),
)
PEER_KEYS = [p.key for p in PEERS]

# -- rows ------------------------------------------------------------------------------

SIZES = (16, KIB, 64 * KIB)
IDLE_CONNS = 5_000
BROADCAST_CONNS = 1_000


def echo_rows(quick: bool, repeats: int) -> list[Row]:
    rows = []
    for conns, inflight, kinds in ((1, 1, (True, False)), (50, 16, (False,))):
        for size in SIZES:
            for text in kinds:
                warmup, duration = (0.05, 0.15) if quick else (0.3, 1.0)
                # 50 x 16 x 64 KiB = 50 MiB in flight: ws4py 0.6.0 echoes about 250 of them a second
                drain = 3.0 if quick else 5.0
                rows.append(echo_row(conns, inflight, size, text, warmup, duration, drain, repeats))
    # lockstep with both sides on one CPU: the servers' own work, without the cross-CPU wake-up (see the README)
    return rows + pinned_lockstep_rows(quick, repeats)


def heavy_rows(quick: bool, repeats: int) -> list[Row]:
    return [
        idle_row(300 if quick else IDLE_CONNS, 30 if quick else 120, repeats),
        broadcast_row(100 if quick else BROADCAST_CONNS, 0.3 if quick else 1.0, 20 if quick else 60, repeats),
    ]


def make_rows(quick: bool, echo_repeats: int, heavy_repeats: int) -> list[Row]:
    # The handshake row is as cheap as an echo row (a few seconds a run): it takes --repeats whole.
    churn = churn_row(0.1 if quick else 0.5, 0.3 if quick else 2.0, echo_repeats)
    return echo_rows(quick, echo_repeats) + heavy_rows(quick, heavy_repeats) + [churn]


# -- targets (issue 17) ------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """``subject`` / ``other`` (peer keys) on the rows ``applies`` picks: at least ``bound`` (↑ rows), at most
    ``bound`` (↓ rows)."""

    subject: str
    other: str
    applies: Callable[[Row], bool]
    bound: float
    what: str

    def met(self, row: Row, value: float) -> bool:
        return value >= self.bound if row.higher_is_better else value <= self.bound

    def margin(self, row: Row, value: float) -> float:
        return value / self.bound if row.higher_is_better else self.bound / value if value else float("inf")


def _echo_at_least_1kib(row: Row) -> bool:
    return row.kind == "echo" and row.size >= KIB


def _echo_16b(row: Row) -> bool:
    return row.kind == "echo" and row.size < KIB


def _fifty(row: Row) -> bool:
    return row.kind == "echo" and row.conns == 50


def _integration_targets(ours: str, orig: str) -> tuple[Target, ...]:
    return (
        Target(ours, orig, _echo_at_least_1kib, 3.0, "≥ 3x in every echo row of 1 KiB and up"),
        Target(ours, orig, _echo_16b, 1.5, "≥ 1.5x in every 16 B echo row"),
        Target(ours, orig, lambda r: r.kind == "idle", 1.0, "≤ 1x in memory per idle connection"),
        Target(ours, orig, lambda r: r.kind == "broadcast", 0.5, "≤ 0.5x in broadcast time"),
        Target(ours, orig, lambda r: r.kind == "churn", 1.0, "≥ 1x in handshakes/s"),
    )


TARGETS = (
    *_integration_targets("cherrypy", "orig-cherrypy"),
    *_integration_targets("gevent", "orig-gevent"),
    Target("gevent", "asyncio", _fifty, 1.0, "≥ 1x in the 50-connection echo rows"),
)
# The ratio columns: (subject, other, title); every target is one of them.
RATIOS = (
    ("cherrypy", "orig-cherrypy", "CherryPy: ws4py / 0.6.0"),
    ("gevent", "orig-gevent", "gevent: ws4py / 0.6.0"),
    ("gevent", "asyncio", "ws4py gevent / websockets asyncio"),
    ("gevent-floor", "orig-gevent", "gevent floor / 0.6.0"),
    ("thread-floor", "orig-cherrypy", "thread floor / 0.6.0 CherryPy"),
    ("epoll-floor", "orig-cherrypy", "epoll floor / 0.6.0 CherryPy"),
    ("cherrypy-floor", "orig-cherrypy", "CherryPy floor / 0.6.0"),
    ("cherrypy-nobusy", "orig-cherrypy", "CherryPy: ws4py busy_poll 0 / 0.6.0"),
    ("gevent-nobusy", "orig-gevent", "gevent: ws4py busy_poll 0 / 0.6.0"),
)
#: The Python floor of each subject's targets: what no server of its kind written in Python beats.
FLOORS = {"gevent": ("gevent-floor", "gevent floor"), "cherrypy": ("epoll-floor", "epoll floor")}


def short_row(row: Row) -> str:
    """A row's label, shorter: "text 16 B, lockstep", "binary 64 KiB, 50 conns x 16"."""
    if row.kind != "echo":
        return row.label
    kind = row.label.split()[1]
    where = "lockstep" if row.conns == 1 and row.inflight == 1 else f"{row.conns} conns x {row.inflight}"
    if row.pin_cpu is not None:
        where += ", one CPU"
    return f"{kind} {fmt_size(row.size)}, {where}"


# -- reporting -------------------------------------------------------------------------


def render(bench: Bench, machine: str, missing: dict[str, str], quick: bool, argv: Sequence[str]) -> str:
    peers = bench.peers
    by_key = {p.key: p for p in peers}
    labels = {p.key: p.label for p in PEERS}

    def cell(row: Row, key: str) -> Cell | None:
        return bench.cells.get((row.label, key)) if key in by_key else None

    def ratio_value(row: Row, subject: str, other: str) -> float | None:
        a, b = cell(row, subject), cell(row, other)
        va = a.value if a is not None else None
        vb = b.value if b is not None else None
        return None if va is None or vb is None or vb == 0 else va / vb

    def floor(row: Row, subject: str, other: str) -> str:
        """In a missed echo cell: what the references reach against the same peer ("; gevent floor 1.31x, C 1.21x");
        the gevent floor only where the subject runs on gevent (a target it misses too is out of any gevent
        server's reach)."""
        if row.kind != "echo":
            return ""
        parts = []
        for key, name in (*([FLOORS[subject]] if subject in FLOORS else []), ("c", "C")):
            value = ratio_value(row, key, other)
            if value is not None:
                parts.append(f"{name} {value:.2f}x")
        return "; " + ", ".join(parts) if parts else ""

    def out_of_reach(target: Target, row: Row) -> bool:
        """A target its Python floor misses too: no server of its kind written in Python can meet it."""
        floor_key = FLOORS.get(target.subject, ("",))[0]
        value = ratio_value(row, floor_key, target.other) if floor_key else None
        return value is not None and not target.met(row, value)

    out: list[str] = ["# Integrations: ws4py's CherryPy and gevent servers against ws4py 0.6.0 and websockets", ""]
    out += [f"Machine: {machine}", ""]
    command = shlex.join(["bench/run_integrations.sh", *argv])
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
        "How to read it: ws4py and ws4py 0.6.0 run the same server file (the Server page's snippet) on the same "
        "CherryPy, cheroot and gevent, each from its own virtualenv. A ratio divides the first server's median by "
        "the second's: above 1 is better for the first in the rows marked ↑ (msg/s, conn/s), below 1 in the rows "
        "marked ↓ (KiB/conn, s). ✓ / ✗ beside a ratio: a target of issue 17 applies to that cell, met / missed. "
        + (
            "C echo (reference): a minimal single-threaded C server, the floor of this machine, not a competitor; "
            "a missed echo target shows what it reaches against the same peer (in the lockstep rows, a round trip "
            "is mostly the two wake-ups of a sleeping thread, the server's and the load generator's). "
            if "c" in by_key
            else ""
        )
        + (
            "gevent floor (reference), in the 16 B and 1 KiB echo rows: monkey-patched gevent, ws4py's handshake, "
            "then per read `recv_into` (a gevent read: it tries the socket first and sleeps in the hub only when "
            "there is nothing), C parsing and framing and one `sendall`, nothing else; what no gevent server written "
            "in Python that sleeps between reads can beat, not a "
            'competitor. Its column "gevent floor / 0.6.0" says which gevent targets are within reach of that design: '
            "a missed gevent target the floor misses too is marked *out of reach in Python*. "
            if "gevent-floor" in by_key
            else ""
        )
        + (
            "epoll floor (reference), in the same rows: the same per-read work in one thread with an epoll poller "
            "and non-blocking sockets, the design of ws4py's manager that CherryPy's websockets run on, sleeping "
            "in the poller between reads: the least any Python server of that design spends; its column says which "
            "CherryPy targets are within reach, the same way. "
            if "epoll-floor" in by_key
            else ""
        )
        + (
            "CherryPy floor (reference), in the handshake row only: the same CherryPy and cheroot, the connection "
            "taken over from cheroot as ws4py takes it, a page handler that answers 101 and checks nothing, then "
            "one epoll thread that answers the close frame and closes the socket: no WebSocket object, manager, "
            "callbacks or wake-up. What no WebSocket library inside CherryPy can beat; its column says how far "
            "above ws4py 0.6.0 any can go. "
            if "cherrypy-floor" in by_key
            else ""
        )
        + (
            "thread floor (reference): the same per-read work on a plain thread per connection (a blocking "
            "`recv_into` wakes it): what a thread per connection, which the manager's design rules out, would "
            "reach. "
            if "thread-floor" in by_key
            else ""
        )
        + (
            "ws4py ..., busy_poll 0 (reference), in the same rows: ws4py's server with busy polling off (its "
            "loops sleep in the poller right after a read, as the floors do; by default they poll for 100 µs "
            "first, which saves the server's wake-up in a conversation): what busy polling buys, and, in the "
            "CPU table, what it costs. "
            if "cherrypy-nobusy" in by_key or "gevent-nobusy" in by_key
            else ""
        )
        + "The method and every row: `bench/README.md`.",
        "",
        "## Targets",
        "",
    ]
    for target in TARGETS:
        rows = [r for r in bench.rows if target.applies(r)]
        values = [(r, ratio_value(r, target.subject, target.other)) for r in rows]
        measured = [(r, v) for r, v in values if v is not None]
        absent = [r for r, v in values if v is None]
        line = f"- {labels[target.subject]} / {labels[target.other]} {target.what}: "
        if not rows:
            line += "not evaluated (none of its rows was run)."
        elif not measured:
            line += "not evaluated (no measurement of both servers)."
        else:
            missed = [(r, v) for r, v in measured if not target.met(r, v)]
            if missed:
                line += "**MISSED** in " + ", ".join(
                    f"{short_row(r)} ({v:.2f}x{floor(r, target.subject, target.other)}"
                    + (
                        f"; out of reach in Python: the {FLOORS[target.subject][1]} misses it too"
                        if out_of_reach(target, r)
                        else ""
                    )
                    + ")"
                    for r, v in missed
                )
            else:
                worst = min(measured, key=lambda rv: target.margin(rv[0], rv[1]))
                line += f"**met** (closest: {worst[1]:.2f}x, {short_row(worst[0])})"
            if absent:
                line += f"; not measured in {len(absent)} of its {len(rows)} rows"
            line += "."
        out.append(line)

    names = [p.label for p in peers]
    out += [
        "",
        "## Results",
        "",
        "Medians. ↑: higher is better, ↓: lower is better. Handshakes/s is the handshake + close row.",
        "",
        "| Measurement | Unit | " + " | ".join(names) + " | " + " | ".join(t for _s, _o, t in RATIOS) + " |",
        "|---|---|" + "---:|" * (len(peers) + len(RATIOS)),
    ]
    for row in bench.rows:
        cells = [value_cell(row, cell(row, p.key)) for p in peers]
        rendered = []
        for subject, other, _title in RATIOS:
            text = ratio(row, cell(row, subject), cell(row, other))
            value = ratio_value(row, subject, other)
            applying = [t for t in TARGETS if (t.subject, t.other) == (subject, other) and t.applies(row)]
            if applying and value is not None:
                text += " ✓" if applying[0].met(row, value) else " ✗"
            rendered.append(text)
        out.append(f"| {row.label} | {row.unit} | " + " | ".join(cells) + " | " + " | ".join(rendered) + " |")

    lockstep = [r for r in bench.rows if r.kind == "echo" and r.inflight == 1]
    if lockstep:
        out += [
            "",
            "## Round trip, lockstep rows (µs, p50 / p99)",
            "",
            "Median over the runs of each run's percentiles; one connection, one message in flight.",
            "",
            "| Measurement | " + " | ".join(names) + " |",
            "|---|" + "---:|" * len(peers),
        ]
        out += [round_trip_line(row, peers, cell) for row in lockstep]

    out += [
        "",
        "## CPU during the measurement (% of one core: server / load generator)",
        "",
        "Server: utime + stime of the server process (all threads) from `/proc/<pid>/stat`; load generator: its "
        "`getrusage`; both over the measured interval (echo, churn: the timed window; idle: the connection setup; "
        'broadcast: from "go" to the last delivery). A server near 100% is bound by its own speed (a gevent '
        "server runs on one thread).",
        "",
        "| Measurement | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(peers),
    ]
    out += [cpu_line(row, peers, cell) for row in bench.rows]

    details = [r for r in bench.rows if r.kind in ("broadcast", "idle")]
    if details:
        out += [
            "",
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

    out += [
        "",
        "## Listen backlogs",
        "",
        "The backlog each server passed to `listen()` (`ss -ltn`, Send-Q; CherryPy's `server.socket_queue_size` "
        f"defaults to 5). No row here depends on it: every row opens its connections {SETUP_CONCURRENCY} at a time.",
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


# -- main ------------------------------------------------------------------------------

FRAMEWORKS = ("CherryPy", "cheroot", "gevent")


def versions(probed: list[tuple[Peer, str]]) -> dict[str, str]:
    """ws4py's two versions, each with the frameworks of its virtualenv, then websockets and the C compiler."""
    found: dict[str, str] = {}
    for peer, version in probed:
        if peer.binary is not None:
            found[peer.label] = version
        elif peer.venv in (OURS, ORIG):
            name = "ws4py" if peer.venv == OURS else "ws4py (original)"
            if name not in found:
                frameworks = ", ".join(f"{d} {dist_version(peer, d) or '?'}" for d in FRAMEWORKS)
                found[name] = f"{version} (with {frameworks})"
        else:
            found[peer.label] = version
    return found


SUITE = Suite(
    description=__doc__ or "",
    tmp_prefix="ws4py-integrations-bench-",
    peers=PEERS,
    default_peers=PEER_KEYS,
    default_output=DEFAULT_OUTPUT,
    default_repeats=3,
    heavy_repeats=3,
    make_rows=make_rows,
    render=render,
    versions=versions,
    label_width=22,
)


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(SUITE, argv)


if __name__ == "__main__":
    sys.exit(main())
