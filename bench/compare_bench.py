"""Before/after benchmark: ws4py's own servers at two revisions, interleaved in one run.

Run it through ``bench/run_compare.sh BEFORE_REV [AFTER_REV]``, which exports
BEFORE_REV, installs it into ``bench/.venvs/before`` and the tree to compare
it with into ``bench/.venvs/threaded`` (the working tree) or
``bench/.venvs/after`` (AFTER_REV), builds the load generator, then runs this
script with ``--before-*`` / ``--after-*`` options that say where each
revision is.

Three servers of each revision, each run from that revision's virtualenv and
(when it has them) its own ``bench/servers`` scripts: threaded
(``ws4py_threaded.py``), ``ws4py.asyncio`` (``ws4py_asyncio.py``) and the
callbacks API (``ws4py_callbacks.py``), both asyncio ones on the default
loop. The rows are those of ``bench/threaded_bench.py`` and
``bench/asyncio_bench.py`` that the regression rule of issue 16 names: every echo
row with 50 connections and every one-CPU lockstep row, of each server; plus,
for the threaded server, "connect 2,000 clients" and "handshake + close, 4 in
flight", the latter with ws4py 0.6.0, websockets asyncio and the C echo server
beside it for its target. The rows run one after the other; in each, the
runs alternate before, after, before, after... (``Bench.run_by_row``), so that
the machine's noise falls on both columns alike. A row is labelled with its
server (``threaded: ...``, ``asyncio: ...``, ``callbacks: ...``), which
``--rows`` matches.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import asyncio_bench
import threaded_bench
from harness import (
    BENCH_DIR,
    ROOT,
    SERVERS,
    VENVS,
    Bench,
    Cell,
    Peer,
    Row,
    Suite,
    failure_lines,
    lockstep_repeats,
    run_main,
    value_cell,
)

DEFAULT_OUTPUT = BENCH_DIR / "results" / "compare.md"
TOLERANCE = 0.05  # issue 16: a row more than 5 % worse after is a regression
NOISY = 2 * TOLERANCE  # a column whose runs spread wider than this cannot tell a 5 % change


# -- revisions and peers ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Revision:
    name: str  # "before" or "after"
    description: str  # e.g. "HEAD~1 = 1bb8c6b", "the working tree at 1bb8c6b"
    venv: str  # under bench/.venvs
    servers: Path  # its bench/servers


@dataclasses.dataclass(frozen=True)
class StackPeer(Peer):
    """A peer that runs the rows of one server stack only (all of them, or only the handshake row)."""

    stack: str = ""
    handshake_only: bool = False

    def runs(self, row: Row) -> bool:
        return stack_of(row) == self.stack and (row.kind == "churn" or not self.handshake_only)


def stack_of(row: Row) -> str:
    return row.label.split(": ", 1)[0]


# The stacks, in the order their rows run: their key, the peer of the other benchmark whose server script and
# probe they take, and that benchmark's rows.
THREADED = "threaded"
STACKS: tuple[tuple[str, Peer, Callable[[bool, int, int], list[Row]]], ...] = (
    (THREADED, threaded_bench.PEERS[0], threaded_bench.make_rows),
    ("asyncio", asyncio_bench.ASYNCIO, asyncio_bench.make_rows),
    ("callbacks", asyncio_bench.CALLBACKS, asyncio_bench.make_rows),
)
# The handshake row's other servers, from the threaded benchmark: (their key there, their key here).
HANDSHAKE_PEERS = (("orig", "orig"), ("asyncio", "websockets"), ("c", "c"))


def make_peers(before: Revision, after: Revision) -> tuple[list[StackPeer], list[str]]:
    """The peers, in the order they take turns; and notes on the server scripts a revision does not have."""
    by_key = {p.key: p for p in threaded_bench.PEERS}
    peers: list[StackPeer] = []
    notes: list[str] = []
    for stack, model, _rows in STACKS:
        for rev in (before, after):
            servers = rev.servers
            if not (servers / model.script).exists():
                servers = SERVERS
                notes.append(f"{rev.name} has no bench/servers/{model.script}: the working tree's copy ran instead")
            peers.append(
                StackPeer(
                    f"{rev.name}-{stack}",
                    f"{rev.name} {stack}",
                    rev.venv,
                    model.script,
                    model.probe,
                    "ws4py",
                    servers=servers,
                    stack=stack,
                )
            )
        if stack == THREADED:
            for their_key, key in HANDSHAKE_PEERS:
                fields = {f.name: getattr(by_key[their_key], f.name) for f in dataclasses.fields(Peer)}
                peers.append(StackPeer(**{**fields, "key": key}, stack=THREADED, handshake_only=True))
    return peers, notes


# -- rows ------------------------------------------------------------------------------


def compared(stack: str, row: Row) -> bool:
    """The rows of issue 16's rule, and for the threaded server its two connection rows."""
    if row.kind == "echo":
        return row.conns == 50 or row.pin_cpu is not None
    return stack == THREADED and row.kind in ("connect", "churn")


