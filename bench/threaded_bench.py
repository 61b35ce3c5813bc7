"""Threaded-server benchmark: ws4py's wsgiref server against ws4py 0.6.0 and websockets, over real sockets.

Four WebSocket servers, side by side in one run, each in its own virtualenv and
process, driven over 127.0.0.1 by a load generator written in C
(``bench/loadgen``):

1. ws4py (this repository): the wsgiref server + ``WebSocketManager`` snippet;
2. the original ws4py 0.6.0 from PyPI, the same snippet;
3. websockets (latest), ``websockets.asyncio.server.serve``;
4. websockets (latest), ``websockets.sync.server.serve`` (a thread per connection);

and, as a reference floor, a minimal echo server in C (``bench/servers/c_echo.c``,
no virtualenv), the same machine in the same run.

Rows: echo throughput (1 or 50 connections, 1 or 16 messages in flight,
16 B to 1 MiB, text and binary) with the lockstep round trip; memory per idle
connection; the time for 2,000 clients to connect and the handshake rate;
broadcast to 1,000 and 5,000 clients. Run it through ``bench/run_threaded.sh``,
which makes the virtualenvs and builds the load generator; ``bench/README.md``
explains every row. ``--quick`` is a smoke run: every row, tiny durations and
counts, one repeat, nothing written.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

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
    connect_row,
    cpu_line,
    echo_row,
    failure_lines,
    idle_row,
    pinned_lockstep_rows,
    ratio,
    round_trip_line,
    run_main,
    value_cell,
)

DEFAULT_OUTPUT = BENCH_DIR / "results" / "threaded.md"


# -- peers -----------------------------------------------------------------------------

WS = "websockets"
PEERS = (
    Peer("ws4py", "ws4py", "threaded", "ws4py_threaded.py", "ws4py.server.wsgirefserver", "ws4py"),
    Peer("orig", "ws4py 0.6.0", "ws4py-orig", "ws4py_orig.py", "ws4py.server.wsgirefserver", "ws4py"),
    Peer("asyncio", "websockets asyncio", "websockets", "websockets_asyncio.py", "websockets.asyncio.server", WS),
    # websockets.sync: 3 threads and 4 descriptors per connection (its socket, and a selector per reading thread)
    Peer("sync", "websockets threaded", "websockets", "websockets_sync.py", "websockets.sync.server", WS, 4),
    # the floor: a minimal single-threaded epoll echo server in C, for reference only (no ratio column)
    Peer("c", "C echo (reference)", binary=C_ECHO),
)
PEER_KEYS = [p.key for p in PEERS]


# -- rows ------------------------------------------------------------------------------


def echo_rows(quick: bool, repeats: int) -> list[Row]:
    rows = []
    grid: list[tuple[int, int, tuple[bool, ...], tuple[int, ...]]] = [
        (1, 1, (True, False), (16, KIB, 64 * KIB, MIB)),
        (1, 16, (True, False), (16, KIB, 64 * KIB, MIB)),
        (50, 1, (False,), (16, KIB, 64 * KIB, MIB)),
        (50, 16, (False,), (16, KIB, 64 * KIB)),  # 50 x 16 x 1 MiB would be 800 MiB in flight
    ]
    for conns, inflight, kinds, sizes in grid:
        for size in sizes:
            for text in kinds:
                warmup, duration = (0.05, 0.15) if quick else ((0.5, 2.0) if size >= MIB else (0.3, 1.0))
                drain = 3.0 if quick else 5.0
                rows.append(echo_row(conns, inflight, size, text, warmup, duration, drain, repeats))
    return rows + pinned_lockstep_rows(quick, repeats)


def heavy_rows(quick: bool, repeats: int) -> list[Row]:
    def n(full: int, small: int) -> int:
        return small if quick else full

    rows = [idle_row(conns, n(120, 30), repeats) for conns in (n(5000, 200), n(10000, 400))]
    rows.append(connect_row(n(2000, 200), 200, n(30, 10), repeats))
    rows.append(churn_row(0.1 if quick else 0.5, 0.3 if quick else 2.0, repeats))
    rows += [broadcast_row(conns, 0.3 if quick else 1.0, n(60, 20), repeats) for conns in (n(1000, 100), n(5000, 300))]
    return rows


def make_rows(quick: bool, echo_repeats: int, heavy_repeats: int) -> list[Row]:
    return echo_rows(quick, echo_repeats) + heavy_rows(quick, heavy_repeats)


# -- reporting -------------------------------------------------------------------------


def render(bench: Bench, machine: str, missing: dict[str, str], quick: bool, argv: Sequence[str]) -> str:
    peers = bench.peers
    by_key = {p.key: p for p in peers}
    out: list[str] = ["# Threaded servers: ws4py against ws4py 0.6.0 and websockets", ""]
    out += [f"Machine: {machine}", ""]
    command = " ".join(["bench/run_threaded.sh", *argv])
    repeats = sorted({r.repeats for r in bench.rows}, reverse=True)
    out += [
        f"Command: `{command}` (medians of {' or '.join(map(str, repeats))} interleaved runs per server and row"
        + ("; a smoke run, not a measurement" if quick else "")
        + ").",
        "",
    ]
    for key, reason in missing.items():
        out += [f"**Not run: {key}** ({reason}).", ""]

    def cell(row: Row, key: str) -> Cell | None:
        return bench.cells.get((row.label, key)) if key in by_key else None

    cols = [p.label for p in peers]
    out += [
        "## Results",
        "",
        "Medians. ↑: higher is better, ↓: lower is better. The ratios divide ws4py's median by the other's. "
        + (
            "C echo (reference): a minimal C server, the floor of this machine, not a competitor. "
            if "c" in by_key
            else ""
        )
        + "The method and every row: `bench/README.md`.",
        "",
        "| Measurement | Unit | " + " | ".join(cols) + " | ws4py / websockets asyncio | ws4py / ws4py 0.6.0 |",
        "|---|---|" + "---:|" * (len(cols) + 2),
    ]
    for row in bench.rows:
        values = [value_cell(row, cell(row, p.key)) for p in peers]
        out.append(
            f"| {row.label} | {row.unit} | "
            + " | ".join(values)
            + f" | {ratio(row, cell(row, 'ws4py'), cell(row, 'asyncio'))}"
            + f" | {ratio(row, cell(row, 'ws4py'), cell(row, 'orig'))} |"
        )

    lockstep = [r for r in bench.rows if r.kind == "echo" and r.inflight == 1]
    out += [
        "",
        "## Round trip, lockstep rows (µs, p50 / p99)",
        "",
        "Median over the runs of each run's percentiles; one message in flight per connection.",
        "",
        "| Measurement | " + " | ".join(cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    out += [round_trip_line(row, peers, cell) for row in lockstep]

    details = [r for r in bench.rows if r.kind in ("connect", "broadcast", "idle")]
    out += [
        "",
        "## Connections and broadcast, details",
        "",
        "connect: handshakes/s over the whole run, and the p99 / max time of one handshake (from `connect()` to the "
        "101); broadcast: messages delivered per second (connections x 100 / time) and when the first client had "
        "all 100; idle: the time the load generator took to open the connections "
        f"({SETUP_CONCURRENCY} handshakes in flight).",
        "",
        "| Measurement | " + " | ".join(cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    for row in details:
        parts = []
        for p in peers:
            c = cell(row, p.key)
            if c is None or c.value is None:
                parts.append("-")
            elif row.kind == "connect":
                p99_ms = (c.data_median("p99_us") or 0) / 1000
                max_ms = (c.data_median("max_us") or 0) / 1000
                rate = c.data_median("handshakes_per_s") or 0
                parts.append(f"{rate:,.0f}/s, p99 {p99_ms:,.0f} ms, max {max_ms:,.0f} ms")
            elif row.kind == "broadcast":
                parts.append(
                    f"{c.data_median('deliveries_per_s') or 0:,.0f}/s, first {c.data_median('first_conn_s') or 0:.3f} s"
                )
            else:
                parts.append(f"opened in {c.data_median('connect_s') or 0:.2f} s")
        out.append(f"| {row.label} | " + " | ".join(parts) + " |")

    out += [
        "",
        "## CPU during the measurement (% of one core: server / load generator)",
        "",
        "Server: utime + stime of the server process (all threads) from `/proc/<pid>/stat`; load generator: its "
        "`getrusage`; both over the measured interval (echo, churn: the timed window; idle, connect: the "
        'connection setup; broadcast: from "go" to the last delivery). 2 cores make 200%.',
        "",
        "| Measurement | " + " | ".join(cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]
    out += [cpu_line(row, peers, cell) for row in bench.rows]

    out += ["", "## Listen backlogs", ""]
    out += [
        "The backlog each server passed to `listen()` (`ss -ltn`, Send-Q): handshakes beyond it wait for a SYN "
        "retransmission (1 s, then 3 s, 7 s, ...), which the connect row shows.",
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


def versions(probed: list[tuple[Peer, str]]) -> dict[str, str]:
    return {(peer.label if peer.key != "orig" else "ws4py (original)"): version for peer, version in probed}


SUITE = Suite(
    description=__doc__ or "",
    tmp_prefix="ws4py-threaded-bench-",
    peers=PEERS,
    default_peers=PEER_KEYS,
    default_output=DEFAULT_OUTPUT,
    default_repeats=5,
    heavy_repeats=3,
    make_rows=make_rows,
    render=render,
    versions=versions,
)


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(SUITE, argv)


if __name__ == "__main__":
    sys.exit(main())
