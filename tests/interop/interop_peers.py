"""The peers of ws4py's interoperability tests: servers, clients, a wire tap.

Every server here speaks the same small protocol, so that one set of tests
runs against all of them: it echoes every message (text as text, binary as
binary) except the text commands

* ``cmd:close:<code>:<reason>``: close with that code and reason;
* ``cmd:ping:<payload>``: ping, and report the pong as the text ``ponged:<payload>``;
* ``cmd:fragments``: send ``alphabetagamma`` as three text fragments;

and records in a :class:`Journal`, by request path, the extensions it agreed
and the close code and reason it received.

Every client adapter (``websockets``, ``websocket-client``, Node's ``ws``)
has the same methods, so that one set of tests drives ws4py's server with
each. :class:`WireTap` relays a connection and keeps its bytes, to read the
handshake and the frames as they went on the wire.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import json
import queue
import selectors
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import websocket as websocket_client
import websockets
from websockets.asyncio.server import ServerConnection as AsyncServerConnection
from websockets.asyncio.server import serve as async_serve
from websockets.sync.client import connect as sync_connect
from websockets.sync.server import ServerConnection as SyncServerConnection
from websockets.sync.server import serve as sync_serve

from ws4py.client.threadedclient import WebSocketClient
from ws4py.messaging import Message, PongControlMessage
from ws4py.websocket import EchoWebSocket

#: Seconds any single wait of these tests may take.
TIMEOUT = 5.0
NODE_DIR = Path(__file__).resolve().parent / "node"
#: Seconds a Node peer lives at most (it exits by itself then).
NODE_LIFETIME = 120

FRAGMENTS = ("alpha", "beta", "gamma")


# -- what the servers saw ------------------------------------------------------------------


class Journal:
    """What a server saw of each connection, by request path: ``open`` (extensions) and ``close`` (code, reason)."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, str], Any] = {}
        self._cond = threading.Condition()

    def record(self, path: str, kind: str, value: Any) -> None:
        with self._cond:
            self._events[(path, kind)] = value
            self._cond.notify_all()

    def wait(self, path: str, kind: str, timeout: float = TIMEOUT) -> Any:
        with self._cond:
            if not self._cond.wait_for(lambda: (path, kind) in self._events, timeout):
                raise AssertionError(f"the server recorded no {kind} for {path} within {timeout}s")
            return self._events[(path, kind)]


def command(text: str) -> tuple[str, list[str]]:
    name, *rest = text[len("cmd:") :].split(":")
    return name, rest


# -- ws4py's server ---------------------------------------------------------------------------


class JournalEchoWebSocket(EchoWebSocket):
    """ws4py's echo websocket with the commands above, recording in the class's ``journal``."""

    journal: Journal

    @property
    def path(self) -> str:
        return (self.environ or {}).get("PATH_INFO", "")

    def opened(self) -> None:
        self.journal.record(self.path, "open", list(self.extensions))

    def received_message(self, message: Message) -> None:
        if message.is_text and str(message).startswith("cmd:"):
            name, rest = command(str(message))
            if name == "close":
                self.close(int(rest[0]), ":".join(rest[1:]))
            elif name == "ping":
                self.ping(":".join(rest))
            elif name == "fragments":
                self.send(iter(FRAGMENTS))
            return
        super().received_message(message)

    def ponged(self, pong: PongControlMessage) -> None:
        self.send("ponged:" + pong.data.decode())

    def closed(self, code: int, reason: str | None = None) -> None:
        self.journal.record(self.path, "close", (code, reason or ""))


# -- websockets' servers ----------------------------------------------------------------------


def _close_received(connection: Any) -> tuple[int, str]:
    received = connection.protocol.close_rcvd
    return (received.code, received.reason) if received is not None else (1006, "")