def make_rows(quick: bool, repeats: int, heavy_repeats: int) -> list[Row]:
    """The rows of both benchmarks, each labelled with its stack; ``repeats`` runs of an echo row, twice as many
    less one for a lockstep row (as bench/asyncio_bench.py), ``heavy_repeats`` of the connection rows."""
    rows = []
    for stack, _model, their_rows in STACKS:
        for row in their_rows(quick, repeats, heavy_repeats):
            if compared(stack, row):
                runs = heavy_repeats if row.kind != "echo" else repeats
                if row.pin_cpu is not None:
                    runs = lockstep_repeats(repeats)
                rows.append(dataclasses.replace(row, label=f"{stack}: {row.label}", repeats=runs))
    return rows


# -- reporting -------------------------------------------------------------------------


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def paired_ratio(a: Cell | None, b: Cell | None) -> float | None:
    """The median, over the repeats where both were measured, of a's run / b's run: the two runs of a repeat are
    seconds apart, so a change in the machine's load during the row falls on one pair, not on one column."""
    if a is None or b is None:
        return None
    mine = {s.repeat: s.value for s in a.samples}
    ratios = [mine[s.repeat] / s.value for s in b.samples if s.repeat in mine and s.value]
    return statistics.median(ratios) if ratios else None


def cell_ratio(a: Cell | None, b: Cell | None) -> float | None:
    va = a.value if a is not None else None
    vb = b.value if b is not None else None
    return None if va is None or vb is None or vb == 0 else va / vb


def regressed(row: Row, after_over_before: float) -> bool:
    """After more than ``TOLERANCE`` worse than before."""
    if row.higher_is_better:
        return after_over_before < 1 - TOLERANCE
    return after_over_before > 1 + TOLERANCE


def spread(cell: Cell | None) -> float | None:
    """(max - min) / median of the runs: the noise a ratio has to beat."""
    if cell is None or cell.value is None or len(cell.samples) < 2 or cell.value == 0:
        return None
    values = [s.value for s in cell.samples]
    return (max(values) - min(values)) / cell.value


def fmt_spread(cell: Cell | None) -> str:
    value = spread(cell)
    return "-" if value is None else f"{value:.0%}"


@dataclasses.dataclass(frozen=True)
class CpuClock:
    """What the machine's CPUs did so far: the busy time of all of them, and the part this process and its
    (reaped) children took."""

    wall: float
    busy: float  # CPU seconds, every process (/proc/stat: user, nice, system, irq, softirq)
    steal: float  # CPU seconds the hypervisor gave to others
    ours: float  # CPU seconds of this process and its reaped children (the servers, the load generator)

    @staticmethod
    def now() -> CpuClock:
        with open("/proc/stat", encoding="ascii") as f:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in f.readline().split()[1:9])
        hz = os.sysconf("SC_CLK_TCK")
        usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
        return CpuClock(
            time.monotonic(),
            (user + nice + system + irq + softirq) / hz,
            steal / hz,
            sum(u.ru_utime + u.ru_stime for u in usage),
        )


def others_line(start: CpuClock) -> str:
    """How many cores other processes (and the hypervisor) took during the run: the noise in its numbers."""
    end = CpuClock.now()
    wall = end.wall - start.wall
    if wall <= 0:
        return ""
    others = max(0.0, (end.busy - start.busy) - (end.ours - start.ours)) / wall
    steal = (end.steal - start.steal) / wall
    return (
        f"Other processes used {others:.2f} of the {os.cpu_count()} cores on average during the run (steal: "
        f"{steal:.2f}); near 0 on an otherwise idle machine. Whatever they used is noise in every row."
    )


