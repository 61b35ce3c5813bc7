"""What the socket benchmarks share: peers and their server processes, the load generator, rows, samples, cells.

``bench/threaded_bench.py`` and ``bench/asyncio_bench.py`` import this module
(it sits next to them, so it is on ``sys.path`` when either runs). A peer is a
server script in its own virtualenv (or a compiled server); a row is one
load-generator invocation, measured on every peer; ``Bench`` runs the rows on
the peers, interleaved over the repeats, and keeps every sample in a ``Cell``
per row and peer, whose medians the reports show. ``bench/README.md`` explains
the method.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VENVS = BENCH_DIR / ".venvs"
SERVERS = BENCH_DIR / "servers"
LOADGEN = BENCH_DIR / "loadgen" / "build" / "loadgen"
C_ECHO = BENCH_DIR / "loadgen" / "build" / "c_echo"  # built from servers/c_echo.c by the run_*.sh scripts

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
    probe: str = ""  # module(s) that must import in the virtualenv: "picows" or "picows, uvloop"
    dist: str = ""  # distribution whose version the machine line shows
    fds_per_conn: int = 1  # descriptors the server holds per open connection (measured)
    binary: Path | None = None  # a compiled server, run as ``binary PORT [--broadcast]``, instead of a script
    extra_args: tuple[str, ...] = ()  # after the port, e.g. ("--uvloop",)
    max_echo_size: int | None = None  # a reference that serves only the echo rows up to this message size
    servers: Path = SERVERS  # the directory of ``script`` (bench/run_compare.sh: another revision's bench/servers)
    path: str = "/"  # the request path the load generator asks for (a framework may serve websockets on one path)
    only_kind: str | None = None  # a reference that serves only the rows of this kind ("churn")

    def runs(self, row: Row) -> bool:
        """Whether this peer takes part in ``row``."""
        if self.only_kind is not None:
            return row.kind == self.only_kind
        return self.max_echo_size is None or (row.kind == "echo" and row.size <= self.max_echo_size)

    @property
    def python(self) -> Path:
        return VENVS / self.venv / "bin" / "python"

    def argv(self, port: int) -> list[str]:
        if self.binary is not None:
            return [str(self.binary), str(port), *self.extra_args]
        return [str(self.python), str(self.servers / self.script), str(port), *self.extra_args]


def probe_peer(peer: Peer) -> tuple[str | None, str]:
    """(None, version) if the peer's server can run, else (reason, "")."""
    if peer.binary is not None:
        if not peer.binary.exists():
            built_by = "bench/run_threaded.sh and bench/run_asyncio.sh build it"
            return f"{peer.binary.relative_to(ROOT)} is not built ({built_by})", ""
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
            [str(peer.python), "-c", code], capture_output=True, text=True, timeout=60, cwd=peer.servers, check=False
        )
    except subprocess.TimeoutExpired:
        return f"importing {peer.probe} timed out", ""
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return f"cannot import {peer.probe}: {last}", ""
    return None, done.stdout.strip()


