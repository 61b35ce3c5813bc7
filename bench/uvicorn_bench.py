"""uvicorn benchmark: ws4py as uvicorn's WebSocket implementation against uvicorn's own, on both loops.

uvicorn serving the same minimal ASGI application (``bench/servers/asgi_echo.py``:
echo, or broadcast) with each of three WebSocket implementations, side by side
in one run, driven over 127.0.0.1 by the load generator written in C
(``bench/loadgen``), each on the default asyncio loop and on uvloop:

1. ``--ws ws4py.server.uvicorn:WebSocketProtocol`` (this repository);
2. ``--ws websockets-sansio`` (uvicorn's default since 0.50, on websockets' sans-I/O core);
3. ``--ws wsproto``;

and, as references, ``ws4py.asyncio.serve`` alone (``bench/servers/ws4py_asyncio.py``:
what uvicorn's HTTP layer and the ASGI mapping cost ws4py) and the minimal echo
server in C (``bench/servers/c_echo.c``), the floor of the machine.

Rows: echo messages/s at 16 B, 1 KiB and 64 KiB, text and binary, for 1
connection in lockstep (with the round trip p50/p99, also with server and
load generator on one CPU) and for 50 connections each keeping 16 messages in
flight; memory per idle connection at 5,000 connections; broadcast of 100
messages of 64 B to 1,000 clients; handshakes/s. The report has one table per
event loop, whose ratio columns compare like with like, and checks issue 18's
targets. Run it through ``bench/run_uvicorn.sh``, which makes the virtualenv
and builds the load generator; ``bench/README.md`` explains every row.
``--quick`` is a smoke run: every row, tiny durations and counts, one repeat,
nothing written.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Sequence

from asyncio_bench import DEFAULT_LOOP, UVLOOP, LoopPeer, LoopReport, Target, loop_key, render_loops
from harness import (
    BENCH_DIR,
    C_ECHO,
    KIB,
    Bench,
    Peer,
    Row,
    Suite,
    broadcast_row,
    churn_row,
    dist_version,
    echo_row,
    idle_row,
    pinned_lockstep_rows,
    run_main,
)

DEFAULT_OUTPUT = BENCH_DIR / "results" / "uvicorn.md"

# -- peers -----------------------------------------------------------------------------

VENV = "uvicorn"  # bench/.venvs/uvicorn: this repository (editable, extra uvicorn), websockets, wsproto, uvloop


def on_both_loops(
    key: str, name: str, script: str, probe: str, dist: str, args: tuple[str, ...] = ()
) -> tuple[LoopPeer, LoopPeer]:
    """The peer on the default asyncio loop, and on uvloop (``--uvloop``)."""
    return (
        LoopPeer(key, name, VENV, script, probe, dist, extra_args=args, loop=DEFAULT_LOOP, name=name),
        LoopPeer(
            loop_key(key, UVLOOP),
            f"{name} + uvloop",
            VENV,
            script,
            f"{probe}, uvloop",
            dist,
            extra_args=(*args, "--uvloop"),
            loop=UVLOOP,
            name=name,
        ),
    )


def uvicorn_peers(key: str, name: str, ws: str, module: str) -> tuple[LoopPeer, LoopPeer]:
    """uvicorn serving asgi_echo.py with ``--ws ws``; ``module`` is the implementation's, which must import."""
    return on_both_loops(key, name, "asgi_echo.py", f"uvicorn, {module}", "uvicorn", ("--ws", ws))


WS4PY, WS4PY_UV = uvicorn_peers(
    "ws4py", "uvicorn + ws4py", "ws4py.server.uvicorn:WebSocketProtocol", "ws4py.server.uvicorn"
)
SANSIO, SANSIO_UV = uvicorn_peers(
    "sansio",
    "uvicorn + websockets-sansio",
    "websockets-sansio",
    "uvicorn.protocols.websockets.websockets_sansio_impl",
)
WSPROTO, WSPROTO_UV = uvicorn_peers(
    "wsproto", "uvicorn + wsproto", "wsproto", "uvicorn.protocols.websockets.wsproto_impl"
)
# Not a competitor: ws4py without uvicorn, what its HTTP layer and the ASGI mapping cost.
ASYNCIO, ASYNCIO_UV = on_both_loops(
    "asyncio", "ws4py.asyncio.serve (reference)", "ws4py_asyncio.py", "ws4py.asyncio", "ws4py"
)
C_PEER = LoopPeer("c", "C echo (reference)", binary=C_ECHO, loop="", name="C echo (reference)")

# The order of the columns, and the order in which the servers take turns in every repeat.
PEERS: tuple[LoopPeer, ...] = (WS4PY, SANSIO, WSPROTO, ASYNCIO, WS4PY_UV, SANSIO_UV, WSPROTO_UV, ASYNCIO_UV, C_PEER)
PEER_KEYS = [p.key for p in PEERS]

# -- rows ------------------------------------------------------------------------------

SIZES = (16, KIB, 64 * KIB)
IDLE_CONNS = 5_000
BROADCAST_CONNS = 1_000


