"""The asyncio examples (the "Patterns" page's handlers, the "Server" page's asyncio snippet
and a client), each run as its reader runs it: a subprocess on a free port, stopped with Ctrl-C.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import connect as websockets_connect

from ws4py.asyncio import ConnectionClosedOK, connect

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
EXIT_TIMEOUT = 5.0


def _free_port() -> int:
    """A port free on 127.0.0.1 and ::1 and on the wildcard addresses (the examples bind "localhost" or "")."""
    for _ in range(20):
        with socket.socket() as probe:
            probe.bind(("0.0.0.0", 0))
            port: int = probe.getsockname()[1]
            if not socket.has_ipv6:
                return port
            try:
                with socket.socket(socket.AF_INET6) as probe6:
                    probe6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    probe6.bind(("::", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port found")


class Example:
    """One example running in a subprocess; its output lines are collected as they come."""

    def __init__(self, name: str, *args: str) -> None:
        self.name = name
        env = dict(os.environ, PYTHONUNBUFFERED="1")  # the seed snippet's print() has no flush
        self.proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / name), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            # Ctrl-C must reach the example even when this run ignores SIGINT (a background job).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: object, lines: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.stdout) + "\n--- stderr ---\n" + "\n".join(self.stderr)

    def count(self, text: str) -> int:
        return sum(text in line for line in list(self.stdout))

    async def wait_for(self, text: str, times: int = 1, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count(text) < times:
            if self.proc.poll() is not None and not any(reader.is_alive() for reader in self._readers):
                raise AssertionError(f"{self.name} exited ({self.proc.returncode}):\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name}: no {text!r} (x{times}) within {timeout}s:\n{self.output()}")
            await asyncio.sleep(0.02)

    async def wait_exit(self, timeout: float = EXIT_TIMEOUT) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} still running {timeout}s later:\n{self.output()}")
            await asyncio.sleep(0.02)
        for reader in self._readers:
            reader.join(5)
        return self.proc.returncode

    async def interrupt(self, timeout: float = EXIT_TIMEOUT) -> None:
        """Ctrl-C: the example must exit 0 within ``timeout``, with nothing on stderr."""
        self.proc.send_signal(signal.SIGINT)
        assert await self.wait_exit(timeout) == 0, self.output()
        assert self.stderr == [], self.output()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def run_example() -> Iterator[Callable[..., Example]]:
    started: list[Example] = []

    def start(name: str, *args: str) -> Example:
        example = Example(name, *args)
        started.append(example)
        return example

    yield start
    for example in started:
        example.kill()


async def _start_server(run_example: Callable[..., Example], name: str) -> tuple[Example, str]:
    port = _free_port()
    server = run_example(name, str(port))
    await server.wait_for("serving on")
    return server, f"ws://127.0.0.1:{port}/"


# -- Consumer ---------------------------------------------------------------------


@pytest.mark.parametrize("client", ["ws4py", "websockets"])
def test_consumer_prints_every_message_and_stops_on_ctrl_c(run_example: Callable[..., Example], client: str) -> None:
    async def scenario() -> None:
        server, uri = await _start_server(run_example, "asyncio_consumer.py")
        if client == "ws4py":
            # A client that leaves: the handler's iteration ends and the connection closes with 1000.
            async with connect(uri) as websocket:
                await websocket.send("héllo")
                await websocket.send(b"\x00\xff")
                await server.wait_for("received: 'héllo'")
                await server.wait_for("received: b'\\x00\\xff'")
            assert websocket.close_code == 1000
            # A client still there at Ctrl-C: closed with 1001 (going away).
            async with connect(uri) as websocket:
                await websocket.send("still here")
                await server.wait_for("received: 'still here'")
                server.proc.send_signal(signal.SIGINT)
                with pytest.raises(ConnectionClosedOK):
                    await asyncio.wait_for(websocket.recv(), EXIT_TIMEOUT)
                assert websocket.close_code == 1001
        else:
            async with websockets_connect(uri) as other:
                await other.send("héllo")
                await other.send(b"\x00\xff")
                await server.wait_for("received: 'héllo'")
                await server.wait_for("received: b'\\x00\\xff'")
                server.proc.send_signal(signal.SIGINT)
                with pytest.raises(websockets.ConnectionClosedOK):
                    await asyncio.wait_for(other.recv(), EXIT_TIMEOUT)
                assert other.close_code == 1001
        assert await server.wait_exit() == 0, server.output()
        assert server.stderr == [], server.output()
        if client == "ws4py":
            assert server.stdout[1:] == ["received: 'héllo'", "received: b'\\x00\\xff'", "received: 'still here'"]

    asyncio.run(scenario())


# -- Producer ---------------------------------------------------------------------


def _tick_numbers(messages: Sequence[object]) -> list[int]:
    numbers = []
    for message in messages:
        assert isinstance(message, str)
        match = re.fullmatch(r"tick (\d+)", message)
        assert match, message
        numbers.append(int(match[1]))
    return numbers


def test_producer_sends_ticks_until_the_client_leaves(run_example: Callable[..., Example]) -> None:
    async def scenario() -> None:
        server, uri = await _start_server(run_example, "asyncio_producer.py")
        async with connect(uri) as websocket:
            messages = [await asyncio.wait_for(websocket.recv(), 2) for _ in range(3)]
        assert _tick_numbers(messages) == [1, 2, 3]
        assert websocket.close_code == 1000
        await asyncio.sleep(0.5)  # the handler's next send fails: a normal end, nothing logged
        async with websockets_connect(uri) as other:
            first = _tick_numbers([await asyncio.wait_for(other.recv(), 2)])[0]
            assert first > 3
            server.proc.send_signal(signal.SIGINT)
            with pytest.raises(websockets.ConnectionClosedOK):
                while True:  # ticks, then the server's close
                    _tick_numbers([await asyncio.wait_for(other.recv(), EXIT_TIMEOUT)])
            assert other.close_code == 1001
        assert await server.wait_exit() == 0, server.output()
        assert server.stderr == [], server.output()

    asyncio.run(scenario())


# -- Consumer and producer ------------------------------------------------------------


@pytest.mark.parametrize("variant", ["gather", "wait"])
def test_consumer_and_producer_run_together(run_example: Callable[..., Example], variant: str) -> None:
    async def scenario() -> None:
        server, uri = await _start_server(run_example, f"asyncio_consumer_producer_{variant}.py")
        async with connect(uri) as websocket:
            await websocket.send("hello")
            messages = [await asyncio.wait_for(websocket.recv(), 2) for _ in range(2)]
            await server.wait_for("received: 'hello'")
            await websocket.send(b"\x01")
            await server.wait_for("received: b'\\x01'")
            # Leave just after a tick, while the producer sleeps: with wait(), a producer
            # whose send failed at the same moment would end with an unretrieved exception.
            messages.append(await asyncio.wait_for(websocket.recv(), 2))
        assert _tick_numbers(messages) == [1, 2, 3]
        assert websocket.close_code == 1000
        if variant == "wait":
            # The consumer's task ended with the client: the producer's is cancelled at once.
            await server.wait_for("producer cancelled", timeout=1)
        else:
            # gather cancels nothing: the producer runs on until its next send fails.
            await asyncio.sleep(0.6)
            assert server.count("producer cancelled") == 0, server.output()

        # Ctrl-C with a client connected: it is closed with 1001 and the server exits.
        async with connect(uri) as websocket:
            await asyncio.wait_for(websocket.recv(), 2)
            server.proc.send_signal(signal.SIGINT)
            with pytest.raises(ConnectionClosedOK):
                while True:
                    await asyncio.wait_for(websocket.recv(), EXIT_TIMEOUT)
            assert websocket.close_code == 1001
        assert await server.wait_exit() == 0, server.output()
        assert server.stderr == [], server.output()
        assert server.count("producer cancelled") == (2 if variant == "wait" else 0), server.output()

    asyncio.run(scenario())


# -- Registration -------------------------------------------------------------------


def test_registration_broadcasts_hello_to_every_connected_client(run_example: Callable[..., Example]) -> None:
    async def scenario() -> None:
        server, uri = await _start_server(run_example, "asyncio_registration_broadcast.py")
        received: dict[str, list[object]] = {"a": [], "b": [], "c": []}

        async def hellos(name: str, count: int) -> None:
            while len(received[name]) < count:
                received[name].append(await asyncio.wait_for(clients[name].recv(), 2))

        clients = {"a": await connect(uri)}
        await hellos("a", 1)  # registered, then broadcast to the connected set: itself
        clients["b"] = await connect(uri)
        await asyncio.gather(hellos("a", 2), hellos("b", 1))
        connected_at = time.monotonic()
        clients["c"] = await websockets_connect(uri)  # type: ignore[assignment]
        await asyncio.gather(hellos("a", 3), hellos("b", 2), hellos("c", 1))
        assert received == {"a": ["Hello!"] * 3, "b": ["Hello!"] * 2, "c": ["Hello!"]}

        # Ctrl-C: every client is closed with 1001 at once; the server exits when the
        # handlers, which do not watch their connection, end their 10 s sleep.
        server.proc.send_signal(signal.SIGINT)
        for websocket in clients.values():
            with pytest.raises((ConnectionClosedOK, websockets.ConnectionClosedOK)):
                await asyncio.wait_for(websocket.recv(), 2)
            assert websocket.close_code == 1001
        assert await server.wait_exit(connected_at + 10 + EXIT_TIMEOUT - time.monotonic()) == 0, server.output()
        assert server.stderr == [], server.output()
        assert time.monotonic() - connected_at > 9, "the handlers' sleep(10) was cut short"

    asyncio.run(scenario())


# -- The "Server" page's asyncio snippet ----------------------------------------------


def test_tulip_echo_server_echoes_text_and_binary(run_example: Callable[..., Example]) -> None:
    async def scenario() -> None:
        server, uri = await _start_server(run_example, "tulip_echo_server.py")
        assert re.fullmatch(r"serving on \(.*, \d+.*\)", server.stdout[0]), server.output()
        async with connect(uri) as websocket:
            await websocket.send("héllo")
            assert await asyncio.wait_for(websocket.recv(), 2) == "héllo"
            await websocket.send(b"\x00\xff" * 1000)
            assert await asyncio.wait_for(websocket.recv(), 2) == b"\x00\xff" * 1000
        assert websocket.close_code == 1000
        async with websockets_connect(uri) as other:
            await other.send("héllo")
            assert await asyncio.wait_for(other.recv(), 2) == "héllo"
            await other.send(bytes(range(256)))
            assert await asyncio.wait_for(other.recv(), 2) == bytes(range(256))
        assert other.close_code == 1000
        await server.interrupt()

    asyncio.run(scenario())


def test_tulip_echo_server_exits_on_ctrl_c_with_a_client_connected(run_example: Callable[..., Example]) -> None:
    async def scenario() -> None:
        server, uri = await _start_server(run_example, "tulip_echo_server.py")
        async with connect(uri, close_timeout=1) as websocket:
            await websocket.send("héllo")
            assert await asyncio.wait_for(websocket.recv(), 2) == "héllo"
            await server.interrupt()
        # The snippet stops its loop and closes the listening socket, not the connections.
        assert websocket.close_code == 1006

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "name",
    [
        "asyncio_consumer.py",
        "asyncio_producer.py",
        "asyncio_consumer_producer_gather.py",
        "asyncio_consumer_producer_wait.py",
        "asyncio_registration_broadcast.py",
        "tulip_echo_server.py",
    ],
)
def test_servers_exit_cleanly_on_sigterm(run_example: Callable[..., Example], name: str) -> None:
    async def scenario() -> None:
        server, _ = await _start_server(run_example, name)
        server.proc.send_signal(signal.SIGTERM)
        assert await server.wait_exit() == 0, server.output()
        assert server.stderr == [], server.output()

    asyncio.run(scenario())


# -- The client ---------------------------------------------------------------------


def test_client_example_talks_to_the_consumer_producer_server(run_example: Callable[..., Example]) -> None:
    async def scenario() -> None:
        server, uri = await _start_server(run_example, "asyncio_consumer_producer_gather.py")
        client = run_example("asyncio_client.py", uri, "3")
        assert await client.wait_exit() == 0, client.output()
        assert client.stdout == ["< tick 1", "< tick 2", "< tick 3", "closed: 1000"], client.output()
        assert client.stderr == [], client.output()
        await server.wait_for("received: 'Hello world!'")

        # Without a count it prints until Ctrl-C, then closes the connection and exits 0.
        client = run_example("asyncio_client.py", uri)
        await client.wait_for("< tick", times=2)
        await client.interrupt()
        await server.wait_for("received: 'Hello world!'", times=2)
        await server.interrupt()

    asyncio.run(scenario())


# -- The echo tutorial ----------------------------------------------------------------


def test_tutorial_echo_server_and_client_talk_and_stop_on_ctrl_c(run_example: Callable[..., Example]) -> None:
    async def scenario() -> None:
        server, uri = await _start_server(run_example, "tutorial_echo_server.py")
        client = run_example("tutorial_echo_client.py", uri, "hello", "how are you?")
        assert await client.wait_exit() == 0, client.output()
        assert client.stdout == ["< hello", "< how are you?", "closed: 1000"], client.output()
        assert client.stderr == [], client.output()
        async with connect(uri) as websocket:  # binary comes back as binary
            await websocket.send(b"\x00\xff")
            assert await asyncio.wait_for(websocket.recv(), 2) == b"\x00\xff"
            server.proc.send_signal(signal.SIGINT)
            with pytest.raises(ConnectionClosedOK):
                await asyncio.wait_for(websocket.recv(), EXIT_TIMEOUT)
            assert websocket.close_code == 1001
        assert await server.wait_exit() == 0, server.output()
        assert server.stderr == [], server.output()

    asyncio.run(scenario())


def test_tutorial_echo_handler_runs_under_the_command_line(run_example: Callable[..., Example]) -> None:
    async def scenario() -> None:
        port = _free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "ws4py", "serve", "examples.tutorial_echo_server:echo", "--port", str(port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + EXIT_TIMEOUT
            while True:
                try:
                    websocket = await connect(f"ws://127.0.0.1:{port}/")
                    break
                except OSError:
                    assert proc.poll() is None and time.monotonic() < deadline, "serve did not come up"
                    await asyncio.sleep(0.05)
            await websocket.send("through python -m ws4py serve")
            assert await asyncio.wait_for(websocket.recv(), 2) == "through python -m ws4py serve"
            await websocket.close()
            proc.send_signal(signal.SIGINT)
            assert proc.wait(EXIT_TIMEOUT) == 0, proc.stderr.read() if proc.stderr else ""
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    asyncio.run(asyncio.wait_for(scenario(), 15))


# -- The reconnecting client ------------------------------------------------------------


async def _wait_stderr(example: Example, text: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in line for line in list(example.stderr)):
        if time.monotonic() > deadline or example.proc.poll() is not None:
            raise AssertionError(f"{example.name}: no {text!r} on stderr:\n{example.output()}")
        await asyncio.sleep(0.02)


def test_reconnecting_client_rides_out_a_server_restart_and_a_crash(run_example: Callable[..., Example]) -> None:
    async def scenario() -> None:
        port = _free_port()
        uri = f"ws://127.0.0.1:{port}/"
        client = run_example("reconnecting_client.py", uri, "--delay", "0.05", "--max-delay", "0.2")
        # No server yet: each refused attempt is logged and retried.
        await _wait_stderr(client, "retrying in")
        for generation, (stop, code) in enumerate([(signal.SIGTERM, 1001), (signal.SIGKILL, 1006)], 1):
            server = run_example("asyncio_producer.py", str(port))
            await server.wait_for("serving on")
            await client.wait_for("connected to", times=generation)
            await client.wait_for("< tick 1", times=generation)  # each server counts from 1
            server.proc.send_signal(stop)  # SIGTERM: closed with 1001; SIGKILL: no closing handshake
            await server.wait_exit()
            await client.wait_for(f"disconnected: {code}")
        server = run_example("asyncio_producer.py", str(port))
        await server.wait_for("serving on")
        await client.wait_for("connected to", times=3)
        await client.wait_for("< tick 1", times=3)
        client.proc.send_signal(signal.SIGINT)
        assert await client.wait_exit() == 0, client.output()
        assert not [line for line in client.stderr if "Traceback" in line], client.output()
        await server.interrupt()

    asyncio.run(scenario())


def test_reconnecting_client_gives_up_on_a_refusal_that_waiting_will_not_fix() -> None:
    async def scenario() -> None:
        from ws4py.asyncio import serve

        def refuse(connection, request):  # type: ignore[no-untyped-def]
            return connection.respond(403, "go away")

        async def never(websocket) -> None:  # type: ignore[no-untyped-def]
            raise AssertionError("the handshake was refused: no handler runs")

        async with serve(never, "127.0.0.1", 0, process_request=refuse) as server:
            port = server.sockets[0].getsockname()[1]
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(EXAMPLES / "reconnecting_client.py"),
                f"ws://127.0.0.1:{port}/",
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), EXIT_TIMEOUT)
        assert proc.returncode == 1, (out, err)
        assert out == b""
        assert b"not retrying" in err and b"403" in err, err

    asyncio.run(scenario())