def dist_version(peer: Peer, dist: str) -> str | None:
    """The version of ``dist`` installed in the peer's virtualenv, if any (for the machine line)."""
    code = f"import importlib.metadata; print(importlib.metadata.version({dist!r}))"
    try:
        done = subprocess.run([str(peer.python), "-c", code], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


# -- processes -------------------------------------------------------------------------

_live: set[subprocess.Popen[Any]] = set()


def spawn(argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """Starts a process in its own session (its own process group), remembered until reaped."""
    proc: subprocess.Popen[Any] = subprocess.Popen(list(argv), start_new_session=True, **kwargs)
    _live.add(proc)
    return proc


def stop_process(proc: subprocess.Popen[Any]) -> None:
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
        stop_process(proc)


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
            self.proc = spawn(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self.peer.servers
            )
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
            stop_process(self.proc)
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


def run_loadgen(args: Sequence[str], timeout: float, cpu: int | None = None) -> dict[str, Any]:
    """Runs the load generator to the end (it stops itself after ``--timeout``); its JSON result.

    ``cpu``: the load generator runs on that CPU only.
    """
    argv = [str(LOADGEN), *args, "--timeout", f"{timeout:g}"]
    pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    proc = spawn(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=pin
    )
    try:
        out, err = proc.communicate(timeout=timeout + 20)
    except subprocess.TimeoutExpired as exc:
        raise MeasureError(f"load generator did not stop within {timeout + 20:.0f} s") from exc
    finally:
        stop_process(proc)
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
    # Server and load generator both on this CPU: the round trip without a cross-CPU wake-up.
    pin_cpu: int | None = None

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


#: The CPU of the one-CPU lockstep rows: the last one this process may use.
PIN_CPU = max(os.sched_getaffinity(0))


def lockstep_repeats(repeats: int) -> int:
    """Runs of a lockstep row for ``repeats`` of the others.

    One connection's round trips swing with where the scheduler wakes each
    side (the C echo server's own rate varies by a tenth between runs), and a
    run is short: more of them give a steadier median at little cost.
    """
    return 2 * repeats - 1


def pinned_lockstep_rows(quick: bool, repeats: int, sizes: Sequence[int] = (16, KIB)) -> list[Row]:
    """Lockstep at ``sizes`` (16 B and 1 KiB) with server and load generator on one CPU (see :func:`pinned`)."""
    warmup, duration = (0.05, 0.15) if quick else (0.3, 1.0)
    return [
        echo_row(1, 1, size, text, warmup, duration, 5.0, repeats, pin_cpu=PIN_CPU)
        for size in sizes
        for text in (True, False)
    ]


def echo_row(
    conns: int,
    inflight: int,
    size: int,
    text: bool,
    warmup: float,
    duration: float,
    drain: float,
    repeats: int,
    pin_cpu: int | None = None,
) -> Row:
    """Echo: every connection keeps ``inflight`` messages of ``size`` bytes in flight for ``duration`` s.

    ``pin_cpu``: server and load generator share that one CPU for the row (see :func:`pinned`).
    """
    kind = "text" if text else "binary"
    where = f"{conns} conn{'s' if conns > 1 else ''}, {inflight} in flight"
    if pin_cpu is not None:
        where += ", one CPU"
    return Row(
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
        pin_cpu=pin_cpu,
    )


def idle_row(conns: int, timeout: float, repeats: int) -> Row:
    """Idle memory: the server's RSS growth per connection, ``conns`` connections held open."""
    return Row(
        kind="idle",
        label=f"idle memory, {conns:,} connections",
        unit="KiB/conn ↓",
        higher_is_better=False,
        args=flags(mode="idle", conns=conns, concurrency=SETUP_CONCURRENCY, hold=300.0),
        conns=conns,
        timeout=timeout,
        repeats=repeats,
    )


def connect_row(conns: int, concurrency: int, timeout: float, repeats: int) -> Row:
    """The time until ``conns`` clients are open, ``concurrency`` handshakes in flight."""
    return Row(
        kind="connect",
        label=f"connect {conns:,} clients, {concurrency} handshakes in flight",
        unit="s ↓",
        higher_is_better=False,
        args=flags(mode="connect", conns=conns, concurrency=concurrency),
        conns=conns,
        timeout=timeout,
        repeats=repeats,
    )


def churn_row(warmup: float, duration: float, repeats: int) -> Row:
    """Connect, handshake, close, over and over, ``SETUP_CONCURRENCY`` at a time: cycles/s."""
    return Row(
        kind="churn",
        label=f"handshake + close, {SETUP_CONCURRENCY} in flight",
        unit="conn/s ↑",
        higher_is_better=True,
        args=flags(mode="churn", concurrency=SETUP_CONCURRENCY, warmup=warmup, duration=duration),
        conns=SETUP_CONCURRENCY,
        timeout=60,
        repeats=repeats,
        duration=duration,
    )


def broadcast_row(conns: int, settle: float, timeout: float, repeats: int) -> Row:
    """The time from "go" until each of ``conns`` clients has 100 messages of 64 B (a ``--broadcast`` server)."""
    return Row(
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
            settle=settle,
        ),
        conns=conns,
        timeout=timeout,
        repeats=repeats,
    )


# -- measuring -------------------------------------------------------------------------


@dataclass
class Sample:
    value: float
    data: dict[str, Any]
    server_share: float | None = None  # CPU seconds per second during the measured interval
    loadgen_share: float | None = None
    repeat: int | None = None  # the repeat it was measured in (set by Bench.record)


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
    path = [] if server.peer.path == "/" else ["--path", server.peer.path]
    return [*row.args, *path, "--port", str(server.port), "--pid", str(server.pid)]


def measure_idle(row: Row, server: Server) -> Sample:
    time.sleep(0.5)
    before = server.rss_kib()
    argv = [str(LOADGEN), *loadgen_args(row, server), "--timeout", f"{row.timeout:g}"]
    proc = spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
        stop_process(proc)
    data["rss_before_kib"] = before
    data["rss_after_kib"] = after
    return sample_from(row, data, (after - before) / row.conns)


def measure(row: Row, server: Server) -> Sample:
    try:
        return _measure(row, server)
    except MeasureError as exc:
        state = "still running" if server.alive() else f"exited with status {server.proc and server.proc.poll()}"
        raise MeasureError(f"{exc} [server {state}; its log: {server.log_tail()}]", exc.data) from exc


@contextlib.contextmanager
def pinned(pid: int, cpu: int | None) -> Iterator[None]:
    """Every thread of ``pid`` on ``cpu`` for the duration, then back on every CPU.

    A lockstep round trip on a VM is dominated by waking the other side's
    idle virtual CPU (tens of microseconds, the same for a C server as for a
    Python one); with both sides on one CPU it is the servers' own work.
    """
    if cpu is None:
        yield
        return
    everywhere = os.sched_getaffinity(pid)
    tids = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    for tid in tids:
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(tid, {cpu})
    try:
        yield
    finally:
        for tid in tids:
            with contextlib.suppress(ProcessLookupError):
                os.sched_setaffinity(tid, everywhere)


def _measure(row: Row, server: Server) -> Sample:
    if row.kind == "idle":
        return measure_idle(row, server)
    with pinned(server.pid, row.pin_cpu):
        data = run_loadgen(loadgen_args(row, server), row.timeout, row.pin_cpu)
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
    label_width: int = 20  # of the peer labels in the progress lines
    by_row: bool = False  # the order of the runs: see run()

    def cell(self, row: Row, peer: Peer) -> Cell:
        return self.cells.setdefault((row.label, peer.key), Cell())

    def record(self, row: Row, peer: Peer, repeat: int, run: Callable[[], Sample]) -> Sample | None:
        """Runs one measurement and keeps its sample; None if the row is not run (timed out before, or not
        measurable); a failure is kept too, and raised."""
        cell = self.cell(row, peer)
        if cell.timed_out:
            self.log(f"  {peer.label:<{self.label_width}} {row.label}: skipped (timed out before)")
            return None
        problem = fd_problem(row, peer)
        if problem is not None:
            cell.not_measurable = problem
            self.log(f"  {peer.label:<{self.label_width}} {row.label}: not measurable ({problem})")
            return None
        try:
            sample = run()
        except MeasureError as exc:
            cell.errors.append(f"repeat {repeat + 1}: {exc}")
            if exc.timed_out and exc.data is not None:
                cell.timed_out = f"> {row.timeout:g} s ({exc.data.get('opened', 0):,} of {row.conns:,} connected)"
            self.log(f"  {peer.label:<{self.label_width}} {row.label}: FAILED: {exc}")
            raise
        sample.repeat = repeat
        cell.samples.append(sample)
        self.log(f"  {peer.label:<{self.label_width}} {row.label}: {describe(row, sample)}")
        return sample

    def run_echo_row(self, peer: Peer, row: Row, repeat: int, server: Server | None) -> Server | None:
        """One run of an echo row on ``server`` (a new one if None); the server for the peer's next echo row,
        None if this one had to go (a server that does not start is a failure of the row)."""

        def once() -> Sample:
            nonlocal server
            if server is None:
                server = Server(peer, self.logdir)
                server.start()
                if peer.key not in self.backlogs:
                    self.backlogs[peer.key] = server.listen_backlog()
            return measure(row, server)

        try:
            sample = self.record(row, peer, repeat, once)
        except MeasureError:
            if server is not None:
                server.stop()
            return None
        if server is None:
            return None
        if (sample is not None and not sample.data.get("drained", True)) or not server.alive():
            server.stop()  # still busy with the last row's messages: the next row gets a fresh server
            return None
        return server

    def run_echo_rows(self, peer: Peer, rows: list[Row], repeat: int) -> None:
        server: Server | None = None
        try:
            for row in rows:
                server = self.run_echo_row(peer, row, repeat, server)
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
        """Every row on every peer, interleaved: by peer (the default) or by row (``by_row``)."""
        if self.by_row:
            self.run_by_row()
        else:
            self.run_by_peer()

    def run_by_peer(self) -> None:
        """For each repeat, the peers take turns: all the echo rows of a peer on one server, then each heavy row
        on a fresh one."""
        echo = [r for r in self.rows if r.kind == "echo"]
        heavy = [r for r in self.rows if r.kind != "echo"]
        rounds = max(r.repeats for r in self.rows)
        for repeat in range(rounds):
            for peer in self.peers:
                self.log(f"[repeat {repeat + 1}/{rounds}] {peer.label}")
                self.run_echo_rows(peer, [r for r in echo if repeat < r.repeats and peer.runs(r)], repeat)
                for row in heavy:
                    if repeat < row.repeats and peer.runs(row):
                        self.run_heavy_row(peer, row, repeat)

    def run_by_row(self) -> None:
        """One row after the other, in the order of ``rows``; for each, its repeats, and in each repeat the
        peers that run the row take turns, in their order (bench/run_compare.sh: before, after, before, after...).
        An echo row runs on the server the peer kept from its previous echo row (a fresh one after a failure or
        a row it did not drain), which stops after the peer's last echo row; any other row gets a fresh server
        for every run."""
        last_echo = {p.key: i for i, r in enumerate(self.rows) for p in self.peers if r.kind == "echo" and p.runs(r)}
        servers: dict[str, Server] = {}
        try:
            for i, row in enumerate(self.rows):
                started = time.monotonic()
                peers = [p for p in self.peers if p.runs(row)]
                for repeat in range(row.repeats):
                    self.log(f"[{row.label}: repeat {repeat + 1}/{row.repeats}]")
                    for peer in peers:
                        if row.fresh_server:
                            self.run_heavy_row(peer, row, repeat)
                            continue
                        server = self.run_echo_row(peer, row, repeat, servers.pop(peer.key, None))
                        if server is not None:
                            servers[peer.key] = server
                for key in [k for k in servers if last_echo[k] <= i]:
                    servers.pop(key).stop()
                self.log(f"[{row.label}: {time.monotonic() - started:.0f} s]")
        finally:
            for server in servers.values():
                server.stop()


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


# The tables every report has, a line per row: ``cell(row, key)`` is the report's cell lookup.
CellOf = Callable[[Row, str], Cell | None]


def round_trip_line(row: Row, peers: Sequence[Peer], cell: CellOf) -> str:
    """A lockstep row of the round-trip table: per peer, the medians of each run's p50 / p99 (µs)."""
    parts = []
    for p in peers:
        c = cell(row, p.key)
        p50 = c.data_median("p50_us") if c else None
        p99 = c.data_median("p99_us") if c else None
        parts.append("-" if p50 is None or p99 is None else f"{p50:,.0f} / {p99:,.0f}")
    return f"| {row.label} | " + " | ".join(parts) + " |"


def cpu_line(row: Row, peers: Sequence[Peer], cell: CellOf) -> str:
    """A row of the CPU table: per peer, the server's and the load generator's share of one core."""
    parts = []
    for p in peers:
        c = cell(row, p.key)
        if c is None or not c.samples:
            parts.append("-")
        else:
            parts.append(f"{pct(c.median(lambda s: s.server_share))} / {pct(c.median(lambda s: s.loadgen_share))}")
    return f"| {row.label} | " + " | ".join(parts) + " |"


def failure_lines(bench: Bench, peers: Sequence[Peer]) -> list[str]:
    """A line per error or unmeasurable cell of ``peers`` (none when every cell was measured)."""
    out = []
    for row in bench.rows:
        for peer in peers:
            c = bench.cells.get((row.label, peer.key))
            if c is None:
                continue
            if c.not_measurable:
                out.append(f"- {peer.label}, {row.label}: not measurable: {c.not_measurable}")
            out += [f"- {peer.label}, {row.label}, {error}" for error in c.errors]
    return out


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


# -- main ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Suite:
    """What a benchmark script gives ``run_main``: its peers, its rows and its report."""

    description: str  # the script's docstring, for --help
    tmp_prefix: str  # of the directory that holds the server logs during the run
    peers: Sequence[Peer]  # every peer, in the order of the columns
    default_peers: Sequence[str]  # the keys run when --peers is not given
    default_output: Path
    default_repeats: int  # echo rows; --quick: 1
    heavy_repeats: int  # at most this many for the other rows; --quick: 1
    make_rows: Callable[[bool, int, int], list[Row]]  # (quick, echo repeats, heavy repeats)
    render: Callable[[Bench, str, dict[str, str], bool, Sequence[str]], str]  # (bench, machine, missing, quick, argv)
    versions: Callable[[list[tuple[Peer, str]]], dict[str, str]]  # the machine line's versions, from the probes
    label_width: int = 20
    by_row: bool = False  # interleave by row rather than by peer (``Bench.run``)


def run_main(suite: Suite, argv: Sequence[str] | None = None) -> int:
    """Parses the command line, probes the peers, runs the rows, prints the report and writes it."""
    peer_keys = [p.key for p in suite.peers]
    parser = argparse.ArgumentParser(
        description=suite.description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: every row, tiny durations, one repeat")
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=f"runs per echo row (default {suite.default_repeats}; heavy rows: {suite.heavy_repeats})",
    )
    left_out = [k for k in peer_keys if k not in suite.default_peers]
    parser.add_argument(
        "--peers",
        default=",".join(suite.default_peers),
        help=f"comma-separated servers to run, of {', '.join(peer_keys)} (default: all"
        + (f" but {', '.join(left_out)}" if left_out else "")
        + ")",
    )
    parser.add_argument(
        "--only",
        "--rows",
        dest="only",
        action="append",
        default=None,
        metavar="TEXT",
        help="run only the rows whose label contains this text (e.g. 'echo', 'idle'); repeat it for the rows that "
        "contain any of the texts",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"markdown file to write (default {suite.default_output.relative_to(ROOT)}; "
        "with --quick nothing is written unless given)",
    )
    args = parser.parse_args(argv)
    raw_argv = list(sys.argv[1:] if argv is None else argv)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    wanted = [k.strip() for k in args.peers.split(",") if k.strip()]
    unknown = set(wanted) - set(peer_keys)
    if unknown:
        parser.error(f"unknown peer(s): {', '.join(sorted(unknown))}")
    if not LOADGEN.exists():
        raise SystemExit(f"{LOADGEN.relative_to(ROOT)} is not built: run bench/run_threaded.sh or bench/run_asyncio.sh")

    peers: list[Peer] = []
    probed: list[tuple[Peer, str]] = []
    missing: dict[str, str] = {}
    for peer in suite.peers:
        if peer.key not in wanted:
            continue
        reason, version = probe_peer(peer)
        if reason is None:
            peers.append(peer)
            probed.append((peer, version))
        else:
            missing[peer.label] = reason
            log(f"warning: {peer.label} is not run: {reason}")
    if not peers:
        raise SystemExit("no server to run")

    echo_repeats = args.repeats if args.repeats is not None else (1 if args.quick else suite.default_repeats)
    heavy_repeats = min(echo_repeats, 1 if args.quick else suite.heavy_repeats)
    rows = suite.make_rows(args.quick, echo_repeats, heavy_repeats)
    if args.only:
        rows = [r for r in rows if any(text in r.label for text in args.only)]
        if not rows:
            parser.error(f"no row label contains {' or '.join(map(repr, args.only))}")

    machine = machine_line(suite.versions(probed))
    log(f"machine: {machine}")
    started = time.monotonic()

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    logdir = Path(tempfile.mkdtemp(prefix=suite.tmp_prefix))
    try:
        bench = Bench(peers, rows, logdir, log, label_width=suite.label_width, by_row=suite.by_row)
        bench.run()
    finally:
        kill_all()
        shutil.rmtree(logdir, ignore_errors=True)
    log(f"done in {time.monotonic() - started:.0f} s")

    report = suite.render(bench, machine, missing, args.quick, raw_argv)
    print(report)
    output = args.output if args.output is not None else (None if args.quick else suite.default_output)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(report, encoding="utf-8")
        log(f"wrote {output}")
    return 0
