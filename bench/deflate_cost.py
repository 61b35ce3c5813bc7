"""What permessage-deflate costs ws4py's core per message: CPU time and bytes on the wire, by setting.

For each message size and deflate setting, a server core (after an in-memory
handshake) sends then receives the same fixed job of messages, and the
process's CPU time (``time.process_time``: user + system of this process, not
wall time, so other processes on the machine barely move it) is divided by the
number of messages. The payloads are JSON-lines-like ASCII, a different slice
for every message. Wire bytes are the frames' bytes per message, as sent.

    .venv/bin/python bench/deflate_cost.py             # the table (about half a minute)
    .venv/bin/python bench/deflate_cost.py --quick     # a smoke run

The settings: none; ws4py's default (``DeflateOptions()``: 15-bit windows,
zlib level 6, memLevel 8, context takeover); uvicorn's (12-bit windows,
memLevel 5, as ``ws4py.server.uvicorn.DEFLATE``); no context takeover on both
sides. The CPU figures are medians of ``--repeats`` measurements.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable

from ws4py.protocol import ClientHandshake, Connection, DeflateOptions, ServerHandshake, frames

SIZES = (16, 1024, 64 * 1024)
#: Messages per measurement, by size (a fixed job: the same every run).
COUNTS = {16: 20_000, 1024: 5_000, 64 * 1024: 200}
SETTINGS: dict[str, DeflateOptions | None] = {
    "none": None,
    "default (15 bits, level 6, memLevel 8)": DeflateOptions(),
    "uvicorn's (12 bits, memLevel 5)": DeflateOptions(
        server_max_window_bits=12, client_max_window_bits=12, memory_level=5
    ),
    "no context takeover": DeflateOptions(server_no_context_takeover=True, client_no_context_takeover=True),
}


def corpus(total: int, seed: int = 1) -> str:
    """ASCII JSON lines, deterministic."""
    rng = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "status", "ok", "error", "user", "room", "message", "id", "time"]
    lines: list[str] = []
    size = 0
    while size < total:
        line = json.dumps(
            {"id": rng.randrange(10**6), "user": rng.choice(words), "text": " ".join(rng.choices(words, k=8))}
        )
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines)


def pair(deflate: DeflateOptions | None) -> tuple[Connection, Connection]:
    """A connected (server, client) pair of cores, negotiated in memory."""
    client = ClientHandshake("localhost", "/", compression=deflate)
    server = ServerHandshake(compression=deflate)
    server.receive_data(client.request_bytes())
    client.receive_data(server.accept())
    return server.connection(max_message_size=None), client.connection(max_message_size=None)


def cpu_model() -> str:
    """The processor's name (Linux), else what ``platform`` says."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu(job: Callable[[], None]) -> float:
    start = time.process_time()
    job()
    return time.process_time() - start


def measure(size: int, deflate: DeflateOptions | None, count: int, repeats: int) -> tuple[float, float, float]:
    """Median CPU µs per message sent (server) and received (server, masked client frames), and wire bytes/msg."""
    text = corpus(size * (count + 1))
    messages = [text[i * size : (i + 1) * size] for i in range(count)]
    sends, recvs, wire = [], [], 0.0
    for _ in range(repeats):
        server, client = pair(deflate)
        out: list[bytes] = []

        def send(server: Connection = server, out: list[bytes] = out) -> None:
            for message in messages:
                out.append(server.send_text(message))

        sends.append(cpu(send) / count * 1e6)
        wire = sum(map(len, out)) / count
        incoming = b"".join(client.send_text(message) for message in messages)

        def receive(server: Connection = server, incoming: bytes = incoming) -> None:
            for offset in range(0, len(incoming), 65536):
                server.receive_data(incoming[offset : offset + 65536])

        recvs.append(cpu(receive) / count * 1e6)
    return statistics.median(sends), statistics.median(recvs), wire


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few messages, one repeat")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    repeats = 1 if args.quick else args.repeats
    print(
        f"ws4py core, codec {frames.implementation}; CPython {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, {cpu_model()}, {os.cpu_count()} CPUs"
    )
    print(f"CPU time per message (median of {repeats}), server core; wire bytes per message as sent.\n")
    print("| message | deflate | send, CPU µs/msg | receive, CPU µs/msg | wire bytes/msg |")
    print("|---|---|--:|--:|--:|")
    for size in SIZES:
        count = COUNTS[size] // (20 if args.quick else 1)
        for name, deflate in SETTINGS.items():
            send, recv, wire = measure(size, deflate, count, repeats)
            label = f"{size} B" if size < 1024 else f"{size // 1024} KiB"
            print(f"| text {label} | {name} | {send:,.2f} | {recv:,.2f} | {wire:,.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