def sync_handler(journal: Journal) -> Callable[[SyncServerConnection], None]:
    def handler(ws: SyncServerConnection) -> None:
        path = ws.request.path
        journal.record(path, "open", [name for name, _ in _extensions_of(ws)])
        try:
            for message in ws:
                if isinstance(message, str) and message.startswith("cmd:"):
                    name, rest = command(message)
                    if name == "close":
                        ws.close(int(rest[0]), ":".join(rest[1:]))
                    elif name == "ping":
                        payload = ":".join(rest)
                        if ws.ping(payload).wait(TIMEOUT):
                            ws.send("ponged:" + payload)
                    elif name == "fragments":
                        ws.send(iter(FRAGMENTS))
                else:
                    ws.send(message)
        except websockets.ConnectionClosed:
            pass
        journal.record(path, "close", _close_received(ws))

    return handler


async def run_commands(ws: Any, closed: type[BaseException]) -> None:
    """The echo and commands of this module, for any connection with websockets' asyncio API
    (``async for``, ``send``, ``ping``, ``close``), until it closes with ``closed``."""
    try:
        async for message in ws:
            if isinstance(message, str) and message.startswith("cmd:"):
                name, rest = command(message)
                if name == "close":
                    await ws.close(int(rest[0]), ":".join(rest[1:]))
                elif name == "ping":
                    payload = ":".join(rest)
                    await asyncio.wait_for(await ws.ping(payload), TIMEOUT)
                    await ws.send("ponged:" + payload)
                elif name == "fragments":
                    await ws.send(iter(FRAGMENTS))
            else:
                await ws.send(message)
    except closed:
        pass


def async_handler(journal: Journal) -> Callable[[AsyncServerConnection], Any]:
    async def handler(ws: AsyncServerConnection) -> None:
        path = ws.request.path
        journal.record(path, "open", [name for name, _ in _extensions_of(ws)])
        await run_commands(ws, websockets.ConnectionClosed)
        await ws.wait_closed()
        journal.record(path, "close", _close_received(ws))

    return handler


def _extensions_of(ws: Any) -> list[tuple[str, Any]]:
    return [(extension.name, extension) for extension in ws.protocol.extensions]


@dataclass
class Server:
    """A running server: its port, its journal, how to stop it."""

    name: str
    port: int
    journal: Journal
    stop: Callable[[], None]
    compression: bool

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"


def start_websockets_sync(compression: bool, extensions: list[Any] | None = None) -> Server:
    """``websockets``' sync server; ``extensions`` (extension factories) replace its default compression."""
    journal = Journal()
    server = sync_serve(
        sync_handler(journal),
        "127.0.0.1",
        0,
        compression="deflate" if compression and extensions is None else None,
        extensions=extensions,
        close_timeout=TIMEOUT,
    )
    thread = threading.Thread(target=server.serve_forever, name="websockets sync server", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        thread.join(TIMEOUT)

    return Server("websockets-sync", server.socket.getsockname()[1], journal, stop, compression)


def start_websockets_asyncio(compression: bool) -> Server:
    journal = Journal()
    loop = asyncio.new_event_loop()
    started: queue.Queue[Any] = queue.Queue()
    stopping: list[asyncio.Future[None]] = []

    async def main() -> None:
        stopping.append(loop.create_future())
        async with async_serve(
            async_handler(journal),
            "127.0.0.1",
            0,
            compression="deflate" if compression else None,
            close_timeout=TIMEOUT,
        ) as server:
            started.put(next(iter(server.sockets)).getsockname()[1])
            await stopping[0]

    def run() -> None:
        try:
            loop.run_until_complete(main())
        except BaseException as exc:
            started.put(exc)
            raise
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="websockets asyncio server", daemon=True)
    thread.start()
    port = started.get(timeout=TIMEOUT)
    if isinstance(port, BaseException):
        raise port

    def stop() -> None:
        loop.call_soon_threadsafe(lambda: stopping[0].done() or stopping[0].set_result(None))
        thread.join(TIMEOUT)

    return Server("websockets-asyncio", port, journal, stop, compression)


# -- Node ------------------------------------------------------------------------------------


NPM_TIMEOUT = 180


def _ws_installed() -> bool:
    manifest = NODE_DIR / "node_modules" / "ws" / "package.json"
    try:
        return json.loads(manifest.read_text())["version"].startswith("8.")
    except (OSError, ValueError, KeyError):
        return False