def echo_rows(quick: bool, repeats: int) -> list[Row]:
    warmup, duration = (0.05, 0.15) if quick else (0.3, 1.0)
    drain = 3.0 if quick else 5.0  # 50 x 16 x 64 KiB = 50 MiB in flight when the window closes
    rows = [
        echo_row(conns, inflight, size, text, warmup, duration, drain, repeats)
        for conns, inflight in ((1, 1), (50, 16))
        for size in SIZES
        for text in (True, False)
    ]
    # lockstep with both sides on one CPU: the servers' own work, without the cross-CPU wake-up (see the README)
    return rows + pinned_lockstep_rows(quick, repeats)


def heavy_rows(quick: bool, repeats: int) -> list[Row]:
    return [
        idle_row(300 if quick else IDLE_CONNS, 30 if quick else 120, repeats),
        broadcast_row(100 if quick else BROADCAST_CONNS, 0.3 if quick else 1.0, 20 if quick else 60, repeats),
        churn_row(0.1 if quick else 0.5, 0.3 if quick else 2.0, repeats),
    ]


def make_rows(quick: bool, echo_repeats: int, heavy_repeats: int) -> list[Row]:
    return echo_rows(quick, echo_repeats) + heavy_rows(quick, heavy_repeats)


# -- targets (issue 18) ----------------------------------------------------------------


def _fifty_small(row: Row) -> bool:
    """The 50-connection echo rows at 16 B and 1 KiB: the rows of the 1.5x and 3x targets."""
    return row.kind == "echo" and row.conns == 50 and row.size <= KIB


def _idle(row: Row) -> bool:
    return row.kind == "idle"


def _every_other(row: Row) -> bool:
    return not _fifty_small(row) and not _idle(row)


def _targets(other: str, small_bound: float) -> tuple[Target, ...]:
    return (
        Target(
            "ws4py",
            other,
            _fifty_small,
            small_bound,
            f"≥ {small_bound:g}x in the 50-connection 16 B and 1 KiB echo rows",
        ),
        Target("ws4py", other, _every_other, 1.0, "≥ 1x in every other row (≤ 1x in the ↓ rows: at least on par)"),
        Target("ws4py", other, _idle, 1.0, "< 1x in memory per idle connection (less)", strict=True),
    )


TARGETS = (*_targets("sansio", 1.5), *_targets("wsproto", 3.0))
# The ratio columns: subject / other, within one loop; the targets are in the first two.
RATIOS = (
    ("ws4py", "sansio", "ws4py / websockets-sansio"),
    ("ws4py", "wsproto", "ws4py / wsproto"),
    ("ws4py", "asyncio", "uvicorn + ws4py / ws4py.asyncio.serve"),
)
FAMILY_NAMES = {p.key: p.name for p in (WS4PY, SANSIO, WSPROTO, ASYNCIO)}


# -- reporting -------------------------------------------------------------------------


def notes(keys: Collection[str]) -> str:
    """The "How to read it" words on this benchmark's servers."""
    text = (
        "Every uvicorn column is the same process setup serving the same ASGI application "
        "(`bench/servers/asgi_echo.py`), only `--ws` differs; uvicorn parses HTTP with httptools in all of them. "
    )
    if any(key.startswith("asyncio") for key in keys):
        text += (
            "ws4py.asyncio.serve (reference): ws4py's own server, with no uvicorn and no ASGI in between, on the "
            "same loop; the last ratio column is what uvicorn's HTTP layer and the ASGI mapping leave of it. "
            "A missed target shows, in brackets, what ws4py.asyncio.serve and C reach against the same peer. "
        )
    return text


REPORT = LoopReport(
    title="uvicorn: ws4py as its WebSocket implementation against websockets-sansio and wsproto",
    script="bench/run_uvicorn.sh",
    notes=notes,
    ratios=RATIOS,
    targets=TARGETS,
    family_names=FAMILY_NAMES,
    references=(("asyncio", "ws4py.asyncio.serve"), ("c", "C")),
)


def render(bench: Bench, machine: str, missing: dict[str, str], quick: bool, argv: Sequence[str]) -> str:
    return render_loops(REPORT, bench, machine, missing, quick, argv)


# -- main ------------------------------------------------------------------------------

DISTRIBUTIONS = ("uvicorn", "httptools", "ws4py", "websockets", "wsproto", "uvloop")


def versions(probed: list[tuple[Peer, str]]) -> dict[str, str]:
    """The distributions of the virtualenv every Python server runs in, then the C compiler."""
    found: dict[str, str] = {}
    python = next((peer for peer, _version in probed if peer.binary is None), None)
    if python is not None:
        for dist in DISTRIBUTIONS:
            found[dist] = dist_version(python, dist) or "not installed"
    for peer, version in probed:
        if peer.binary is not None:
            found[peer.label] = version
    return found


SUITE = Suite(
    description=__doc__ or "",
    tmp_prefix="ws4py-uvicorn-bench-",
    peers=PEERS,
    default_peers=PEER_KEYS,
    default_output=DEFAULT_OUTPUT,
    default_repeats=3,
    heavy_repeats=2,
    make_rows=make_rows,
    render=render,
    versions=versions,
    label_width=36,
)


def main(argv: Sequence[str] | None = None) -> int:
    return run_main(SUITE, argv)


if __name__ == "__main__":
    sys.exit(main())
