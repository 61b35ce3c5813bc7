"""ws4py as uvicorn's WebSocket implementation: ``--ws ws4py.server.uvicorn:WebSocketProtocol``.

::

    uvicorn app:app --ws ws4py.server.uvicorn:WebSocketProtocol
    uvicorn.run(app, ws="ws4py.server.uvicorn:WebSocketProtocol")

Under gunicorn, a worker class of your own sets it (``UvicornWorker`` comes from the
``uvicorn-worker`` package; uvicorn's own ``uvicorn.workers`` is deprecated), in
``myapp/workers.py`` say::

    from uvicorn_worker import UvicornWorker

    class Worker(UvicornWorker):
        CONFIG_KWARGS = {**UvicornWorker.CONFIG_KWARGS, "ws": "ws4py.server.uvicorn:WebSocketProtocol"}

and gunicorn takes its dotted path: ``gunicorn -k myapp.workers.Worker myapp:app``.

Every Starlette, FastAPI or other ASGI application then runs its WebSockets
on ws4py's core (:mod:`ws4py.server.asgi` maps the ASGI messages). uvicorn's
settings are honoured: ``ws_max_size`` (a message's bound), ``ws_max_queue``
(reading pauses while that many messages wait for ``receive()``),
``ws_ping_interval`` / ``ws_ping_timeout`` (a peer that does not answer is
closed with 1011), ``ws_per_message_deflate``, ``root_path``, the server's
default headers (``date``, ``server``), and the graceful shutdown: open
connections are closed with 1012, a handshake the application has not
answered gets 500, and each connection leaves ``server_state.connections``
when its transport is gone, each application task ``server_state.tasks``
when it returns.

Tested with uvicorn 0.36 and 0.55 (the ``uvicorn`` extra pins ``>=0.36,<1``: 0.36 is the first
to take an import string for ``ws``; before it, pass the class itself). The parts
of uvicorn this module relies on that are not its documented API are listed in
:data:`UVICORN_SEAMS`; ``tests/uvicorn/test_uvicorn_seams.py`` fails on a
uvicorn that changes one of them.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import TYPE_CHECKING, Any

from ..asyncio.options import Options
from ..protocol import DeflateOptions, ServerHandshake
from .asgi import ASGIWebSocket, ClientDisconnected

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

__all__ = ["UVICORN_SEAMS", "ClientDisconnected", "WebSocketProtocol"]

#: What this module relies on in uvicorn beyond its documented settings, in one place. Each
#: entry is checked against the installed uvicorn by tests/uvicorn/test_uvicorn_seams.py.
UVICORN_SEAMS: dict[str, str] = {
    "upgrade": (
        "uvicorn's HTTP protocols (h11_impl, httptools_impl) hand over an upgrade as "
        "ws_protocol_class(config=, server_state=, app_state=), then connection_made(transport), then "
        "transport.set_protocol(protocol) and data_received(the request head, re-serialised) in either order"
    ),
    "config": (
        "Config.loaded / Config.load() / Config.loaded_app (the wrapped ASGI 3 app) / Config.asgi_version "
        "/ Config.root_path / Config.ws_max_size, ws_max_queue, ws_ping_interval, ws_ping_timeout, "
        "ws_per_message_deflate as attributes"
    ),
    "connections": (
        "ServerState.connections: a set of protocols; Server.shutdown calls .shutdown() on each "
        "and waits until the set is empty"
    ),
    "tasks": "ServerState.tasks: a set of asyncio tasks Server.shutdown waits for (and cancels after its timeout)",
    "default_headers": "ServerState.default_headers: the (bytes, bytes) fields of every response (date, server)",
}

#: uvicorn has no setting for it: the closing handshake's bound, as its own implementations use.
CLOSE_TIMEOUT = 10.0
#: permessage-deflate when ``ws_per_message_deflate`` is on: 4 KiB windows and a small compressor
#: (as uvicorn's websockets-based implementations configure it), about a tenth of the memory of
#: RFC 7692's defaults per connection, at a slightly worse ratio.
DEFLATE = DeflateOptions(server_max_window_bits=12, client_max_window_bits=12, memory_level=5)

# The Options of each Config, made once: one frozen object shared by its connections.
_OPTIONS: weakref.WeakKeyDictionary[Any, Options] = weakref.WeakKeyDictionary()


def _settings(config: Config) -> tuple[Options, bool]:
    """The :class:`Options` of ``config``'s ws settings (made once per config) and whether to deflate."""
    cached = _OPTIONS.get(config)
    if cached is None:
        ping_interval = config.ws_ping_interval or None  # uvicorn: 0 or None turns the pings off
        cached = Options(
            max_size=config.ws_max_size,
            max_queue=max(1, config.ws_max_queue),
            ping_interval=ping_interval,
            ping_timeout=config.ws_ping_timeout if ping_interval is not None else None,
            open_timeout=None,  # the head is complete already; the application decides when to accept
            close_timeout=CLOSE_TIMEOUT,
            logger=logging.getLogger("uvicorn.error"),
        )
        _OPTIONS[config] = cached
    return cached, bool(config.ws_per_message_deflate)


class WebSocketProtocol(ASGIWebSocket):
    """The protocol uvicorn builds for each WebSocket upgrade (its ``ws`` setting)."""

    __slots__ = ("server_state",)

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        options, deflate = _settings(config)
        handshake = ServerHandshake(compression=DEFLATE if deflate else None)
        super().__init__(
            config.loaded_app,
            options,
            handshake,
            asgi_version=config.asgi_version,
            root_path=config.root_path,
            state=app_state,
            connections=server_state.connections,
            tasks=server_state.tasks,
        )
        self.server_state = server_state

    def default_headers(self) -> list[tuple[bytes, bytes]]:
        # Read each time: uvicorn replaces the list every second (the date).
        return self.server_state.default_headers