def render(
    bench: Bench,
    machine: str,
    missing: dict[str, str],
    quick: bool,
    command: str,
    revisions: Sequence[str],
    notes: Sequence[str],
    start: CpuClock,
) -> str:
    by_key = {p.key: p for p in bench.peers}

    def cell(row: Row, key: str) -> Cell | None:
        return bench.cells.get((row.label, key)) if key in by_key else None

    out = ["# Before / after: ws4py's threaded, asyncio and callbacks servers at two revisions", ""]
    out += [f"Machine: {machine}", ""]
    repeats = sorted({r.repeats for r in bench.rows}, reverse=True)
    out += [
        f"Command: `{command}` (medians of {' or '.join(map(str, repeats))} runs per server and row, "
        "before and after alternating in each row" + ("; a smoke run, not a measurement" if quick else "") + ").",
        "",
    ]
    out += [f"- {line}" for line in revisions] + [""]
    out += [others_line(start), ""]
    for line in notes:
        out += [f"**Note:** {line}.", ""]
    for key, reason in missing.items():
        out += [f"**Not run: {key}** ({reason}).", ""]

    flagged: list[str] = []
    noisy: list[str] = []
    out += [
        "## Before and after",
        "",
        "↑: higher is better, ↓: lower is better. After / before divides the medians. REGRESSION: after more than "
        f"{TOLERANCE:.0%} worse than before (after / before below {1 - TOLERANCE:.2f} in a ↑ row, above "
        f"{1 + TOLERANCE:.2f} in a ↓ row). Paired: the median of each repeat's after run / before run (run "
        "seconds apart); far from after / before, the machine's load changed during the row. Spread: (max - min) / "
        f"median of each column's runs, the noise a ratio has to beat; noisy: a spread above {NOISY:.0%}, too wide "
        f"to tell a {TOLERANCE:.0%} change either way. The rows and the method: `bench/README.md`.",
        "",
        "| Row | Unit | Before | After | After / before | Flag | Paired | Spread (before / after) |",
        "|---|---|---:|---:|---:|---|---:|---:|",
    ]
    for row in bench.rows:
        stack = stack_of(row)
        before, after = cell(row, f"before-{stack}"), cell(row, f"after-{stack}")
        value = cell_ratio(after, before)
        flags = []
        if value is not None and regressed(row, value):
            flags.append("REGRESSION")
            flagged.append(row.label)
        if any((spread(c) or 0) > NOISY for c in (before, after)):
            flags.append("noisy")
            noisy.append(row.label)
        out.append(
            f"| {row.label} | {row.unit} | {value_cell(row, before)} | {value_cell(row, after)} | "
            f"{fmt_ratio(value)} | {', '.join(flags)} | {fmt_ratio(paired_ratio(after, before))} | "
            f"{fmt_spread(before)} / {fmt_spread(after)} |"
        )
    verdict = f"**{len(flagged)} regression(s)**: " + "; ".join(flagged) + "." if flagged else "**No regression.**"
    if quick:
        verdict += " (A smoke run: the flags mean nothing.)"
    elif noisy:
        verdict += (
            f" {len(noisy)} of {len(bench.rows)} rows are noisy: run them again, alone (`--rows`), with more "
            "repeats (`--repeats`), on a quieter machine."
        )
    out += ["", verdict, ""]

    handshake = [r for r in bench.rows if r.kind == "churn"]
    for row in handshake:
        before, after = cell(row, f"before-{THREADED}"), cell(row, f"after-{THREADED}")
        others = [(p.label, cell(row, p.key)) for p in bench.peers if isinstance(p, StackPeer) and p.handshake_only]
        out += [
            f"## {row.label}: against the others",
            "",
            "The same runs as the row above, with ws4py 0.6.0, websockets asyncio and the C echo server (the "
            "floor of this machine, not a competitor) taking their turns after before and after. Issue 16's "
            "target: the threaded server after at least 1.0x ws4py 0.6.0 and at least 1.0x websockets asyncio.",
            "",
            f"| Server | {row.unit} | Spread | ws4py before / this | ws4py after / this |",
            "|---|---:|---:|---:|---:|",
        ]
        for label, c in [("ws4py threaded, before", before), ("ws4py threaded, after", after), *others]:
            out.append(
                f"| {label} | {value_cell(row, c)} | {fmt_spread(c)} | {fmt_ratio(cell_ratio(before, c))} | "
                f"{fmt_ratio(cell_ratio(after, c))} |"
            )
        out.append("")
        for key in ("orig", "websockets"):
            if key in by_key:
                value = cell_ratio(after, cell(row, key))
                verdict = "not measured" if value is None else ("met" if value >= 1.0 else "**MISSED**")
                out.append(f"- Target: ws4py threaded after ≥ 1.0x {by_key[key].label}: {verdict} ({fmt_ratio(value)})")
        out.append("")

    failures = failure_lines(bench, bench.peers)
    if failures:
        out += ["## Failures and rows not measured", "", *failures]
        out.append("")
    return "\n".join(out)


