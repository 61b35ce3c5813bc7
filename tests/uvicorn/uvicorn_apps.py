"""The ASGI applications the uvicorn tests serve: plain ASGI, Starlette and FastAPI, reporting to a Record.

Each app's routes are named by their path (after ``root_path``); what an app observes that the
client cannot (a disconnect code, an exception it caught) goes to the test's :class:`Record`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from uvicorn_support import Record

#: The size of each message of /flood, and how many it sends.
FLOOD_MESSAGE = 64 * 1024
FLOOD_COUNT = 512

Scope = dict[str, Any]


def asgi_app(record: Record) -> Any:
    """A plain ASGI application: one coroutine per route, the messages of the spec as they are."""
    gates: dict[str, asyncio.Event] = {}

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if "state" in scope:
                        scope["state"]["greeting"] = "hello from lifespan"
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        route = "/" + scope["path"][len(scope["root_path"]) :].split("/")[1]  # /scope/anything: /scope
        assert (await receive())["type"] == "websocket.connect"
        await ROUTES[route](scope, receive, send, record, gates)

    app.gates = gates  # type: ignore[attr-defined]
    return app


async def _until_disconnect(receive: Any, record: Record) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            record.put("disconnect", message["code"], message.get("reason") or "")
            return


async def scope_route(scope: Scope, receive: Any, send: Any, record: Record, gates: Any) -> None:
    await send({"type": "websocket.accept"})
    shown = {k: v.decode("latin-1") if isinstance(v, bytes) else v for k, v in scope.items() if k != "headers"}
    shown["headers"] = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]]
    await send({"type": "websocket.send", "text": json.dumps(shown)})
    await _until_disconnect(receive, record)


async def echo_route(scope: Scope, receive: Any, send: Any, record: Record, gates: Any) -> None:
    try:
        await send({"type": "websocket.accept"})
    except OSError:
        record.put("gone before the accept")
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            record.put("disconnect", message["code"], message.get("reason") or "")
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def subprotocol_route(scope: Scope, receive: Any, send: Any, record: Record, gates: Any) -> None:
    chosen = next((p for p in ("chat", "superchat") if p in scope["subprotocols"]), None)
    headers = [(b"x-accepted", b"yes"), (b"set-cookie", b"a=1"), (b"set-cookie", b"b=2")]
    await send({"type": "websocket.accept", "subprotocol": chosen, "headers": headers})
    await send({"type": "websocket.send", "text": chosen or ""})
    await _until_disconnect(receive, record)


async def close_route(scope: Scope, receive: Any, send: Any, record: Record, gates: Any) -> None:
    await send({"type": "websocket.accept"})
    message = await receive()
    await send({"type": "websocket.close", "code": 4001, "reason": "bye " + message["text"]})
    record.put("closed")


async def reject_route(scope: Scope, receive: Any, send: Any, record: Record, gates: Any) -> None:
    await send({"type": "websocket.close"})
    record.put("rejected", await receive())


async def deny_route(scope: Scope, receive: Any, send: Any, record: Record, gates: Any) -> None:
    headers = [(b"x-deny", b"1"), (b"content-type", b"text/plain")]
    await send({"type": "websocket.http.response.start", "status": 401, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": b"go ", "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b"away"})
    record.put("denied", await receive())


async def late_route(scope: Scope, receive: Any, send: Any, record: Record, gates: Any) -> None:
    """Sends once the client has gone: the spec (2.4) says an OSError subclass."""
    await send({"type": "websocket.accept"})
    await _until_disconnect(receive, record)
    try:
        await send({"type": "websocket.send", "text": "too late"})
    except OSError as exc:
        record.put("send raised", exc)
        raise  # as an app that does not catch it: the server must not treat it as a failure
    record.put("send raised", None)


async def send_before_accept_route(scope: Scope, receive: Any, send: Any, record: Record, gates: Any) -> None:
    try:
        await send({"type": "websocket.send", "text": "too early"})
    except Exception as exc:
        record.put("raised", exc)
        raise
    record.put("raised", None)


async def double_accept_route(scope: Scope, receive: Any, send: Any, record: Record, gates: Any) -> None:
    await send({"type": "websocket.accept"})
    try:
        await send({"type": "websocket.accept"})
    except Exception as exc:
        record.put("raised", exc)
        raise
    record.put("raised", None)


async def hold_route(scope: Scope, receive: Any, send: Any, record: Record, gates: Any) -> None:
    """Never answers the handshake: waits for what comes (the end, at shutdown)."""
    record.put("holding")
    record.put("held", await receive())


async def flood_route(scope: Scope, receive: Any, send: Any, record: Record, gates: Any) -> None:
    await send({"type": "websocket.accept"})
    payload = b"x" * FLOOD_MESSAGE
    for sent in range(FLOOD_COUNT):
        record.put("sent", sent)
        try:
            await send({"type": "websocket.send", "bytes": payload})
        except OSError as exc:  # the client left (spec 2.4)
            record.put("send raised", exc)
            raise  # as an app that does not catch it: the server must not treat it as a failure
    record.put("flooded")
    await _until_disconnect(receive, record)


async def sink_route(scope: Scope, receive: Any, send: Any, record: Record, gates: Any) -> None:
    """Takes no message until the test opens its gate, then reports how many came in order."""
    await send({"type": "websocket.accept"})
    gate = gates["sink"] = asyncio.Event()
    record.put("sink ready")
    await gate.wait()
    count = 0
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            record.put("sunk", count)
            return
        assert message["text"] == str(count), message
        count += 1


async def slow_accept_route(scope: Scope, receive: Any, send: Any, record: Record, gates: Any) -> None:
    """Accepts once the test opens its gate, then echoes; or reports the end if the client left first."""
    gate = gates["slow-accept"] = asyncio.Event()
    waiting = asyncio.ensure_future(receive())  # the end of the connection, if it comes first
    record.put("deciding")
    opened = asyncio.ensure_future(gate.wait())
    await asyncio.wait([waiting, opened], return_when=asyncio.FIRST_COMPLETED)
    if waiting.done():
        opened.cancel()
        record.put("left", waiting.result())
        return
    await send({"type": "websocket.accept"})
    message = await waiting
    await send({"type": "websocket.send", "text": message["text"]})
    await _until_disconnect(receive, record)


ROUTES = {
    "/slow-accept": slow_accept_route,
    "/scope": scope_route,
    "/echo": echo_route,
    "/subprotocol": subprotocol_route,
    "/close": close_route,
    "/reject": reject_route,
    "/deny": deny_route,
    "/late": late_route,
    "/send-before-accept": send_before_accept_route,
    "/double-accept": double_accept_route,
    "/hold": hold_route,
    "/flood": flood_route,
    "/sink": sink_route,
}


# -- the same behaviours written as Starlette endpoints (served by Starlette and by FastAPI) ----


def _endpoints(record: Record) -> dict[str, Any]:
    async def echo(ws: WebSocket) -> None:
        await ws.accept()
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                record.put("disconnect", message["code"], message.get("reason") or "")
                return
            if message.get("text") is not None:
                await ws.send_text(message["text"])
            else:
                await ws.send_bytes(message["bytes"])

    async def subprotocol(ws: WebSocket) -> None:
        chosen = next((p for p in ("chat", "superchat") if p in ws.scope["subprotocols"]), None)
        await ws.accept(subprotocol=chosen, headers=[(b"x-accepted", b"yes")])
        await ws.send_text(chosen or "")
        try:
            await ws.receive_text()
        except WebSocketDisconnect as exc:
            record.put("disconnect", exc.code, exc.reason)

    async def close(ws: WebSocket) -> None:
        await ws.accept()
        text = await ws.receive_text()
        await ws.close(code=4001, reason="bye " + text)
        record.put("closed")

    async def deny(ws: WebSocket) -> None:
        response = PlainTextResponse("go away", status_code=401, headers={"x-deny": "1"})
        await ws.send_denial_response(response)
        record.put("denied")

    async def fail_before(ws: WebSocket) -> None:
        raise ValueError("the app failed before accepting")

    async def fail_after(ws: WebSocket) -> None:
        await ws.accept()
        raise ValueError("the app failed after accepting")

    return {
        "/echo": echo,
        "/subprotocol": subprotocol,
        "/close": close,
        "/deny": deny,
        "/fail-before": fail_before,
        "/fail-after": fail_after,
    }


def starlette_app(record: Record) -> Starlette:
    return Starlette(routes=[WebSocketRoute(path, endpoint) for path, endpoint in _endpoints(record).items()])


def fastapi_app(record: Record) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield

    app = FastAPI(lifespan=lifespan)
    for path, endpoint in _endpoints(record).items():
        app.add_api_websocket_route(path, endpoint)
    return app


FRAMEWORKS = {"starlette": starlette_app, "fastapi": fastapi_app}
