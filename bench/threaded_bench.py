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

import argparse
import contextlib
import datetime
import functools
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VENVS = BENCH_DIR / ".venvs"
SERVERS = BENCH_DIR / "servers"
LOADGEN = BENCH_DIR / "loadgen" / "build" / "loadgen"
C_ECHO = BENCH_DIR / "loadgen" / "build" / "c_echo"  # built from servers/c_echo.c by run_threaded.sh
DEFAULT_OUTPUT = BENCH_DIR / "results" / "threaded.md"

KIB = 1024
MIB = 1024 * 1024
HOST = "127.0.0.1"
SERVER_START_TIMEOUT = 30.0
ACCESS_LOG = re.compile(r'"GET [^"]*" \d{3} ')  # wsgiref logs every request: not news
STALLED_SHARE = 0.05  # a server that used less CPU than this while nothing came back is stuck, not slow
FD_MARGIN = 64  # descriptors a process needs beyond one per connection
SETUP_CONCURRENCY = 4  # handshakes in flight when the connection setup is not what is measured (see README)


# -- peers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Peer:
    key: str
    label: str
    venv: str = ""
    script: str = ""
    probe: str = ""  # module that must import in the virtualenv
    dist: str = ""  # distribution whose version the machine line shows
    fds_per_conn: int = 1  # descriptors the server holds per open connection (measured)
    binary: Path | None = None  # a compiled server, run as ``binary PORT [--broadcast]``, instead of a script

    @property
    def python(self) -> Path:
        return VENVS / self.venv / "bin" / "python"

    def argv(self, port: int) -> list[str]:
        if self.binary is not None:
            return [str(self.binary), str(port)]
        return [str(self.python), str(SERVERS / self.script), str(port)]


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