def node_with_ws() -> str:
    """The ``node`` executable, with ``ws`` 8 installed for the scripts of ``tests/interop/node``
    (installed by npm the first time; the test is skipped without node or npm)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("Node.js and npm are needed for the Node `ws` peers, and `node` or `npm` is not on the PATH")
    # One installer at a time, should two test runs start together.
    with open(NODE_DIR / "package.json") as manifest:
        fcntl.flock(manifest, fcntl.LOCK_EX)
        try:
            if not _ws_installed():
                result = subprocess.run(
                    [npm, "install", "--no-package-lock", "--no-audit", "--no-fund", "--loglevel=error"],
                    cwd=NODE_DIR,
                    capture_output=True,
                    text=True,
                    timeout=NPM_TIMEOUT,
                )
                if result.returncode != 0 or not _ws_installed():
                    pytest.fail(f"npm install of ws failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        finally:
            fcntl.flock(manifest, fcntl.LOCK_UN)
    return node


class NodeProcess:
    """A Node script of ``tests/interop/node``, talking JSON lines; it exits by itself after a while."""

    def __init__(self, node: str, script: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            [node, str(NODE_DIR / script), *args],
            cwd=NODE_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.strip()
            if line:
                self.events.put(json.loads(line))
        self.events.put({"event": "exit"})

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr.extend(self.proc.stderr)

    def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def next_event(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no event from node within {timeout}s; stderr: {''.join(self.stderr)}") from None

    def stop(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(TIMEOUT)


def _node_deflate(deflate: bool | dict[str, Any]) -> str:
    """The ``perMessageDeflate`` argument of the Node scripts: ``1``, ``0`` or options as JSON."""
    if isinstance(deflate, bool):
        return "1" if deflate else "0"
    return json.dumps(deflate)


def start_node_server(node: str, compression: bool | dict[str, Any]) -> Server:
    """Node's ``ws`` server; ``compression`` may be ``perMessageDeflate`` options."""
    journal = Journal()
    process = NodeProcess(node, "echo_server.mjs", _node_deflate(compression), str(NODE_LIFETIME))
    first = process.next_event()
    assert first["event"] == "listening", (first, process.stderr)

    def relay() -> None:
        while (event := process.events.get())["event"] != "exit":
            if event["event"] == "open":
                journal.record(event["path"], "open", [e for e in event["extensions"].split(",") if e])
            elif event["event"] == "close":
                journal.record(event["path"], "close", (event["code"], event["reason"]))

    threading.Thread(target=relay, daemon=True).start()
    return Server("node-ws", first["port"], journal, process.stop, bool(compression))


# -- clients, for ws4py's server --------------------------------------------------------------


class WebsocketsClient:
    """``websockets``' sync client (permessage-deflate offered unless ``compression`` is off)."""

    name = "websockets"

    def __init__(self, url: str, compression: bool = True, extensions: list[Any] | None = None) -> None:
        self.ws = sync_connect(
            url,
            compression="deflate" if compression and extensions is None else None,
            extensions=extensions,
            proxy=None,
            open_timeout=TIMEOUT,
            close_timeout=TIMEOUT,
            legacy=True,
        )

    @property
    def extensions_header(self) -> str | None:
        return self.ws.response.headers.get("Sec-WebSocket-Extensions")

    def send(self, data: str | bytes) -> None:
        self.ws.send(data)

    def send_fragments(self, parts: list[str] | list[bytes]) -> None:
        self.ws.send(iter(parts))

    def recv(self) -> str | bytes:
        return self.ws.recv(timeout=TIMEOUT)

    def ping(self, payload: bytes) -> bytes:
        assert self.ws.ping(payload).wait(TIMEOUT), "no pong"
        return payload  # websockets only reports the pong that matches the ping's payload

    def close(self, code: int, reason: str) -> None:
        self.ws.close(code, reason)

    def closed_by_server(self) -> tuple[int, str]:
        try:
            message = self.ws.recv(timeout=TIMEOUT)
        except websockets.ConnectionClosed:
            pass
        else:
            raise AssertionError(f"a message instead of the close: {message!r}")
        received = self.ws.protocol.close_rcvd
        assert received is not None
        return received.code, received.reason

    def shutdown(self) -> None:
        self.ws.close()


