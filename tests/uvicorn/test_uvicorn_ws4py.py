"""ws4py's uvicorn implementation beyond the shared behaviours: the scope, uvicorn's ws settings,
the app's protocol errors, flow control both ways, keepalive and the graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import resource
import socket
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme
from uvicorn_apps import FLOOD_COUNT, FLOOD_MESSAGE, asgi_app
from uvicorn_support import TIMEOUT, RawClient, Record, Running, http_exchange, run, serving, wait_until

from ws4py.asyncio import ConnectionClosedError, connect
from ws4py.protocol import BinaryReceived, ClientHandshake, CloseReceived, ConnectionFailed, TextReceived


def test_the_scope_has_every_key_of_the_spec_with_root_path_and_lifespan_state() -> None:
    record = Record()
    with serving(asgi_app(record), root_path="/mounted", lifespan="on", loop="uvloop") as running:

        async def client() -> dict[str, Any]:
            async with connect(running.url("/scope/caf%C3%A9?x=1&y=%20"), subprotocols=["a", "b"]) as conn:
                scope: dict[str, Any] = json.loads(await conn.recv())  # type: ignore[arg-type]
                return scope

        scope = run(client())
    # uvicorn's root_path is the prefix a proxy stripped: the app sees it added back.
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert (scope["http_version"], scope["scheme"]) == ("1.1", "ws")
    assert (scope["root_path"], scope["path"]) == ("/mounted", "/mounted/scope/café")
    assert scope["raw_path"] == "/mounted/scope/caf%C3%A9"
    assert scope["query_string"] == "x=1&y=%20"
    assert scope["subprotocols"] == ["a", "b"]
    assert scope["client"][0] == "127.0.0.1" and scope["server"] == ["127.0.0.1", running.port]
    assert scope["state"] == {"greeting": "hello from lifespan"}
    assert scope["extensions"] == {"websocket.http.response": {}}
    assert ["sec-websocket-protocol", "a, b"] in scope["headers"]
    assert all(name == name.lower() for name, _ in scope["headers"])


def test_the_apps_protocol_errors_raise_in_the_app_and_answer_the_client() -> None:
    record = Record()
    with serving(asgi_app(record)) as running:
        response, _ = http_exchange(running.port, "/send-before-accept")
        assert response.status == 500
        event = record.get()
        assert event[0] == "raised" and isinstance(event[1], RuntimeError)

        async def double_accept() -> int:
            async with connect(running.url("/double-accept")) as conn:
                with pytest.raises(ConnectionClosedError) as info:
                    await conn.recv()
                return info.value.code

        assert run(double_accept()) == 1011
        event = record.get()
        assert event[0] == "raised" and isinstance(event[1], RuntimeError)


def test_ws_max_size_closes_with_1009_and_deflate_follows_the_setting() -> None:
    record = Record()
    with serving(asgi_app(record), ws_max_size=1000, ws_per_message_deflate=True) as running:

        async def client() -> tuple[str | None, int]:
            async with connect(running.url("/echo"), compression="deflate") as conn:
                assert conn.response is not None
                await conn.send("x" * 1000)
                assert await conn.recv() == "x" * 1000
                await conn.send(b"y" * 1001)
                with pytest.raises(ConnectionClosedError) as info:
                    await conn.recv()
                return conn.response.headers.get("Sec-WebSocket-Extensions"), info.value.code

        extensions, code = run(client())
        assert extensions is not None and extensions.startswith("permessage-deflate")
        assert "server_max_window_bits=12" in extensions  # uvicorn's own small windows
        assert code == 1009
    with serving(asgi_app(record), ws_per_message_deflate=False) as running:

        async def plain() -> str | None:
            async with connect(running.url("/echo"), compression="deflate") as conn:
                assert conn.response is not None
                return conn.response.headers.get("Sec-WebSocket-Extensions")

        assert run(plain()) is None


def test_a_peer_that_does_not_answer_pings_is_closed_with_1011() -> None:
    record = Record()
    with serving(asgi_app(record), ws_ping_interval=0.1, ws_ping_timeout=0.1) as running:
        peer = RawClient(running.port, "/echo")  # reads, but never answers a ping
        try:
            event = peer.next_event((CloseReceived, ConnectionFailed))
        finally:
            peer.close()
        assert isinstance(event, CloseReceived) and event.code == 1011
        assert record.get()[0] == "disconnect"


def test_a_client_that_does_not_read_stops_the_apps_sends_and_the_servers_buffer_stays_bounded() -> None:
    record = Record()
    with serving(asgi_app(record)) as running:
        peer = RawClient(running.port, "/flood", rcvbuf=64 * 1024)
        try:
            # The app sends until the transport is over its high-water mark and waits there.
            stuck = [-1]

            def app_waits() -> bool:
                progress = [e[1] for e in _drain(record) if e[0] == "sent"]
                if progress:
                    stuck[0] = progress[-1]
                    return False
                return stuck[0] >= 0

            wait_until(running, app_waits, "the app waiting in send")
            (conn,) = running.ws_connections()
            buffered = running.call(lambda: conn.transport.get_write_buffer_size())
            limit = conn.options.write_limit
            assert buffered <= limit + FLOOD_MESSAGE + 14
            assert stuck[0] < FLOOD_COUNT // 2, "the app sent on as if the client read"
            # Once the client reads, everything arrives.
            received = 0
            while received < FLOOD_COUNT:
                event = peer.next_event((BinaryReceived, TextReceived))
                assert len(event.data) == FLOOD_MESSAGE  # type: ignore[union-attr]
                received += 1
        finally:
            peer.close()
        assert ("flooded",) in _drain_until(record, ("flooded",))


def _drain(record: Record) -> list[tuple[Any, ...]]:
    events = []
    while not record.empty():
        events.append(record.events.get_nowait())
    return events


def _drain_until(record: Record, wanted: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    events = [record.get()]
    while events[-1] != wanted:
        events.append(record.get())
    return events


def test_reading_pauses_while_the_app_has_not_received_ws_max_queue_messages() -> None:
    record = Record()
    with serving(asgi_app(record), ws_max_queue=4) as running:
        peer = RawClient(running.port, "/sink")
        try:
            assert record.get() == ("sink ready",)
            (conn,) = running.ws_connections()
            for count in range(50):
                peer.send(peer.core.send_text(str(count)))
            wait_until(running, lambda: not conn.transport.is_reading(), "reading paused")
            running.call(_gates(running)["sink"].set)
            peer.send(peer.core.send_close(1000))
            assert record.get() == ("sunk", 50)
        finally:
            peer.close()


def test_shutdown_closes_open_connections_with_1012_and_refuses_a_pending_handshake_with_500() -> None:
    # Both ends of every connection live in this process.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    record = Record()
    count = 1000
    with serving(asgi_app(record)) as running:

        async def clients() -> tuple[list[int | None], int | None]:
            conns = await asyncio.gather(*(connect(running.url("/echo")) for _ in range(count)))
            reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
            writer.write(
                b"GET /hold HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            await asyncio.get_running_loop().run_in_executor(None, record.get)  # ("holding",)
            # Every app task is one of uvicorn's tasks, which its shutdown waits for.
            assert running.call(lambda: len(running.server.server_state.tasks)) == count + 1
            running.server.should_exit = True
            status_line = await reader.readline()
            writer.close()
            await asyncio.gather(*(conn.wait_closed() for conn in conns))
            return [conn.close_code for conn in conns], int(status_line.split()[1])

        codes, status = run(clients())
        assert codes == [1012] * count
        assert status == 500
        running.thread.join(TIMEOUT)
        assert not running.thread.is_alive(), "uvicorn's shutdown did not finish"
        state = running.server.server_state
        assert not state.connections and not state.tasks
    events = _drain(record)
    assert events.count(("disconnect", 1012, "")) == count
    assert ("held", {"type": "websocket.disconnect", "code": 1006, "reason": ""}) in events


def test_clients_that_reset_right_after_their_request_leave_no_task_or_connection() -> None:
    """A client that sends its request and leaves at once: no task or connection left behind."""
    record = Record()
    with serving(asgi_app(record)) as running:
        for _ in range(20):
            sock = socket.create_connection(("127.0.0.1", running.port), timeout=TIMEOUT)
            sock.sendall(
                b"GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()  # a reset
        for _ in range(20):
            assert record.get()[0] in ("disconnect", "gone before the accept")
        state = running.server.server_state
        wait_until(running, lambda: not state.connections and not state.tasks, "connections and tasks gone")


def test_over_tls_the_scheme_is_wss_and_messages_flow(tmp_path: Path) -> None:
    ca = trustme.CA()
    pem = tmp_path / "server.pem"
    ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(pem))
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    record = Record()
    with serving(asgi_app(record), ssl_certfile=str(pem), ssl_keyfile=str(pem)) as running:

        async def client() -> tuple[str, str | bytes]:
            url = running.url("/scope").replace("ws://", "wss://")
            async with connect(url, ssl=client_context) as scope_conn:
                scheme = json.loads(await scope_conn.recv())["scheme"]
            async with connect(url.replace("/scope", "/echo"), ssl=client_context) as echo_conn:
                await echo_conn.send(b"x" * 300_000)
                return scheme, await echo_conn.recv()

        assert run(client()) == ("wss", b"x" * 300_000)


REQUEST = (
    b"GET /slow-accept HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def _gates(running: Running) -> dict[str, asyncio.Event]:
    app = running.server.config.loaded_app
    while hasattr(app, "app"):  # uvicorn's middlewares around it
        app = app.app
    gates: dict[str, asyncio.Event] = app.gates
    return gates


def test_a_client_that_leaves_while_the_app_decides_is_a_disconnect_at_once() -> None:
    record = Record()
    with serving(asgi_app(record)) as running:
        with socket.create_connection(("127.0.0.1", running.port), timeout=TIMEOUT) as sock:
            sock.sendall(REQUEST)
            assert record.get() == ("deciding",)
        event = record.get()
        assert event[0] == "left" and event[1]["type"] == "websocket.disconnect" and event[1]["code"] == 1006
        state = running.server.server_state
        wait_until(running, lambda: not state.connections and not state.tasks, "connections and tasks gone")


def test_a_frame_sent_before_the_101_reaches_the_app_once_it_accepts() -> None:
    record = Record()
    with serving(asgi_app(record)) as running:
        sock = socket.create_connection(("127.0.0.1", running.port), timeout=TIMEOUT)
        try:
            sock.sendall(REQUEST)
            assert record.get() == ("deciding",)
            handshake = ClientHandshake("x", "/slow-accept", key="dGhlIHNhbXBsZSBub25jZQ==")
            core = handshake.connection()  # a client core, to frame and parse with
            sock.sendall(core.send_text("hasty"))
            running.call(_gates(running)["slow-accept"].set)
            data = b""
            while handshake.receive_data(data) is None:
                data = sock.recv(65536)
                assert data
            events = list(core.receive_data(handshake.leftover))
            while not events:
                events = list(core.receive_data(sock.recv(65536)))
            assert isinstance(events[0], TextReceived) and events[0].data == "hasty"
        finally:
            sock.close()
        assert record.get() == ("disconnect", 1006, "")


def test_after_the_disconnect_receive_repeats_it_and_close_is_no_error() -> None:
    record = Record()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "websocket.accept"})
        first = await receive()
        again = await receive()  # must not wait forever
        await send({"type": "websocket.close"})  # nothing left to close: not an error either
        record.put(first, again)

    with serving(app) as running:

        async def client() -> None:
            async with connect(running.url("/")) as conn:
                await conn.close(4004, "gone")

        run(client())
        first, again = record.get()
    assert first == again == {"type": "websocket.disconnect", "code": 4004, "reason": "gone"}
