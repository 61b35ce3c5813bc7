"""A FastAPI application (and the same endpoint on Starlette) whose WebSockets run on ws4py.

uvicorn chooses a WebSocket implementation with its ``ws`` setting; ws4py's is
:data:`WS4PY`. The application does not change: it is written against
FastAPI's (Starlette's) ``WebSocket`` as usual.
Run, from the repository's root (``pip install ws4py[uvicorn] fastapi``):

    uvicorn examples.uvicorn_app:app --ws ws4py.server.uvicorn:WebSocketProtocol
    python examples/uvicorn_app.py [PORT]                 (uvicorn.run, below; default 8000)
    gunicorn -k examples.uvicorn_app.Worker examples.uvicorn_app:app   (pip install uvicorn-worker)

then connect to ws://127.0.0.1:8000/echo.
"""

import sys
from typing import Any, ClassVar

import uvicorn
from fastapi import FastAPI, WebSocket
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from uvicorn_worker import UvicornWorker

#: uvicorn's ``ws`` setting that makes ws4py its WebSocket implementation.
WS4PY = "ws4py.server.uvicorn:WebSocketProtocol"


async def echo(websocket: WebSocket) -> None:
    """Send every text message back until the client leaves."""
    await websocket.accept()
    async for text in websocket.iter_text():  # ends when the client disconnects
        await websocket.send_text(text)


app = FastAPI()
app.add_api_websocket_route("/echo", echo)

# The same endpoint on Starlette alone: uvicorn examples.uvicorn_app:starlette_app --ws ...
starlette_app = Starlette(routes=[WebSocketRoute("/echo", echo)])


class Worker(UvicornWorker):
    """gunicorn's uvicorn worker with ws4py as the WebSocket implementation."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {**UvicornWorker.CONFIG_KWARGS, "ws": WS4PY}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]) if len(sys.argv) > 1 else 8000, ws=WS4PY)