class WebsocketsPlainClient(WebsocketsClient):
    """``websockets``' sync client, not offering permessage-deflate."""

    name = "websockets-no-deflate"

    def __init__(self, url: str) -> None:
        super().__init__(url, compression=False)


class WebSocketClientLib:
    """``websocket-client`` (it has no permessage-deflate)."""

    name = "websocket-client"

    def __init__(self, url: str) -> None:
        self.ws = websocket_client.create_connection(url, timeout=TIMEOUT)

    @property
    def extensions_header(self) -> str | None:
        return self.ws.getheaders().get("sec-websocket-extensions")

    def send(self, data: str | bytes) -> None:
        if isinstance(data, str):
            self.ws.send(data)
        else:
            self.ws.send_binary(data)

    def send_fragments(self, parts: list[str] | list[bytes]) -> None:
        ABNF = websocket_client.ABNF
        opcode = ABNF.OPCODE_TEXT if isinstance(parts[0], str) else ABNF.OPCODE_BINARY
        for i, part in enumerate(parts):
            data = part.encode() if isinstance(part, str) else part
            fin = int(i == len(parts) - 1)
            self.ws.send_frame(ABNF.create_frame(data, opcode if i == 0 else ABNF.OPCODE_CONT, fin=fin))

    def recv(self) -> str | bytes:
        opcode, data = self.ws.recv_data()
        if opcode == websocket_client.ABNF.OPCODE_TEXT:
            return data.decode()
        assert opcode == websocket_client.ABNF.OPCODE_BINARY, opcode
        return data

    def ping(self, payload: bytes) -> bytes:
        self.ws.ping(payload)
        while True:
            opcode, frame = self.ws.recv_data_frame(control_frame=True)
            if opcode == websocket_client.ABNF.OPCODE_PONG:
                return frame.data
            assert opcode == websocket_client.ABNF.OPCODE_PING, (opcode, frame)

    def close(self, code: int, reason: str) -> None:
        self.ws.close(status=code, reason=reason.encode(), timeout=TIMEOUT)

    def closed_by_server(self) -> tuple[int, str]:
        opcode, frame = self.ws.recv_data_frame(control_frame=True)
        assert opcode == websocket_client.ABNF.OPCODE_CLOSE, (opcode, frame)
        return int.from_bytes(frame.data[:2], "big"), frame.data[2:].decode()

    def shutdown(self) -> None:
        self.ws.close(timeout=1)


class NodeClient:
    """Node's ``ws`` client with ``perMessageDeflate: true``, in a subprocess."""

    name = "node-ws"

    def __init__(self, url: str, node: str = "node", deflate: bool | dict[str, Any] = True) -> None:
        self.process = NodeProcess(node, "client.mjs", url, _node_deflate(deflate), str(NODE_LIFETIME))
        self.closed = False
        opened = self.process.next_event()
        assert opened["event"] == "open", (opened, self.process.stderr)
        self.extensions_header = opened["extensions"]

    def _next(self, kind: str) -> dict[str, Any]:
        event = self.process.next_event()
        self.closed = self.closed or event["event"] in ("close", "exit")
        assert event["event"] == kind, (kind, event, self.process.stderr)
        return event

    def send(self, data: str | bytes) -> None:
        raw = data.encode() if isinstance(data, str) else data
        self.process.send({"op": "send", "b64": base64.b64encode(raw).decode(), "binary": isinstance(data, bytes)})

    def send_fragments(self, parts: list[str] | list[bytes]) -> None:
        raw = [p.encode() if isinstance(p, str) else p for p in parts]
        self.process.send(
            {
                "op": "fragments",
                "parts": [base64.b64encode(p).decode() for p in raw],
                "binary": isinstance(parts[0], bytes),
            }
        )

    def recv(self) -> str | bytes:
        event = self._next("message")
        data = base64.b64decode(event["b64"])
        return data if event["binary"] else data.decode()

    def ping(self, payload: bytes) -> bytes:
        self.process.send({"op": "ping", "b64": base64.b64encode(payload).decode()})
        return base64.b64decode(self._next("pong")["b64"])

    def close(self, code: int, reason: str) -> None:
        self.process.send({"op": "close", "code": code, "reason": reason})
        self._next("close")

    def closed_by_server(self) -> tuple[int, str]:
        event = self._next("close")
        return event["code"], event["reason"]

    def shutdown(self) -> None:
        if not self.closed:
            self.process.send({"op": "close", "code": 1000, "reason": ""})
            while self.process.next_event()["event"] not in ("close", "exit"):
                pass
            self.closed = True
        self.process.stop()


