"""Pub/sub benchmark: fan-out through ws4py's brokers (in process; Redis on 2 workers) against websockets + redis-py.

One publisher, 5,000 subscribed clients, 100 text messages of 64 B, over real
sockets on 127.0.0.1, the clients driven by the load generator written in C
(``bench/loadgen``, mode ``pubsub``), the same for every server:

1. ``inprocess``: ws4py, ``python -m ws4py serve`` with the in-process broker, 1 worker;
2. ``redis``: ws4py, ``python -m ws4py serve --workers 2 --broker redis://...`` (RedisBroker);
3. ``websockets``: websockets + redis-py's asyncio client, written the way websockets' docs
   show (its ``broadcast`` fed by one Redis subscriber task per process), 2 processes
   sharing the port;
4. ``c``: the reference floor, a minimal fan-out server in C (``bench/servers/c_fanout.c``,
   epoll, one ``send()`` per connection per message read): what paced latency this machine
   allows at all, the load generator receiving every delivery on the other core;
5. ``c-redis``: the floor of the Redis rows, the same C server as 2 workers (SO_REUSEPORT)
   that publish each message to Redis and fan out what their subscription brings.

Each server publishes every text message a client sends to one channel to which every
client is subscribed (``bench/servers/pubsub_ws4py.py``, ``bench/servers/pubsub_websockets.py``).
The load generator's first connection is the publisher: after a sync round (every client has
received a message, so every subscription is in place on every process), it writes the 100
messages at once (burst: the time until every client has every message), then one every 20 ms
(paced: the delivery latency, p50/p99). Every message carries its sequence number and its send
time; each client must get each message once, in order.

Then the publish throughput of one synchronous publisher (``bench/servers/pubsub_publish.py``):
``ws4py.pubsub.publish()``, ``ws4py.pubsub.RedisBroker.publish()`` and redis-py's plain
``Redis.publish()``, to a fresh Redis with one subscriber.

Run it through ``bench/run_pubsub.sh``, which makes the virtualenvs and builds the load
generator; ``bench/README.md`` explains every number. ``--quick`` is a smoke run: 500 clients,
20 messages, one repeat, nothing written.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import (
    BENCH_DIR,
    HOST,
    LOADGEN,
    ROOT,
    SERVER_START_TIMEOUT,
    SETUP_CONCURRENCY,
    Cell,
    MeasureError,
    Peer,
    Sample,
    Server,
    dist_version,
    free_port,
    kill_all,
    machine_line,
    probe_peer,
    run_loadgen,
    spawn,
    stop_process,
)

DEFAULT_OUTPUT = BENCH_DIR / "results" / "pubsub.md"
C_FANOUT = BENCH_DIR / "loadgen" / "build" / "c_fanout"  # built from servers/c_fanout.c by bench/run_pubsub.sh
REDIS_SERVER = "redis-server"

# -- the fan-out servers -----------------------------------------------------------------


@dataclass(frozen=True)
class FanoutPeer(Peer):
    workers: int = 1
    redis: bool = False  # a fresh redis-server for each run, its URL given with ``broker_flag``
    broker_flag: str = "--broker"


INPROCESS = FanoutPeer(
    "inprocess", "ws4py, in-process broker, 1 worker", "pubsub", "pubsub_ws4py.py", "ws4py.pubsub", "ws4py"
)
REDIS = FanoutPeer(
    "redis",
    "ws4py, Redis broker, 2 workers",
    "pubsub",
    "pubsub_ws4py.py",
    "ws4py.pubsub, redis",
    "ws4py",
    workers=2,
    redis=True,
)
WEBSOCKETS = FanoutPeer(
    "websockets",
    "websockets + redis-py, 2 processes",
    "pubsub-websockets",
    "pubsub_websockets.py",
    "websockets, redis",
    "websockets",
    workers=2,
    redis=True,
    broker_flag="--redis",
)
C_REFERENCE = FanoutPeer("c", "C fan-out (reference)", binary=C_FANOUT)
C_REDIS = FanoutPeer(
    "c-redis", "C fan-out, Redis, 2 workers (reference)", binary=C_FANOUT, workers=2, redis=True, broker_flag="--redis"
)
FANOUT_PEERS = (INPROCESS, REDIS, WEBSOCKETS, C_REFERENCE, C_REDIS)


@dataclass(frozen=True)
class Publisher:
    key: str
    label: str
    venv: str

    @property
    def python(self) -> Path:
        return BENCH_DIR / ".venvs" / self.venv / "bin" / "python"


PUBLISHERS = (
    Publisher("ws4py-publish", "ws4py.pubsub.publish()", "pubsub"),
    Publisher("ws4py-broker", "ws4py RedisBroker.publish()", "pubsub"),
    Publisher("redis-py", "redis-py Redis.publish()", "pubsub-websockets"),
)


class RedisServer:
    """A fresh redis-server on 127.0.0.1 and a free port: no persistence, its log in ``logdir``."""

    def __init__(self, logdir: Path) -> None:
        self.port = free_port()
        self.log_path = logdir / f"redis-{self.port}.log"
        self.proc: subprocess.Popen[Any] | None = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        argv = [REDIS_SERVER, "--bind", HOST, "--port", str(self.port), "--save", "", "--appendonly", "no"]
        with open(self.log_path, "wb") as log:
            self.proc = spawn(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((HOST, self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise MeasureError(f"redis-server did not answer PING within 10 s (see {self.log_path})")

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None


def ask(port: int, text: str, timeout: float = 5.0) -> str:
    """Opens a WebSocket connection, sends ``text`` (< 126 B), returns the first text message that comes back."""
    with socket.create_connection((HOST, port), timeout=timeout) as s:
        s.sendall(
            f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        buf = b""

        def more() -> bytes:
            chunk = s.recv(4096)
            if not chunk:
                raise MeasureError("the server closed the connection")
            return chunk

        while b"\r\n\r\n" not in buf:
            buf += more()
        head, _, buf = buf.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise MeasureError(f"handshake refused: {head.splitlines()[0]!r}")
        payload = text.encode()
        mask = os.urandom(4)
        s.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        while True:
            while len(buf) < 2:
                buf += more()
            length = buf[1] & 0x7F
            start = 2 + {126: 2, 127: 8}.get(length, 0)
            while len(buf) < start:
                buf += more()
            if length >= 126:
                length = int.from_bytes(buf[2:start], "big")
            while len(buf) < start + length:
                buf += more()
            opcode, data, buf = buf[0] & 0x0F, buf[start : start + length], buf[start + length :]
            if opcode == 0x1:
                return data.decode()


class FanoutServer(Server):
    """A fan-out server: a fresh Redis first if it needs one; started once every worker answers."""

    peer: FanoutPeer

    def __init__(self, peer: FanoutPeer, logdir: Path) -> None:
        super().__init__(peer, logdir)
        self.logdir = logdir
        self.redis: RedisServer | None = None
        self.worker_pids: set[int] = set()

    def start(self) -> None:
        if self.peer.redis:
            self.redis = RedisServer(self.logdir)
            self.redis.start()
        self.port = free_port()
        argv = [*self.peer.argv(self.port), "--workers", str(self.peer.workers)]
        if self.redis is not None:
            argv += [self.peer.broker_flag, self.redis.url]
        with open(self.log_path, "wb") as log:
            self.proc = spawn(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.peer.servers
            )
        # Every worker must be listening before the clients come, or the first would get them all.
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while len(self.worker_pids) < self.peer.workers:
            if self.proc.poll() is not None:
                raise MeasureError(f"server exited with status {self.proc.returncode}: {self.log_tail()}")
            try:
                self.worker_pids.add(int(ask(self.port, "pid?", timeout=2.0)))
            except (OSError, ValueError, MeasureError):
                time.sleep(0.05)
            if time.monotonic() > deadline:
                raise MeasureError(
                    f"{len(self.worker_pids)} of {self.peer.workers} workers answering after "
                    f"{SERVER_START_TIMEOUT:.0f} s: {self.log_tail()}"
                )

    def stop(self) -> None:
        super().stop()
        if self.redis is not None:
            self.redis.stop()
            self.redis = None

    def pgids(self) -> list[str]:
        """--pgid arguments: the server's process group (its workers), and Redis' (both started in a new session)."""
        groups = [self.pid] + ([self.redis.pid] if self.redis is not None else [])
        return [arg for pid in groups for arg in ("--pgid", str(pid))]


# -- the measurements ----------------------------------------------------------------------


@dataclass(frozen=True)
class Fanout:
    conns: int
    messages: int
    size: int
    interval: float  # seconds between the paced messages
    settle: float
    timeout: float


def measure_fanout(peer: FanoutPeer, work: Fanout, logdir: Path) -> Sample:
    server = FanoutServer(peer, logdir)
    try:
        server.start()
        argv = [
            "--mode", "pubsub", "--port", str(server.port), "--conns", str(work.conns),
            "--messages", str(work.messages), "--size", str(work.size), "--interval", f"{work.interval:g}",
            "--settle", f"{work.settle:g}", "--concurrency", str(SETUP_CONCURRENCY), "--stall", "20",
            *server.pgids(),
        ]  # fmt: skip
        try:
            data = run_loadgen(argv, work.timeout)
        except MeasureError as exc:
            state = "still running" if server.alive() else "exited"
            raise MeasureError(f"{exc} [server {state}; its log: {server.log_tail()}]", exc.data) from exc
        wall = data["wall_s"]
        server_share = data["server_cpu_s"] / wall if "server_cpu_s" in data and wall > 0 else None
        return Sample(data["all_s"], data, server_share, data["cpu_s"] / wall if wall > 0 else None)
    finally:
        server.stop()


def measure_publish(publisher: Publisher, count: int, logdir: Path) -> Sample:
    redis = RedisServer(logdir)
    try:
        redis.start()
        argv = [str(publisher.python), "pubsub_publish.py", publisher.key, "--url", redis.url, "--count", str(count)]
        proc = spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                      cwd=BENCH_DIR / "servers")  # fmt: skip
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired as exc:
            raise MeasureError("the publisher did not finish within 120 s") from exc
        finally:
            stop_process(proc)
        if proc.returncode != 0:
            raise MeasureError(f"the publisher exited with status {proc.returncode}: {err.strip()[-400:]}")
        data: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return Sample(data["msgs_per_s"], data)
    finally:
        redis.stop()


# -- reporting ---------------------------------------------------------------------------------


def ms(us: float | None) -> str:
    return "-" if us is None else f"{us / 1000:.1f}"


def secs(cell: Cell | None) -> str:
    if cell is None:
        return "n/a"
    value = cell.value
    text = "failed" if value is None else f"{value:.3f}"
    return text + (f" ({len(cell.errors)} failed)" if cell.errors else "")


def ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x"


def sec(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def sec2(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def verdict(ok: bool | None) -> str:
    return "**met**" if ok else ("**missed**" if ok is False else "**not measured**")


def render(
    fan: dict[str, Cell],
    pub: dict[str, Cell],
    peers: Sequence[FanoutPeer],
    publishers: Sequence[Publisher],
    work: Fanout,
    machine: str,
    missing: dict[str, str],
    quick: bool,
    argv: Sequence[str],
    others: tuple[float, float],
) -> str:
    command = " ".join(["bench/run_pubsub.sh", *argv])
    out = ["# Pub/sub fan-out: ws4py's brokers against websockets + redis-py", ""]
    if quick:
        out += ["**Smoke run (--quick): tiny counts, one repeat; not a measurement.**", ""]
    out += [
        f"Machine: {machine}", "",
        f"Command: `{command}`", "",
        f"Medians of {max((len(c.samples) for c in fan.values()), default=0)} runs per server, interleaved "
        "(in each repeat the servers take turns, then the publishers); "
        + f"other processes kept {others[0]:.2f} cores busy in the second before the run, {others[1]:.2f} in the "
        "second after it.",
        "",
    ]  # fmt: skip

    def value(key: str) -> float | None:
        cell = fan.get(key)
        return cell.value if cell is not None else None

    def data(key: str, name: str) -> float | None:
        cell = fan.get(key)
        return cell.data_median(name) if cell is not None else None

    t_in, t_redis, t_ws = value("inprocess"), value("redis"), value("websockets")
    out += ["## Targets (issue 19)", ""]
    within = None if t_in is None or t_redis is None else t_redis <= 1.5 * t_in
    out.append(
        f"- ws4py Redis broker on 2 workers within 1.5x the in-process broker's time (burst): {verdict(within)} "
        f"({ratio(t_redis, t_in)}: {sec(t_redis)} s against {sec(t_in)} s)."
    )
    faster = None if t_ws is None or t_redis is None else t_ws >= 2 * t_redis
    out.append(
        f"- ws4py Redis broker on 2 workers at least 2x faster than websockets + redis-py on 2 processes (burst): "
        f"{verdict(faster)} ({ratio(t_ws, t_redis)}: {sec(t_ws)} s against {sec(t_redis)} s)."
    )
    for key, label in (("inprocess", "in-process broker"), ("redis", "Redis broker, 2 workers")):
        p99 = data(key, "paced_p99_us")
        ok = None if p99 is None else p99 < 50_000
        out.append(f"- ws4py {label}: delivery latency p99 under 50 ms (paced): {verdict(ok)} ({ms(p99)} ms).")
    for key, what in (("c", "the C fan-out server's"), ("c-redis", "with Redis on 2 workers, the C fan-out server's")):
        floor = data(key, "paced_p99_us")
        if floor is not None:
            out.append(
                f"- The floor of this machine, {what} paced p99: {ms(floor)} ms "
                f"({'under' if floor < 50_000 else 'over'} 50 ms)."
            )
    out.append("")

    keys = [p.key for p in peers]
    out += ["## Fan-out", ""]
    out.append(
        f"{work.conns:,} subscribed clients (the first one also publishes), {work.messages} text messages of "
        f"{work.size} B. Burst: the {work.messages} messages written at once; paced: one every "
        f"{work.interval * 1000:g} ms ({1 / work.interval:g} messages/s, "
        f"{work.conns / work.interval:,.0f} deliveries/s). Latency: from the publisher's write to a client's read."
    )
    out.append("")
    out.append("| | " + " | ".join(p.label for p in peers) + " | Redis / in-process | websockets / ws4py Redis |")
    out.append("|---|" + "---:|" * (len(peers) + 2))

    def line(label: str, fmt: Any, name: str | None = None, ratios: bool = False) -> None:
        vals = [value(k) if name is None else data(k, name) for k in keys]
        cells = [fmt(v) for v in vals]
        if ratios:
            by = dict(zip(keys, vals, strict=True))
            extra = [ratio(by.get("redis"), by.get("inprocess")), ratio(by.get("websockets"), by.get("redis"))]
        else:
            extra = ["", ""]
        out.append(f"| {label} | " + " | ".join(cells) + " | " + " | ".join(extra) + " |")

    out.append(
        "| burst: time until every client has every message, s ↓ | "
        + " | ".join(secs(fan.get(k)) for k in keys)
        + f" | {ratio(t_redis, t_in)} | {ratio(t_ws, t_redis)} |"
    )

    def num(v: float | None) -> str:
        return "-" if v is None else f"{v:,.0f}"

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.0f}%"

    line("burst: deliveries/s ↑", num, "deliveries_per_s")
    line("burst: first client complete, s", sec, "first_conn_s")
    line("burst: latency p50, ms", ms, "burst_p50_us")
    line("burst: latency p99, ms", ms, "burst_p99_us")
    line("paced: latency p50, ms ↓", ms, "paced_p50_us", ratios=True)
    line("paced: latency p99, ms ↓", ms, "paced_p99_us", ratios=True)
    line("paced: latency max, ms", ms, "paced_max_us")
    line("paced: time until the last delivery, s", sec, "paced_s")

    def cpu_per_delivery(sample: Sample) -> float | None:
        cpu = sample.data.get("paced_server_cpu_s")
        return None if cpu is None else cpu / (sample.data["conns"] * sample.data["messages"]) * 1e6

    out.append(
        "| paced: server CPU per delivery (servers + Redis), µs ↓ | "
        + " | ".join(sec2(fan[k].median(cpu_per_delivery)) if k in fan else "-" for k in keys)
        + " | | |"
    )
    out.append(
        "| burst: CPU, servers + Redis / load generator (% of one core) | "
        + " | ".join(
            f"{pct(fan[k].median(lambda s: s.server_share))} / {pct(fan[k].median(lambda s: s.loadgen_share))}"
            if k in fan and fan[k].samples
            else "-"
            for k in keys
        )
        + " | | |"
    )
    line("connect: time to open every client, s", sec, "connect_s")
    out.append("")

    if publishers:
        out += ["## Publish throughput, one synchronous publisher", ""]
        out.append(
            "Messages of 64 B published one after the other from plain code (no event loop) to a fresh Redis with "
            "one subscriber (redis-py, another process); messages/s counts until the subscriber has the last one, "
            "calls/s the publish calls alone."
        )
        out.append("")
        out.append("| Publisher | messages/s ↑ | calls/s | / redis-py |")
        out.append("|---|---:|---:|---:|")
        base = pub.get("redis-py")
        base_value = base.value if base is not None else None
        for p in publishers:
            cell = pub.get(p.key)
            v = cell.value if cell is not None else None
            calls = cell.data_median("calls_per_s") if cell is not None else None
            failed = f" ({len(cell.errors)} failed)" if cell is not None and cell.errors else ""
            out.append(f"| {p.label} | {num(v)}{failed} | {num(calls)} | {ratio(v, base_value)} |")
        out.append("")

    errors = [f"- {key}: {e}" for key, cell in [*fan.items(), *pub.items()] for e in cell.errors]
    errors += [f"- {label}: not run: {reason}" for label, reason in missing.items()]
    if errors:
        out += ["## Failures", "", *errors, ""]
    return "\n".join(out)


# -- main --------------------------------------------------------------------------------------


def other_cores(seconds: float = 1.0) -> float:
    """How many cores the machine kept busy over ``seconds`` (nothing of this benchmark runs then)."""

    def busy() -> tuple[float, float]:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        return sum(fields) - fields[3] - fields[4], sum(fields)  # all but idle and iowait; all

    b0, t0 = busy()
    time.sleep(seconds)
    b1, t1 = busy()
    cores = os.cpu_count() or 1
    return cores * (b1 - b0) / max(1, t1 - t0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 500 clients, 20 messages, one repeat")
    parser.add_argument("--repeats", type=int, default=None, help="runs per server and publisher (default 5)")
    keys = [p.key for p in (*FANOUT_PEERS, *PUBLISHERS)]
    parser.add_argument("--peers", default=",".join(keys), help=f"comma-separated subset of {', '.join(keys)}")
    parser.add_argument("--conns", type=int, default=None, help="subscribed clients (default 5,000)")
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between paced messages (default 0.02)")
    parser.add_argument("--output", type=Path, default=None, help="markdown file (default bench/results/pubsub.md)")
    args = parser.parse_args(argv)
    raw_argv = list(sys.argv[1:] if argv is None else argv)

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    if not LOADGEN.exists():
        raise SystemExit(f"{LOADGEN.relative_to(ROOT)} is not built: run bench/run_pubsub.sh")
    if shutil.which(REDIS_SERVER) is None:
        raise SystemExit("redis-server is not installed (Debian: apt-get install redis-server)")
    wanted = {k.strip() for k in args.peers.split(",") if k.strip()}
    repeats = args.repeats or (1 if args.quick else 5)
    work = Fanout(
        conns=args.conns or (500 if args.quick else 5_000),
        messages=20 if args.quick else 100,
        size=64,
        interval=args.interval,
        settle=0.3 if args.quick else 1.0,
        timeout=60 if args.quick else 180,
    )
    count = 1_000 if args.quick else 5_000

    missing: dict[str, str] = {}
    peers: list[FanoutPeer] = []
    versions: dict[str, str] = {}
    for peer in FANOUT_PEERS:
        if peer.key not in wanted:
            continue
        reason, version = probe_peer(peer)
        if reason is not None:
            missing[peer.label] = reason
            log(f"warning: {peer.label} is not run: {reason}")
            continue
        peers.append(peer)
        if peer.binary is not None:
            versions[peer.binary.name] = version  # the compiler that built it
            continue
        for dist in ("ws4py", "websockets", "redis"):
            found = dist_version(peer, dist)
            if found:
                versions[f"{dist} ({peer.venv})" if dist == "redis" else dist] = found
    publishers = [p for p in PUBLISHERS if p.key in wanted and p.python.exists()]
    done = subprocess.run([REDIS_SERVER, "--version"], capture_output=True, text=True, check=False)
    versions["redis-server"] = next((w[2:] for w in done.stdout.split() if w.startswith("v=")), "?")
    machine = machine_line(versions)
    log(f"machine: {machine}")

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    logdir = Path(tempfile.mkdtemp(prefix="ws4py-pubsub-bench-"))
    fan: dict[str, Cell] = {}
    pub: dict[str, Cell] = {}
    idle_before = other_cores()
    started = time.monotonic()
    try:
        for repeat in range(repeats):
            for peer in peers:
                cell = fan.setdefault(peer.key, Cell())
                try:
                    sample = measure_fanout(peer, work, logdir)
                except MeasureError as exc:
                    cell.errors.append(f"repeat {repeat + 1}: {exc}")
                    log(f"[{repeat + 1}/{repeats}] {peer.label}: FAILED: {exc}")
                    continue
                cell.samples.append(sample)
                d = sample.data
                log(
                    f"[{repeat + 1}/{repeats}] {peer.label}: burst {d['all_s']:.3f} s, "
                    f"p50/p99 {d['burst_p50_us'] / 1000:.1f}/{d['burst_p99_us'] / 1000:.1f} ms; paced p50/p99 "
                    f"{d['paced_p50_us'] / 1000:.1f}/{d['paced_p99_us'] / 1000:.1f} ms; "
                    f"CPU {sample.server_share or 0:.0%} / {sample.loadgen_share or 0:.0%}"
                )
            for publisher in publishers:
                cell = pub.setdefault(publisher.key, Cell())
                try:
                    sample = measure_publish(publisher, count, logdir)
                except MeasureError as exc:
                    cell.errors.append(f"repeat {repeat + 1}: {exc}")
                    log(f"[{repeat + 1}/{repeats}] {publisher.label}: FAILED: {exc}")
                    continue
                cell.samples.append(sample)
                log(f"[{repeat + 1}/{repeats}] {publisher.label}: {sample.value:,.0f} msg/s")
    finally:
        kill_all()
        shutil.rmtree(logdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    others = (idle_before, other_cores())
    log(f"done in {elapsed:.0f} s")
    report = render(fan, pub, peers, publishers, work, machine, missing, args.quick, raw_argv, others)
    print(report)
    output = args.output if args.output is not None else (None if args.quick else DEFAULT_OUTPUT)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report, encoding="utf-8")
        log(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