def probe_peer(peer: Peer) -> tuple[str | None, str]:
    """(None, version) if the peer's server can run, else (reason, "")."""
    if peer.binary is not None:
        if not peer.binary.exists():
            return f"{peer.binary.relative_to(ROOT)} is not built (bench/run_threaded.sh builds it)", ""
        try:  # it prints the compiler that built it, e.g. "gcc 12.2.0"
            done = subprocess.run(
                [str(peer.binary), "--version"], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"cannot run {peer.binary.relative_to(ROOT)}: {exc}", ""
        if done.returncode != 0:
            return f"{peer.binary.relative_to(ROOT)} --version exited with status {done.returncode}", ""
        return None, done.stdout.strip()
    if not peer.python.exists():
        return f"no virtualenv {peer.python.parent.parent.relative_to(ROOT)}", ""
    code = f"import importlib.metadata, {peer.probe}; print(importlib.metadata.version({peer.dist!r}))"
    try:
        done = subprocess.run(
            [str(peer.python), "-c", code], capture_output=True, text=True, timeout=60, cwd=SERVERS, check=False
        )
    except subprocess.TimeoutExpired:
        return f"importing {peer.probe} timed out", ""
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return f"cannot import {peer.probe}: {last}", ""
    return None, done.stdout.strip()


# -- processes -------------------------------------------------------------------------

_live: set[subprocess.Popen[Any]] = set()


def _spawn(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """Starts a process in its own session (its own process group), remembered until reaped."""
    proc: subprocess.Popen[Any] = subprocess.Popen(list(argv), start_new_session=True, **kwargs)
    _live.add(proc)
    return proc


def _kill(proc: subprocess.Popen[Any]) -> None:
    """Kills the process group the harness started, and reaps the process."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    else:  # the leader is gone; its group may not be
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    _live.discard(proc)


def kill_all() -> None:
    for proc in list(_live):
        _kill(proc)


class MeasureError(Exception):
    """A measurement that could not be made: the server or the load generator failed.

    ``data`` is the load generator's result line, when it printed one (it tells how far it got).
    """

    def __init__(self, message: str, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.data = data

    @property
    def timed_out(self) -> bool:
        return self.data is not None and str(self.data.get("error", "")).startswith("timed out")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """One server process of a peer on a free port; ``with Server(...) as server:``."""

    count = 0

    def __init__(self, peer: Peer, logdir: Path, broadcast: bool = False) -> None:
        self.peer = peer
        self.broadcast = broadcast
        Server.count += 1
        self.log_path = logdir / f"{peer.key}-{Server.count}.log"
        self.port = 0
        self.proc: subprocess.Popen[Any] | None = None

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        self.port = free_port()
        argv = self.peer.argv(self.port)
        if self.broadcast:
            argv.append("--broadcast")
        with open(self.log_path, "wb") as log:
            self.proc = _spawn(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=SERVERS)
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise MeasureError(f"server exited with status {self.proc.returncode}: {self.log_tail()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise MeasureError(f"server not accepting after {SERVER_START_TIMEOUT:.0f} s: {self.log_tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            _kill(self.proc)
            self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def rss_kib(self) -> int:
        with open(f"/proc/{self.pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise MeasureError("no VmRSS in /proc/<pid>/status")

    def listen_backlog(self) -> int | None:
        """The listening socket's backlog (``ss``'s Send-Q for a listener), if ``ss`` is there."""
        if shutil.which("ss") is None:
            return None
        done = subprocess.run(
            ["ss", "-ltnH", f"sport = :{self.port}"], capture_output=True, text=True, timeout=10, check=False
        )
        for line in done.stdout.splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[0] == "LISTEN":
                return int(fields[2])
        return None

    def log_tail(self, lines: int = 6) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        tail = [line for line in text.strip().splitlines() if line.strip() and not ACCESS_LOG.search(line)][-lines:]
        return " | ".join(tail) if tail else "(empty log)"


def parse_result(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise MeasureError("the load generator printed nothing")
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except json.JSONDecodeError as exc:
        raise MeasureError(f"unreadable load-generator output: {lines[-1][:200]!r}") from exc
    if not result.get("ok"):
        raise MeasureError(f"load generator: {result.get('error', '?')} ({_progress(result)})", result)
    return result


def _progress(result: dict[str, Any]) -> str:
    keys = ("elapsed_s", "opened", "open", "handshaking", "conns_done")
    return ", ".join(f"{k} {result[k]}" for k in keys if k in result)


def run_loadgen(args: Sequence[str], timeout: float) -> dict[str, Any]:
    """Runs the load generator to the end (it stops itself after ``--timeout``); its JSON result."""
    argv = [str(LOADGEN), *args, "--timeout", f"{timeout:g}"]
    proc = _spawn(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=timeout + 20)
    except subprocess.TimeoutExpired as exc:
        raise MeasureError(f"load generator did not stop within {timeout + 20:.0f} s") from exc
    finally:
        _kill(proc)
    if proc.returncode not in (0, 1):
        raise MeasureError(f"load generator exited with status {proc.returncode}: {err.strip()[-300:]}")
    return parse_result(out)


# -- rows ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    kind: str  # echo | idle | connect | churn | broadcast
    label: str
    unit: str
    higher_is_better: bool
    args: tuple[str, ...]  # load-generator arguments, less --port/--pid/--timeout
    conns: int  # connections held at once
    timeout: float  # seconds the load generator may take
    repeats: int
    size: int = 0
    inflight: int = 0
    duration: float = 0.0

    @property
    def fresh_server(self) -> bool:
        """Heavy rows get a server of their own; echo rows share one per peer and repeat."""
        return self.kind != "echo"

    @property
    def broadcast_server(self) -> bool:
        return self.kind == "broadcast"


def flags(**options: object) -> tuple[str, ...]:
    """Load-generator arguments: ``size=16`` gives ``--size 16``, ``binary=True`` gives ``--binary``."""
    argv: list[str] = []
    for name, value in options.items():
        if value is True:
            argv.append(f"--{name}")
        elif value is not False:
            argv += [f"--{name}", f"{value:g}" if isinstance(value, float) else str(value)]
    return tuple(argv)


def fmt_size(nbytes: int) -> str:
    if nbytes >= MIB:
        return f"{nbytes // MIB} MiB"
    if nbytes >= KIB:
        return f"{nbytes // KIB} KiB"
    return f"{nbytes} B"


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
                kind = "text" if text else "binary"
                where = f"{conns} conn{'s' if conns > 1 else ''}, {inflight} in flight"
                rows.append(
                    Row(
                        kind="echo",
                        label=f"echo {kind} {fmt_size(size)}, {where}",
                        unit="msg/s ↑",
                        higher_is_better=True,
                        args=flags(
                            mode="echo",
                            conns=conns,
                            inflight=inflight,
                            size=size,
                            text=text,
                            binary=not text,
                            warmup=warmup,
                            duration=duration,
                            drain=drain,
                            concurrency=SETUP_CONCURRENCY,
                        ),
                        conns=conns,
                        timeout=warmup + duration + drain + 60,
                        repeats=repeats,
                        size=size,
                        inflight=inflight,
                        duration=duration,
                    )
                )
    return rows


def heavy_rows(quick: bool, repeats: int) -> list[Row]:
    def n(full: int, small: int) -> int:
        return small if quick else full

    rows = []
    for conns in (n(5000, 200), n(10000, 400)):
        rows.append(
            Row(
                kind="idle",
                label=f"idle memory, {conns:,} connections",
                unit="KiB/conn ↓",
                higher_is_better=False,
                args=flags(mode="idle", conns=conns, concurrency=SETUP_CONCURRENCY, hold=300.0),
                conns=conns,
                timeout=n(120, 30),
                repeats=repeats,
            )
        )
    conns = n(2000, 200)
    rows.append(
        Row(
            kind="connect",
            label=f"connect {conns:,} clients, 200 handshakes in flight",
            unit="s ↓",
            higher_is_better=False,
            args=flags(mode="connect", conns=conns, concurrency=200),
            conns=conns,
            timeout=n(30, 10),
            repeats=repeats,
        )
    )
    duration = 0.3 if quick else 2.0
    rows.append(
        Row(
            kind="churn",
            label=f"handshake + close, {SETUP_CONCURRENCY} in flight",
            unit="conn/s ↑",
            higher_is_better=True,
            args=flags(mode="churn", concurrency=SETUP_CONCURRENCY, warmup=0.1 if quick else 0.5, duration=duration),
            conns=SETUP_CONCURRENCY,
            timeout=60,
            repeats=repeats,
            duration=duration,
        )
    )
    for conns in (n(1000, 100), n(5000, 300)):
        rows.append(
            Row(
                kind="broadcast",
                label=f"broadcast 100 x 64 B to {conns:,} clients",
                unit="s ↓",
                higher_is_better=False,
                args=flags(
                    mode="broadcast",
                    conns=conns,
                    messages=100,
                    size=64,
                    concurrency=SETUP_CONCURRENCY,
                    settle=0.3 if quick else 1.0,
                ),
                conns=conns,
                timeout=n(60, 20),
                repeats=repeats,
            )
        )
    return rows


# -- measuring -------------------------------------------------------------------------


@dataclass
class Sample:
    value: float
    data: dict[str, Any]
    server_share: float | None = None  # CPU seconds per second during the measured interval
    loadgen_share: float | None = None


@dataclass
class Cell:
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    not_measurable: str | None = None
    timed_out: str | None = None  # what a row that ran out of time got done; its later repeats are skipped

    def median(self, key: Callable[[Sample], float | None]) -> float | None:
        values = [v for v in (key(s) for s in self.samples) if v is not None]
        return statistics.median(values) if values else None

    @property
    def value(self) -> float | None:
        return self.median(lambda s: s.value)

    def data_median(self, name: str) -> float | None:
        return self.median(lambda s: s.data.get(name))


def shares(data: dict[str, Any]) -> tuple[float | None, float | None]:
    wall = data.get("wall_s") or 0.0
    if wall <= 0:
        return None, None
    server = data.get("server_cpu_s")
    return (server / wall if server is not None else None), data["cpu_s"] / wall


def sample_from(row: Row, data: dict[str, Any], value: float) -> Sample:
    server_share, loadgen_share = shares(data)
    return Sample(value, data, server_share, loadgen_share)


def loadgen_args(row: Row, server: Server) -> list[str]:
    return [*row.args, "--port", str(server.port), "--pid", str(server.pid)]


def measure_idle(row: Row, server: Server) -> Sample:
    time.sleep(0.5)
    before = server.rss_kib()
    argv = [str(LOADGEN), *loadgen_args(row, server), "--timeout", f"{row.timeout:g}"]
    proc = _spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        ready, _, _ = select.select([proc.stdout], [], [], row.timeout + 20)
        if not ready:
            raise MeasureError(f"no ready line from the load generator within {row.timeout + 20:.0f} s")
        first = proc.stdout.readline()
        if '"ready"' not in first:
            parse_result(first)  # raises with the load generator's error
            raise MeasureError(f"unexpected load-generator output: {first[:200]!r}")
        time.sleep(1.0)  # let the server finish with the last connections
        if not server.alive():
            raise MeasureError(f"server died holding the connections: {server.log_tail()}")
        after = server.rss_kib()
        try:
            out, _err = proc.communicate(timeout=60)  # closes stdin first: the load generator lets go
        except subprocess.TimeoutExpired as exc:
            raise MeasureError("load generator did not stop after the measurement") from exc
        data = parse_result(out)
    finally:
        _kill(proc)
    data["rss_before_kib"] = before
    data["rss_after_kib"] = after
    return sample_from(row, data, (after - before) / row.conns)


def measure(row: Row, server: Server) -> Sample:
    try:
        return _measure(row, server)
    except MeasureError as exc:
        state = "still running" if server.alive() else f"exited with status {server.proc and server.proc.poll()}"
        raise MeasureError(f"{exc} [server {state}; its log: {server.log_tail()}]", exc.data) from exc


def _measure(row: Row, server: Server) -> Sample:
    if row.kind == "idle":
        return measure_idle(row, server)
    data = run_loadgen(loadgen_args(row, server), row.timeout)
    server_share, _ = shares(data)
    idle = server_share is not None and server_share < STALLED_SHARE
    if row.kind == "echo":
        if data["messages"] == 0 and idle:
            raise MeasureError(f"stalled: no echo in {data['wall_s']:.2f} s, the server idle (CPU {server_share:.0%})")
        value = data["msgs_per_s"]
    elif row.kind == "connect":
        value = data["connect_s"]
    elif row.kind == "churn":
        if data["cycles"] == 0:
            raise MeasureError(
                f"stalled: no connect-handshake-close cycle completed in {data['wall_s']:.2f} s "
                f"(server CPU {server_share if server_share is not None else float('nan'):.0%})"
            )
        value = data["cycles_per_s"]
    else:
        value = data["all_s"]
    return sample_from(row, data, value)


def fd_problem(row: Row, peer: Peer) -> str | None:
    """Why a row cannot run under this RLIMIT_NOFILE (the load generator needs a descriptor per connection,
    the server ``peer.fds_per_conn``)."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = row.conns * max(1, peer.fds_per_conn) + FD_MARGIN
    if hard != resource.RLIM_INFINITY and hard < need:
        per = f" ({peer.fds_per_conn} per connection)" if peer.fds_per_conn > 1 else ""
        return f"needs about {need:,} descriptors{per}, RLIMIT_NOFILE hard limit is {hard:,}"
    return None


@dataclass
class Bench:
    peers: list[Peer]
    rows: list[Row]
    logdir: Path
    log: Callable[[str], None]
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    backlogs: dict[str, int | None] = field(default_factory=dict)

    def cell(self, row: Row, peer: Peer) -> Cell:
        return self.cells.setdefault((row.label, peer.key), Cell())

    def record(self, row: Row, peer: Peer, repeat: int, run: Callable[[], Sample]) -> None:
        cell = self.cell(row, peer)
        if cell.timed_out:
            self.log(f"  {peer.label:<20} {row.label}: skipped (timed out before)")
            return
        problem = fd_problem(row, peer)
        if problem is not None:
            cell.not_measurable = problem
            self.log(f"  {peer.label:<20} {row.label}: not measurable ({problem})")
            return
        try:
            sample = run()
        except MeasureError as exc:
            cell.errors.append(f"repeat {repeat + 1}: {exc}")
            if exc.timed_out and exc.data is not None:
                cell.timed_out = f"> {row.timeout:g} s ({exc.data.get('opened', 0):,} of {row.conns:,} connected)"
            self.log(f"  {peer.label:<20} {row.label}: FAILED: {exc}")
            raise
        cell.samples.append(sample)
        self.log(f"  {peer.label:<20} {row.label}: {describe(row, sample)}")

    def run_echo_rows(self, peer: Peer, rows: list[Row], repeat: int) -> None:
        server: Server | None = None
        try:
            for row in rows:
                if server is None:
                    server = Server(peer, self.logdir)
                    server.start()
                    if peer.key not in self.backlogs:
                        self.backlogs[peer.key] = server.listen_backlog()
                try:
                    self.record(row, peer, repeat, functools.partial(measure, row, server))
                except MeasureError:
                    server.stop()
                    server = None
                    continue
                last = self.cell(row, peer).samples[-1]
                if not last.data.get("drained", True) or not server.alive():
                    server.stop()  # still busy with the last row's messages: the next row gets a fresh server
                    server = None
        finally:
            if server is not None:
                server.stop()

    def run_heavy_row(self, peer: Peer, row: Row, repeat: int) -> None:
        def once() -> Sample:
            with Server(peer, self.logdir, broadcast=row.broadcast_server) as server:
                if peer.key not in self.backlogs:
                    self.backlogs[peer.key] = server.listen_backlog()
                return measure(row, server)

        with contextlib.suppress(MeasureError):
            self.record(row, peer, repeat, once)

    def run(self) -> None:
        echo = [r for r in self.rows if r.kind == "echo"]
        heavy = [r for r in self.rows if r.kind != "echo"]
        rounds = max(r.repeats for r in self.rows)
        for repeat in range(rounds):
            for peer in self.peers:
                self.log(f"[repeat {repeat + 1}/{rounds}] {peer.label}")
                self.run_echo_rows(peer, [r for r in echo if repeat < r.repeats], repeat)
                for row in heavy:
                    if repeat < row.repeats:
                        self.run_heavy_row(peer, row, repeat)


# -- reporting -------------------------------------------------------------------------


def fmt_num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def describe(row: Row, sample: Sample) -> str:
    d = sample.data
    if row.kind == "echo":
        text = f"{fmt_num(sample.value)} msg/s ({d['messages']} in {d['wall_s']:.2f} s)"
        if "p50_us" in d:
            text += f", p50 {d['p50_us']:.0f} us, p99 {d['p99_us']:.0f} us"
        if not d.get("drained", True):
            text += ", not drained: server restarted"
        return text
    if row.kind == "idle":
        return f"{sample.value:.1f} KiB/conn (RSS {d['rss_before_kib']:,} -> {d['rss_after_kib']:,} KiB)"
    if row.kind == "connect":
        return f"{d['connect_s']:.3f} s, {d['handshakes_per_s']:,.0f}/s, p99 {d['p99_us'] / 1000:.1f} ms"
    if row.kind == "churn":
        return f"{sample.value:,.0f} conn/s ({d['cycles']} cycles, {d['close_timeouts']} close timeouts)"
    return f"{d['all_s']:.3f} s, {d['deliveries_per_s']:,.0f} deliveries/s"


def value_cell(row: Row, cell: Cell | None) -> str:
    if cell is None:
        return "n/a"
    if cell.not_measurable:
        return "not measurable"
    value = cell.value
    if value is None:
        return cell.timed_out if cell.timed_out and row.kind == "connect" else "failed"
    if row.kind == "idle":
        text = f"{value:.1f}"
    elif row.kind in ("connect", "broadcast"):
        text = f"{value:.3f}"
    else:
        text = fmt_num(value)
    if row.kind == "echo":
        count = cell.data_median("messages")
        if count is not None and count < 50:  # a slow server: say what it did
            text += f" ({count:.0f} in {row.duration:g} s)"
    if cell.errors:
        text += f" ({len(cell.errors)} failed)"
    return text


def ratio(row: Row, a: Cell | None, b: Cell | None) -> str:
    va = a.value if a is not None else None
    vb = b.value if b is not None else None
    if va is None or vb is None or vb == 0:
        return "-"
    return f"{va / vb:.2f}x"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def machine_line(versions: dict[str, str]) -> str:
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    peers = ", ".join(f"{label} {version}" for label, version in versions.items())
    return (
        f"{model}, {cores} logical cores ({usable} usable), "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"Linux {platform.release()}, RLIMIT_NOFILE hard {hard}; {peers}; {date}"
    )


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
    for row in lockstep:
        parts = []
        for p in peers:
            c = cell(row, p.key)
            p50 = c.data_median("p50_us") if c else None
            p99 = c.data_median("p99_us") if c else None
            parts.append("-" if p50 is None or p99 is None else f"{p50:,.0f} / {p99:,.0f}")
        out.append(f"| {row.label} | " + " | ".join(parts) + " |")

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
    for row in bench.rows:
        parts = []
        for p in peers:
            c = cell(row, p.key)
            if c is None or not c.samples:
                parts.append("-")
            else:
                parts.append(f"{pct(c.median(lambda s: s.server_share))} / {pct(c.median(lambda s: s.loadgen_share))}")
        out.append(f"| {row.label} | " + " | ".join(parts) + " |")

    out += ["", "## Listen backlogs", ""]
    out += [
        "The backlog each server passed to `listen()` (`ss -ltn`, Send-Q): handshakes beyond it wait for a SYN "
        "retransmission (1 s, then 3 s, 7 s, ...), which the connect row shows.",
        "",
    ]
    for p in peers:
        backlog = bench.backlogs.get(p.key)
        out.append(f"- {p.label}: {'?' if backlog is None else backlog}")

    problems = [
        (row, p, c)
        for row in bench.rows
        for p in peers
        if (c := bench.cells.get((row.label, p.key))) is not None and (c.errors or c.not_measurable)
    ]
    if problems:
        out += ["", "## Failures and rows not measured", ""]
        for row, peer, c in problems:
            if c.not_measurable:
                out.append(f"- {peer.label}, {row.label}: not measurable: {c.not_measurable}")
            for error in c.errors:
                out.append(f"- {peer.label}, {row.label}, {error}")
    out.append("")
    return "\n".join(out)


# -- main ------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: every row, tiny durations, one repeat")
    parser.add_argument("--repeats", type=int, default=None, help="runs per echo row (default 5; heavy rows: 3)")
    parser.add_argument(
        "--peers",
        default=",".join(PEER_KEYS),
        help=f"comma-separated servers to run, of {', '.join(PEER_KEYS)} (default: all)",
    )
    parser.add_argument(
        "--only", default=None, help="run only the rows whose label contains this text (e.g. 'echo', 'idle')"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"markdown file to write (default {DEFAULT_OUTPUT.relative_to(ROOT)}; "
        "with --quick nothing is written unless given)",
    )
    args = parser.parse_args(argv)
    raw_argv = list(sys.argv[1:] if argv is None else argv)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    wanted = [k.strip() for k in args.peers.split(",") if k.strip()]
    unknown = set(wanted) - set(PEER_KEYS)
    if unknown:
        parser.error(f"unknown peer(s): {', '.join(sorted(unknown))}")
    if not LOADGEN.exists():
        raise SystemExit(f"{LOADGEN.relative_to(ROOT)} is not built: run bench/run_threaded.sh")

    peers: list[Peer] = []
    versions: dict[str, str] = {}
    missing: dict[str, str] = {}
    for peer in PEERS:
        if peer.key not in wanted:
            continue
        reason, version = probe_peer(peer)
        if reason is None:
            peers.append(peer)
            versions[peer.label if peer.key != "orig" else "ws4py (original)"] = version
        else:
            missing[peer.label] = reason
            log(f"warning: {peer.label} is not run: {reason}")
    if not peers:
        raise SystemExit("no server to run")

    echo_repeats = args.repeats if args.repeats is not None else (1 if args.quick else 5)
    heavy_repeats = min(echo_repeats, 1 if args.quick else 3)
    rows = echo_rows(args.quick, echo_repeats) + heavy_rows(args.quick, heavy_repeats)
    if args.only:
        rows = [r for r in rows if args.only in r.label]
        if not rows:
            parser.error(f"no row label contains {args.only!r}")

    machine = machine_line(versions)
    log(f"machine: {machine}")
    started = time.monotonic()

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    logdir = Path(tempfile.mkdtemp(prefix="ws4py-threaded-bench-"))
    try:
        bench = Bench(peers, rows, logdir, log)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