# -- ws4py's client ----------------------------------------------------------------------------


class RecordingClient(WebSocketClient):
    """ws4py's threaded client, keeping what it receives for the test to check."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.messages: queue.Queue[Message] = queue.Queue()
        self.pongs: queue.Queue[bytes] = queue.Queue()
        self.ended = threading.Event()
        self.closed_with: tuple[int, str | None] | None = None

    def received_message(self, message: Message) -> None:
        self.messages.put(message)

    def ponged(self, pong: PongControlMessage) -> None:
        self.pongs.put(pong.data)

    def closed(self, code: int, reason: str | None = None) -> None:
        self.closed_with = (code, reason)
        self.ended.set()

    def next_message(self) -> Message:
        try:
            return self.messages.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"no message within {TIMEOUT}s") from None

    def next_pong(self) -> bytes:
        try:
            return self.pongs.get(timeout=TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"no pong within {TIMEOUT}s") from None

    def wait_closed(self) -> tuple[int, str | None]:
        assert self.ended.wait(TIMEOUT), f"closed() not called within {TIMEOUT}s"
        assert self.closed_with is not None
        return self.closed_with


# -- the wire --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WireFrame:
    fin: bool
    rsv1: bool
    opcode: int
    length: int


class WireTap:
    """A TCP relay to ``127.0.0.1:target``, for one connection, that keeps the bytes of each direction."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.upstream = bytearray()  # client to server
        self.downstream = bytearray()  # server to client
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wire tap", daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def _run(self) -> None:
        try:
            self.listener.settimeout(TIMEOUT)
            client, _ = self.listener.accept()
        except OSError:
            self.done.set()
            return
        finally:
            self.listener.close()
        server = socket.create_connection(("127.0.0.1", self.target), timeout=TIMEOUT)
        peers = {client: (server, self.upstream), server: (client, self.downstream)}
        selector = selectors.DefaultSelector()
        for sock in peers:
            sock.setblocking(True)
            sock.settimeout(TIMEOUT)
            selector.register(sock, selectors.EVENT_READ)
        deadline = time.monotonic() + 6 * TIMEOUT
        try:
            while peers and time.monotonic() < deadline:
                for key, _ in selector.select(1.0):
                    sock = key.fileobj
                    other, record = peers[sock]  # type: ignore[index]
                    try:
                        data = sock.recv(65536)  # type: ignore[union-attr]
                    except OSError:
                        data = b""
                    if data:
                        record += data
                        with contextlib.suppress(OSError):
                            other.sendall(data)
                    else:
                        selector.unregister(sock)
                        del peers[sock]  # type: ignore[arg-type]
                        with contextlib.suppress(OSError):
                            other.shutdown(socket.SHUT_WR)
        finally:
            selector.close()
            client.close()
            server.close()
            self.done.set()

    def wait(self) -> None:
        """Wait until both ends closed (bounded)."""
        self.done.wait(6 * TIMEOUT)

    @staticmethod
    def head(stream: bytes) -> dict[str, str]:
        """The headers of the HTTP head that starts ``stream`` (names in lower case, repeated values joined)."""
        head = bytes(stream).partition(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        return headers

    @staticmethod
    def frames(stream: bytes) -> Iterator[WireFrame]:
        """The frames after the HTTP head that starts ``stream``."""
        data = bytes(stream)
        pos = data.index(b"\r\n\r\n") + 4
        while pos + 2 <= len(data):
            b0, b1 = data[pos], data[pos + 1]
            length, header = b1 & 0x7F, 2
            if length == 126:
                length, header = int.from_bytes(data[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                length, header = int.from_bytes(data[pos + 2 : pos + 10], "big"), 10
            if b1 & 0x80:
                header += 4
            if pos + header + length > len(data):
                return
            yield WireFrame(bool(b0 & 0x80), bool(b0 & 0x40), b0 & 0x0F, length)
            pos += header + length