# -- main ------------------------------------------------------------------------------


def ws4py_location(venv: str) -> str:
    """Where that virtualenv imports ws4py from, checking that its C extension is there."""
    code = "import ws4py, ws4py._speedups; print(ws4py.__file__)"
    python = VENVS / venv / "bin" / "python"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=SERVERS, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return f"cannot import ws4py with its C extension: {last}"
    path = Path(done.stdout.strip()).parent
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--before-rev", required=True, help="BEFORE_REV, as given to bench/run_compare.sh")
    parser.add_argument("--before-commit", required=True)
    parser.add_argument("--before-servers", type=Path, required=True, help="its bench/servers")
    parser.add_argument("--after-rev", default="", help="AFTER_REV; none: the working tree")
    parser.add_argument("--after-commit", required=True, help="of AFTER_REV, or the working tree's HEAD")
    parser.add_argument("--after-modified", action="store_true", help="the working tree has uncommitted changes")
    parser.add_argument("--after-servers", type=Path, default=SERVERS)
    parser.add_argument("--after-venv", default="threaded")
    ours, rest = parser.parse_known_args(argv)

    def named(rev: str, commit: str) -> str:
        return commit if commit.startswith(rev) else f"{rev} = {commit}"

    if ours.after_rev:
        after_description = named(ours.after_rev, ours.after_commit)
    else:
        modified = " with uncommitted changes" if ours.after_modified else ""
        after_description = f"the working tree at {ours.after_commit}{modified}"
    before = Revision("before", named(ours.before_rev, ours.before_commit), "before", ours.before_servers)
    after = Revision("after", after_description, ours.after_venv, ours.after_servers)
    peers, notes = make_peers(before, after)
    revisions = [
        f"{rev.name}: {rev.description}, ws4py from {ws4py_location(rev.venv)} (bench/.venvs/{rev.venv})"
        for rev in (before, after)
    ]
    for line in revisions:
        print(line, file=sys.stderr)
    start = CpuClock.now()
    command = shlex.join(
        ["bench/run_compare.sh", ours.before_rev, *([ours.after_rev] if ours.after_rev else []), *rest]
    )

    def versions(probed: list[tuple[Peer, str]]) -> dict[str, str]:
        found: dict[str, str] = {}
        for peer, version in probed:
            if isinstance(peer, StackPeer) and not peer.handshake_only:
                rev = before if peer.key.startswith("before-") else after
                found.setdefault(f"ws4py {rev.name}", f"{version} ({rev.description})")
            else:
                found[peer.label if peer.key != "orig" else "ws4py (original)"] = version
        return found

    suite = Suite(
        description=__doc__ or "",
        tmp_prefix="ws4py-compare-bench-",
        peers=peers,
        default_peers=[p.key for p in peers],
        default_output=DEFAULT_OUTPUT,
        default_repeats=3,
        heavy_repeats=3,
        make_rows=make_rows,
        render=lambda bench, machine, missing, quick, _argv: render(
            bench, machine, missing, quick, command, revisions, notes, start
        ),
        versions=versions,
        by_row=True,
    )
    return run_main(suite, rest)


if __name__ == "__main__":
    sys.exit(main())
