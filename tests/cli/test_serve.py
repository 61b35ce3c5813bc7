"""``python -m ws4py serve``: errors, workers replaced, SIGTERM's 1001 and exit 0, the threaded stack, TLS."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import ssl
import time
from pathlib import Path

import pytest
import trustme
from cli_support import Command, free_port, kill_pid, run, serve

from ws4py.asyncio import ClientConnection, connect
from ws4py.cli import build_parser, main
from ws4py.exc import ConnectionClosed

#: Seconds for one client step (connect, a reply, a close) before the test fails.
STEP = 10.0


def test_help_lists_the_commands() -> None:
    done = run("--help")
    assert done.returncode == 0
    for command in ("serve", "connect", "publish"):
        assert re.search(rf"^\s+{command}\s", done.stdout, re.MULTILINE), done.stdout


@pytest.mark.parametrize("command", ["serve", "connect", "publish"])
def test_each_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit:
        build_parser().parse_args([command, "--help"])
    assert exit.value.code == 0
    assert f"python -m ws4py {command}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("cli_apps", "expected MODULE:ATTR"),
        ("no_such_module:app", "cannot import 'no_such_module': no module named 'no_such_module'"),
        ("cli_apps:missing", "module 'cli_apps' has no attribute 'missing'"),
        ("cli_apps:PidEchoWebSocket", "is a threaded WebSocket class: serve it with --threaded"),
        ("cli_apps:not_async", "is not an async def handler(connection), nor a factory without arguments"),
    ],
)
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_bad_app_is_a_clear_error(
    spec: str, message: str, workers: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(Path(__file__).parent)
    assert main(["serve", spec, "--port", str(free_port()), "--workers", workers]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "options",
    [["cli_apps:pid_echo"], ["cli_apps:pid_echo", "--workers", "2"], ["cli_apps:PidEchoWebSocket", "--threaded"]],
)
def test_a_port_in_use_is_a_clear_error(
    options: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(Path(__file__).parent)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", *options, "--port", str(port)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}: the address is in use" in capsys.readouterr().err


async def _clients(port: int, count: int, *, secure: ssl.SSLContext | None = None) -> dict[int, list[ClientConnection]]:
    """``count`` clients, by the pid of the worker that answers them."""
    by_pid: dict[int, list[ClientConnection]] = {}
    scheme = "wss" if secure else "ws"
    for _ in range(count):
        conn = await asyncio.wait_for(connect(f"{scheme}://127.0.0.1:{port}/", ssl=secure), STEP)
        assert isinstance(conn, ClientConnection)
        await conn.send("hi")
        pid, _, text = str(await asyncio.wait_for(conn.recv(), STEP)).partition(" ")
        assert text == "hi"
        by_pid.setdefault(int(pid), []).append(conn)
    return by_pid


async def _spread_over(port: int, workers: int) -> dict[int, list[ClientConnection]]:
    # SO_REUSEPORT spreads connections by a hash of their addresses: connect until every worker has some.
    by_pid: dict[int, list[ClientConnection]] = {}
    for _ in range(20):
        for pid, conns in (await _clients(port, 4)).items():
            by_pid.setdefault(pid, []).extend(conns)
        if len(by_pid) == workers:
            return by_pid
    raise AssertionError(f"40 connections all went to {list(by_pid)}")


async def _close_code(conn: ClientConnection) -> int | None:
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(conn.recv(), STEP)
    return conn.close_code


def test_a_killed_worker_is_replaced_and_its_clients_can_reconnect() -> None:
    port = free_port()
    server = serve("cli_apps:pid_echo", "--port", str(port), "--workers", "2", "--close-timeout", "2")
    try:
        ready = {int(m.group(1)) for m in server.wait_for(r"worker (\d+) ready", count=2)}

        async def scenario() -> None:
            by_pid = await _spread_over(port, 2)
            assert set(by_pid) == ready
            victim, survivor = sorted(by_pid)
            kill_pid(victim)
            for conn in by_pid[victim]:
                assert await _close_code(conn) == 1006  # cut off: no closing handshake from a dead process
            server.wait_for(rf"worker {victim} killed by signal 9; starting another")
            replacement = int(server.wait_for(r"worker (\d+) ready", count=3)[2].group(1))
            assert replacement not in (victim, survivor)
            # The clients of the dead worker come back; every one is answered, by the living workers only.
            again = await _spread_over(port, 2)
            assert set(again) == {survivor, replacement}
            for conn in [
                *(c for conns in by_pid.values() for c in conns),
                *(c for conns in again.values() for c in conns),
            ]:
                await conn.close()

        asyncio.run(scenario())
        assert server.stop() == 0
    finally:
        server.close()


def test_sigterm_closes_every_connection_with_1001_and_exits_0() -> None:
    port = free_port()
    server = serve("cli_apps:pid_echo", "--port", str(port), "--workers", "2", "--close-timeout", "2")
    try:

        async def scenario() -> None:
            by_pid = await _spread_over(port, 2)
            server.process.send_signal(signal.SIGTERM)
            conns = [conn for group in by_pid.values() for conn in group]
            codes = await asyncio.gather(*map(_close_code, conns))
            assert set(codes) == {1001}, codes

        asyncio.run(scenario())
        assert server.stop() == 0
        assert "ws4py serve: stopped" in server.output
    finally:
        server.close()


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its new parent to reap it does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("app", [["cli_apps:pid_echo"], ["cli_apps:PidEchoWebSocket", "--threaded"]])
def test_workers_end_when_their_supervisor_is_killed(app: list[str]) -> None:
    server = serve(*app, "--port", str(free_port()), "--workers", "2")
    try:
        workers = [int(m.group(1)) for m in server.wait_for(r"worker (\d+) ready", count=2)]
        kill_pid(server.process.pid)
        deadline = time.monotonic() + STEP
        while any(map(_running, workers)):
            assert time.monotonic() < deadline, "workers outlived their supervisor"
            time.sleep(0.02)
    finally:
        server.close()


def test_a_worker_that_dies_at_once_is_restarted_with_growing_back_off() -> None:
    server = Command("serve", "cli_apps:DiesAtStartup", "--port", str(free_port()), "--workers", "2")
    try:
        delays = [float(m.group(1)) for m in server.wait_for(r"starting another in ([\d.]+) s", count=6)]
        # Two slots, each waiting twice as long after each quick death: 0.25, 0.5, 1.0 s...
        assert sorted(delays) == [0.25, 0.25, 0.5, 0.5, 1.0, 1.0]
        assert "this application cannot start" in server.output
        assert server.stop() == 0
    finally:
        server.close()


def test_threaded_serve_answers_and_closes_with_1001_on_sigterm() -> None:
    port = free_port()
    server = serve("cli_apps:PidEchoWebSocket", "--threaded", "--port", str(port), "--close-timeout", "2")
    try:
        assert "(threaded, pid" in server.output

        async def scenario() -> None:
            by_pid = await _clients(port, 3)
            assert list(by_pid) == [server.process.pid]
            server.process.send_signal(signal.SIGTERM)
            assert {await _close_code(conn) for conn in by_pid[server.process.pid]} == {1001}

        asyncio.run(scenario())
        assert server.stop() == 0
    finally:
        server.close()


def test_tls_serve_with_a_certificate_file(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, cafile = tmp_path / "server.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    ca.cert_pem.write_to_path(str(cafile))
    port = free_port()
    server = serve("cli_apps:pid_echo", "--port", str(port), "--certfile", str(certfile))
    try:
        assert f"wss://127.0.0.1:{port}/" in server.output
        client_context = ssl.create_default_context(cafile=str(cafile))

        async def scenario() -> None:
            by_pid = await _clients(port, 1, secure=client_context)
            await by_pid[server.process.pid][0].close()

        asyncio.run(scenario())
        assert server.stop() == 0
    finally:
        server.close()
