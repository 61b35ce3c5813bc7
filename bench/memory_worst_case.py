"""What one connection of each hostile peer costs each ws4py server: the table of docs/memory.md.

For every peer of ``tests/faults/memory_peers.py`` (one per memory item of
issue 20) and every server it applies to, starts the server in a subprocess
with small limits, opens ``k`` of the peer's connections at once and prints
the server's RSS growth per connection next to the bound the limits give for
it (the bound ``tests/faults/test_memory_bounds.py`` asserts). Run with the
project's environment, from the repository root::

    .venv/bin/python bench/memory_worst_case.py              # every row, about a minute
    .venv/bin/python bench/memory_worst_case.py ping_flood   # some peers only

It prints Markdown to paste into docs/memory.md: a machine line, the limits
of each peer's rows, and the table. ``--k N`` opens N connections per row.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "faults"))

from memory_peers import PEERS, SLACK, KiB, Limits, MiB, machine, measure


def _size(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n / KiB:.0f} KiB"


def _limits(limits: Limits) -> str:
    default = Limits()
    changed = {name: value for name, value in asdict(limits).items() if value != getattr(default, name)}
    return ", ".join(f"{name}={_size(value)}" for name, value in changed.items()) or "the test defaults"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peers", nargs="*", choices=[[], *PEERS], help="peers to run (default: all)")
    parser.add_argument("--k", type=int, default=None, help="connections at once (default: the peer's)")
    parser.add_argument("--label", default="", help="what code is measured, for the first line (a revision)")
    args = parser.parse_args()
    names = args.peers or list(PEERS)
    import ws4py

    label = f", {args.label}" if args.label else ""
    print(f"Measured with `bench/memory_worst_case.py` (ws4py {ws4py.__version__}{label}): {machine()}.")
    print()
    print(
        "Test limits (unless the row says otherwise): "
        + ", ".join(
            f"{name}={_size(value)}" if value >= KiB else f"{name}={value}" for name, value in asdict(Limits()).items()
        )
        + f"; slack for the whole process {_size(SLACK)}."
    )
    print()
    print(
        "| item | peer | server | k | limits changed | RSS growth / connection | peak growth / connection "
        "| bound / connection | within | threads |"
    )
    print("|---|---|---|--:|---|--:|--:|--:|---|---|")
    failures = 0
    for name in names:
        peer = PEERS[name]
        for server in peer.servers:
            result = measure(server, peer, args.k)
            failures += not result.within_bound
            print(
                f"| {peer.item} | {peer.what} | {server} | {result.k} | {_limits(peer.limits)} "
                f"| {_size(result.per_connection)} | {_size(result.peak_per_connection)} "
                f"| {_size(result.bound_per_connection)} "
                f"| {'yes' if result.within_bound else '**no**'} "
                f"| {result.threads_before} → {result.threads_after} |",
                flush=True,
            )
    print()
    print(f"{failures} row(s) over their bound.")


if __name__ == "__main__":
    main()
