"""ws4py: WebSocket client and server for Python 3 (RFC 6455, RFC 7692)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from .protocol import handshake as _handshake

if TYPE_CHECKING:
    import logging

__version__ = "1.0.0.dev0"
__author__ = "ws4py developers"
__all__ = ["WS_KEY", "WS_VERSION", "configure_logger", "format_addresses"]

#: The GUID of RFC 6455 that the opening handshake appends to the client's key before hashing it.
WS_KEY = _handshake.WS_KEY
#: The protocol versions a server accepts in ``Sec-WebSocket-Version``: 13 (RFC 6455; 0.6 also took 8).
WS_VERSION = _handshake.WS_VERSION

_FORMAT = "[%(asctime)s] %(levelname)s %(message)s"
# The handlers configure_logger added, to replace them on the next call. (Logging is
# imported when it is called: importing ws4py, or its sans-I/O core, starts no threads
# machinery of its own.)
_added_handlers: list[logging.Handler] = []


def configure_logger(stdout: bool = True, filepath: str | None = None, level: int = 20) -> logging.Logger:
    """Set up and return the ``ws4py`` logger (``level`` 20 is ``logging.INFO``).

    Adds a stdout handler and/or a rotating file handler (10 MiB, 3 backups).
    Calling it again replaces the handlers it added before instead of
    duplicating every line (the original added a new set on each call).
    """
    import logging
    import logging.handlers

    logger = logging.getLogger("ws4py")
    for handler in _added_handlers:
        logger.removeHandler(handler)
        handler.close()
    _added_handlers.clear()
    formatter = logging.Formatter(_FORMAT)
    if stdout:
        _added_handlers.append(logging.StreamHandler(sys.stdout))
    if filepath:
        _added_handlers.append(logging.handlers.RotatingFileHandler(filepath, maxBytes=10 * 2**20, backupCount=3))
    for handler in _added_handlers:
        handler.setFormatter(formatter)
        handler.setLevel(level)
        logger.addHandler(handler)
    logger.setLevel(level)
    return logger


def _format_address(address: Any) -> str:
    host, port = address[0], address[1]
    return f"{host}:{port}"


def format_addresses(ws: Any) -> str:
    """``[Local => ip:port | Remote => ip:port]`` for a websocket, or
    ``[Bound to '<path>']`` for one on a Unix socket."""
    local, peer = ws.local_address, ws.peer_address
    if isinstance(local, tuple):
        remote = _format_address(peer) if isinstance(peer, tuple) else "unknown"
        return f"[Local => {_format_address(local)} | Remote => {remote}]"
    return f"[Bound to {local!r}]"
