"""A plain ASGI echo app for servers in a process of their own: uvicorn run as a script, or gunicorn.

``python served_apart.py`` serves :func:`app` with uvicorn and ws4py's protocol on 127.0.0.1
(a free port, printed as ``port N`` once it listens) until SIGTERM or SIGINT; ``/probe`` then
answers with what the server holds (its file descriptors, uvicorn's connections and tasks, the
tasks on its loop, the disconnect codes its echo routes saw) as one JSON text message, and
``/implementation`` (under gunicorn too) with the class of the server's WebSocket protocol.

Under gunicorn, :class:`Worker` is uvicorn's worker with ws4py's protocol, as the module
docstring of :mod:`ws4py.server.uvicorn` shows::

    gunicorn -k served_apart:Worker served_apart:app
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import signal
import socket
import sys
from typing import Any, ClassVar

import uvicorn
from uvicorn_worker import UvicornWorker  # the uvicorn-worker package: uvicorn.workers is deprecated

WS4PY = "ws4py.server.uvicorn:WebSocketProtocol"

#: The uvicorn server of the script (None under gunicorn): what /probe reports on.
SERVER: uvicorn.Server | None = None
#: The close codes of the echo connections' ``websocket.disconnect``.
DISCONNECTS: collections.Counter[int] = collections.Counter()


class Worker(UvicornWorker):
    """gunicorn's uvicorn worker, with ws4py as the WebSocket implementation."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {**UvicornWorker.CONFIG_KWARGS, "ws": WS4PY}


def _probe() -> dict[str, Any]:
    assert SERVER is not None, "/probe needs the script's server"
    state = SERVER.server_state
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "connections": len(state.connections),
        "tasks": len(state.tasks),
        "loop_tasks": len(asyncio.all_tasks()),
        "disconnects": dict(DISCONNECTS),
    }


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echo every message as it came (text or bytes) until the client leaves; ``/probe``: see above."""
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    assert scope["type"] == "websocket", scope["type"]
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    if scope["path"] in ("/probe", "/implementation"):
        if scope["path"] == "/probe":
            text = json.dumps(_probe())
        else:  # the class of the server's WebSocket protocol, whose method ``receive`` is
            protocol = type(receive.__self__)
            text = f"{protocol.__module__}.{protocol.__qualname__}"
        await send({"type": "websocket.send", "text": text})
        await send({"type": "websocket.close"})
        return
    while (message := await receive())["type"] == "websocket.receive":
        reply = {"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")}
        with contextlib.suppress(OSError):  # the client left meanwhile (spec 2.4): its disconnect comes next
            await send(reply)
    DISCONNECTS[message["code"]] += 1


def _stopped(signum: int, frame: Any) -> None:
    """uvicorn raises the signal it stopped on again once its shutdown is over: say so, exit 0."""
    print("stopped", flush=True)
    sys.exit(0)


def main() -> None:
    """uvicorn on a free port of 127.0.0.1, printing it; stops gracefully on SIGTERM (then prints ``stopped``)."""
    global SERVER
    signal.signal(signal.SIGTERM, _stopped)  # uvicorn's own handler replaces it while it serves
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)  # connections made before uvicorn serves wait in the backlog
    config = uvicorn.Config(app, ws=WS4PY, lifespan="off", log_level="warning")
    SERVER = uvicorn.Server(config)
    print("port", sock.getsockname()[1], flush=True)
    SERVER.run(sockets=[sock])


if __name__ == "__main__":
    main()
